"""Deterministic stratified train/val/test splits, the dissimilar test subset, and split list files."""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path

from lavimo.io import save_text

SPLITS: tuple[str, ...] = ("train", "val", "test")
DEFAULT_RATIOS: Mapping[str, float] = {"train": 0.80, "val": 0.05, "test": 0.15}


def _rank(seed: int, key: str) -> bytes:
    return hashlib.sha256(f"{seed}:{key}".encode()).digest()


def stratified_split(
    keys: Sequence[str], groups: Sequence[Hashable], seed: int = 0, ratios: Mapping[str, float] = DEFAULT_RATIOS
) -> dict[str, str]:
    """Split ``keys`` so that every group is divided ~ ``ratios`` (test first, then val, rest train).

    Inside a group the keys are ordered by a seeded hash; key k of n goes to test when (k + 0.5) / n falls
    below the test ratio, to val below test + val, else to train (groups of one or two stay in train).
    """
    if len(keys) != len(groups):
        raise ValueError("keys and groups differ in length")
    members: dict[Hashable, list[str]] = defaultdict(list)
    for key, group in zip(keys, groups, strict=True):
        members[group].append(key)
    test_cut = ratios["test"]
    val_cut = test_cut + ratios["val"]
    out: dict[str, str] = {}
    for group_keys in members.values():
        ordered = sorted(group_keys, key=lambda k: _rank(seed, k))
        for k, key in enumerate(ordered):
            position = (k + 0.5) / len(ordered)
            out[key] = "test" if position < test_cut else "val" if position < val_cut else "train"
    return out


def dissimilar_subset(
    test_keys: Iterable[str], labels: Mapping[str, Hashable], seed: int = 0, size: int | None = None
) -> list[str]:
    """Test keys with pairwise distinct labels: one (seeded) key per label, at most ``size``, sorted."""
    best: dict[Hashable, str] = {}
    for key in sorted(test_keys, key=lambda k: _rank(seed, k)):
        best.setdefault(labels[key], key)
    chosen = sorted(best.values(), key=lambda k: _rank(seed + 1, k))
    return sorted(chosen[:size] if size is not None else chosen)


def write_splits(split_dir: str | os.PathLike[str], lists: Mapping[str, Sequence[str]]) -> dict[str, Path]:
    """Write ``{name}.txt`` (one id per line) atomically for each list, leaving unchanged files alone."""
    paths: dict[str, Path] = {}
    for name, ids in lists.items():
        path = Path(split_dir) / f"{name}.txt"
        text = "".join(f"{i}\n" for i in ids)
        if not path.exists() or path.read_text() != text:
            save_text(path, text)
        paths[name] = path
    return paths


def read_split(path: str | os.PathLike[str]) -> list[str]:
    """Ids of a split list file (blank lines ignored)."""
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
