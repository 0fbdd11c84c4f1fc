"""Atomic artifact writes, checked reads (JSON, file hashes) and the per-dataset rejection log shared by every stage."""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


class LavimoInputError(ValueError):
    """Bad input: the message names the offending file and the problem."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # picklable across worker processes (the default would call __init__ with one argument)
        return (type(self), (self.path, self.problem))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp" + target.suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; artifacts are meant to be shared
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_npy(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write one array as .npy atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array)


def save_npz(path: str | os.PathLike[str], arrays: dict[str, np.ndarray], compressed: bool = True) -> None:
    """Write several arrays as .npz atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        (np.savez_compressed if compressed else np.savez)(handle, **arrays)


def save_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write JSON atomically (pretty-printed, keys in insertion order)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")


def save_text(path: str | os.PathLike[str], text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def read_json(path: str | os.PathLike[str], what: str) -> Any:
    """A JSON file, or an input error naming it (``what`` says what the file is)."""
    path = Path(path)
    if not path.is_file():
        raise LavimoInputError(path, f"{what} does not exist")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise LavimoInputError(path, f"unreadable {what} ({error})") from error


@functools.lru_cache(maxsize=16)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file (memoised per path, size and mtime)."""
    stat = Path(path).stat()
    return _sha256_cached(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@dataclass(frozen=True)
class Rejection:
    """One item a stage refused, and why."""

    item: str
    stage: str
    source: str
    reason: str


REJECTED_COLUMNS = ("item", "stage", "source", "reason")


def write_rejections(path: str | os.PathLike[str], rejections: list[Rejection], stage: str) -> None:
    """Merge ``rejections`` of ``stage`` into the CSV at ``path``, replacing that stage's earlier rows.

    Each stage owns its rows, so a rerun of one stage never drops what another stage recorded.
    """
    rows = [r for r in read_rejections(path) if r.stage != stage]
    rows += sorted(rejections, key=lambda r: r.item)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(REJECTED_COLUMNS)
        for r in rows:
            writer.writerow([r.item, r.stage, r.source, r.reason])


def read_rejections(path: str | os.PathLike[str]) -> list[Rejection]:
    """Read a rejection CSV; a missing file means nothing was rejected."""
    if not Path(path).exists():
        return []
    with open(path, newline="") as handle:
        return [Rejection(**{k: row[k] for k in REJECTED_COLUMNS}) for row in csv.DictReader(handle)]
