"""Atomic artifact writes, checked reads (JSON, file hashes) and the per-dataset rejection log shared by every stage."""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import functools
import hashlib
import io
import json
import os
import socket
import sys
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


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class DiskFullError(OSError):
    """A write failed for want of space (or quota); the message names the file. Not an input error: a batch never
    records it as a bad item, it stops, and a rerun with space goes on from the work already kept."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        super().__init__(errno.ENOSPC, "no space left on device: free some space and rerun (finished work is kept)")

    def __str__(self) -> str:
        return f"{self.path}: {self.strerror}"

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (type(self), (self.path,))


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` is a write that failed for want of space or quota (numpy reports a short write to a file
    without an errno: "N requested and M written")."""
    if not isinstance(error, OSError):
        return False
    return error.errno in DISK_FULL_ERRNOS or (error.errno is None and " requested and " in str(error))


LOCK_FILE = ".lavimo.lock"  # the lock file :func:`folder_lock` holds in a folder


def make_folder(folder: str | os.PathLike[str]) -> None:
    """``mkdir -p folder``; a file in the way is an error naming that file ("is a file, not a folder")."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), folder)
        raise NotADirectoryError(errno.ENOTDIR, "is a file, not a folder", str(blocker)) from error


def _unwritable(error: OSError, folder: Path) -> OSError:
    """``error`` of a file created in ``folder`` (read-only, no permission), said of ``folder``."""
    return type(error)(error.errno, f"cannot write in this folder ({error.strerror or error})", str(folder))


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str], what: str, name: str = LOCK_FILE) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` for the block (``flock`` on ``folder/{name}``).

    A second process that wants the same folder waits, saying once on stderr who holds it (``what`` names
    the holder's task); the lock goes with the process, so a killed holder never leaves it stuck. Another
    ``name`` locks one part of a folder that several processes share (a render shard's clips).
    """
    folder = Path(folder)
    make_folder(folder)
    try:
        handle = open(folder / name, "a+")  # noqa: SIM115 (closed by the with below)
    except OSError as error:
        if is_disk_full(error):
            raise
        raise _unwritable(error, folder) from error
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            print(f"lavimo: {folder}: waiting for {holder} to finish", file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        with contextlib.suppress(OSError):  # who holds it is a courtesy (unbuffered): a full disk must not stop it
            os.ftruncate(handle.fileno(), 0)
            os.pwrite(handle.fileno(), f"{what} (pid {os.getpid()} on {socket.gethostname()})\n".encode(), 0)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    A write that fails for want of space leaves nothing behind and becomes a :class:`DiskFullError` naming ``path``.
    """
    target = Path(path)
    tmp: Path | None = None
    try:
        if target.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a folder: name a file to write", str(target))
        make_folder(target.parent)
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp" + target.suffix, dir=target.parent)
        except OSError as error:  # it names the temporary file: name the folder the user gave
            if is_disk_full(error):
                raise
            raise _unwritable(error, target.parent) from error
        os.close(fd)
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; artifacts are meant to be shared
        yield tmp
        os.replace(tmp, target)
    except OSError as error:
        if is_disk_full(error) and not isinstance(error, DiskFullError):
            raise DiskFullError(target) from error
        raise
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()


def save_npy(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write one array as .npy atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array)


def save_npz(path: str | os.PathLike[str], arrays: dict[str, np.ndarray], compressed: bool = True) -> None:
    """Write several arrays as .npz atomically. The archive is built in memory, then written: numpy's zip writer,
    interrupted by a full disk, would leave a ZipFile whose clean-up fails again and prints its own traceback."""
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())


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


_NPY_MAGIC = b"\x93NUMPY"  # every .npy file starts with it
_ZIP_MAGIC = b"PK\x03\x04"  # .npz archives (and torch checkpoints) are zip files
NUMERIC_KINDS = "fiub"  # float, signed, unsigned, bool: what an array file of numbers may hold


def _not_npy(head: bytes) -> str:
    """Why a file that lacks the NumPy header is not a .npy array."""
    if head.startswith(_ZIP_MAGIC):
        return "is a zip archive (a .npz renamed .npy?), not a .npy array: save one array with np.save"
    with contextlib.suppress(UnicodeDecodeError):
        text = head.decode("ascii")
        if all(c.isprintable() or c.isspace() for c in text):
            return f"is a text file (starts {text[:24]!r}), not a .npy array"
    return f"is not a .npy array (no NumPy header; starts with bytes {head[:8]!r})"


def load_npy(
    path: str | os.PathLike[str],
    what: str = "array",
    *,
    ndim: int | None = None,
    finite: bool = False,
    mmap: bool = False,
) -> np.ndarray:
    """One numeric array from a ``.npy`` file, checked; every problem is a :class:`LavimoInputError` naming the file.

    Refused: a missing or empty file, anything that is not a ``.npy`` array (a ``.npz``, text, pickled
    objects), a truncated file, non-numeric or complex values, another number of dimensions than ``ndim``
    and, if ``finite``, NaN or Inf values. ``mmap`` memory-maps the file read-only. ``what`` names the
    content in messages ("similarity matrix").
    """
    path = Path(path)
    if not path.is_file():
        raise LavimoInputError(path, f"{what} missing (no such file)")
    with open(path, "rb") as handle:
        head = handle.read(32)
    if not head:
        raise LavimoInputError(path, f"empty file (0 bytes), expected a .npy {what}")
    if not head.startswith(_NPY_MAGIC):
        raise LavimoInputError(path, _not_npy(head))
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as error:
        if "allow_pickle" in str(error):  # an object array: pickled Python objects
            raise LavimoInputError(path, f"holds Python objects, not a numeric {what}") from error
        raise LavimoInputError(path, f"truncated or corrupt .npy file ({error})") from error
    except (OSError, EOFError) as error:
        raise LavimoInputError(path, f"truncated or corrupt .npy file ({error})") from error
    if array.dtype.kind == "c":
        raise LavimoInputError(path, f"complex-valued {what} ({array.dtype}): expected real numbers")
    if array.dtype.kind not in NUMERIC_KINDS:
        raise LavimoInputError(path, f"expected a numeric {what}, got dtype {array.dtype}")
    if ndim is not None and array.ndim != ndim:
        raise LavimoInputError(path, f"expected a {ndim}-D {what}, got shape {array.shape}")
    if finite:
        check_finite(array, path, what)
    return array


def check_finite(array: np.ndarray, path: str | os.PathLike[str], what: str = "array") -> None:
    """Raise :class:`LavimoInputError` naming ``path`` when ``array`` holds NaN or Inf (with their counts)."""
    if array.dtype.kind != "f" or np.isfinite(array).all():
        return
    nan = int(np.isnan(array).sum())
    inf = int(np.isinf(array).sum())
    counts = " and ".join(f"{n} {name}" for n, name in ((nan, "NaN"), (inf, "Inf")) if n)
    raise LavimoInputError(path, f"{what} contains {counts} value(s)")


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
