"""Prepared-dataset layout: ``manifest.parquet`` plus motion shards ``motions/{shard}.npz``, and their readers.

A shard holds, per clip, ``{clip_id}/joints`` (T, 22, 3) float32 and ``{clip_id}/features`` (T-1, 263)
float32, plus one ``__meta__`` entry (JSON) that records what the shard was built from, so that a rerun
can skip it when nothing changed.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lavimo.io import LavimoInputError, atomic_path, save_npz

MANIFEST = "manifest.parquet"
MOTIONS = "motions"
META_KEY = "__meta__"
FPS = 20

MANIFEST_COLUMNS: tuple[str, ...] = (
    "clip_id",
    "source",
    "split",
    "fps",
    "n_frames",
    "texts",
    "avatar",
    "mirrored_from",
    "shard",
)
TEXT_TYPE = pa.struct([("text", pa.string()), ("start", pa.float64()), ("end", pa.float64())])
MANIFEST_SCHEMA = pa.schema(
    [
        ("clip_id", pa.string()),
        ("source", pa.string()),
        ("split", pa.string()),
        ("fps", pa.int32()),
        ("n_frames", pa.int32()),
        ("texts", pa.list_(TEXT_TYPE)),
        ("avatar", pa.int32()),
        ("mirrored_from", pa.string()),
        ("shard", pa.string()),
    ]
)

PathLike = str | os.PathLike[str]


def shard_name(index: int) -> str:
    """Name of the ``index``-th shard ("0000", "0001", ...)."""
    return f"{index:04d}"


def shard_path(ds_dir: PathLike, shard: str) -> Path:
    """Path of a motion shard."""
    return Path(ds_dir) / MOTIONS / f"{shard}.npz"


def write_shard(path: PathLike, motions: dict[str, tuple[np.ndarray, np.ndarray]], meta: dict[str, Any]) -> None:
    """Write one shard atomically: per clip joints and features (float32), and the JSON ``meta``."""
    arrays: dict[str, np.ndarray] = {META_KEY: np.array(json.dumps(meta, sort_keys=True))}
    for clip_id, (joints, features) in motions.items():
        arrays[f"{clip_id}/joints"] = np.ascontiguousarray(joints, dtype=np.float32)
        arrays[f"{clip_id}/features"] = np.ascontiguousarray(features, dtype=np.float32)
    save_npz(path, arrays, compressed=False)  # float motion data deflates by only ~8%: not worth the time


def read_shard_meta(path: PathLike) -> dict[str, Any] | None:
    """The ``meta`` a shard was written with, or None when the file is missing or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return json.loads(str(npz[META_KEY]))
    except (OSError, KeyError, ValueError):
        return None


def write_manifest(ds_dir: PathLike, frame: pd.DataFrame) -> Path:
    """Write ``manifest.parquet`` atomically with the fixed schema (kept untouched when unchanged); returns its path."""
    missing = [c for c in MANIFEST_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"manifest lacks columns {missing}")
    records = frame[list(MANIFEST_COLUMNS)].to_dict("records")
    table = pa.Table.from_pylist(records, schema=MANIFEST_SCHEMA)
    path = Path(ds_dir) / MANIFEST
    if _same_table(path, table):
        return path
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def _same_table(path: Path, table: pa.Table) -> bool:
    try:
        return path.exists() and pq.read_table(path).equals(table)
    except (OSError, pa.ArrowException):
        return False


def load_manifest(ds_dir: PathLike) -> pd.DataFrame:
    """Read ``{ds_dir}/manifest.parquet`` (one row per clip, columns ``MANIFEST_COLUMNS``)."""
    path = Path(ds_dir) / MANIFEST
    if not path.exists():
        raise LavimoInputError(path, "no manifest: run `lavimo prepare` for this dataset first")
    rerun = "rerun `lavimo prepare` for this dataset"
    if not path.is_file():
        raise LavimoInputError(path, f"not a file: {rerun}")
    try:
        frame = pd.read_parquet(path)
    except (pa.ArrowException, OSError, ValueError) as error:  # 0 bytes, text, a damaged footer, unreadable ...
        detail = " ".join(str(error).split()) or type(error).__name__
        detail = detail if len(detail) <= 120 else detail[:117] + "..."
        raise LavimoInputError(path, f"not a readable Parquet manifest ({detail}): {rerun}") from error
    if "clip_id" not in frame.columns:
        raise LavimoInputError(path, f"not a manifest (no clip_id column): {rerun}")
    return frame


@lru_cache(maxsize=8)
def _shard_index(manifest: str, mtime_ns: int) -> dict[str, str]:
    frame = pd.read_parquet(manifest, columns=["clip_id", "shard"])
    return dict(zip(frame["clip_id"], frame["shard"], strict=True))


def shard_of(ds_dir: PathLike, clip_id: str) -> str:
    """Shard that holds ``clip_id`` (manifest lookup, cached while the manifest is unchanged)."""
    path = Path(ds_dir) / MANIFEST
    if not path.exists():
        raise LavimoInputError(path, "no manifest: run `lavimo prepare` for this dataset first")
    index = _shard_index(str(path.resolve()), path.stat().st_mtime_ns)
    if clip_id not in index:
        raise LavimoInputError(path, f"no clip {clip_id!r} in the manifest")
    return index[clip_id]


def load_motion(ds_dir: PathLike, clip_id: str) -> tuple[np.ndarray, np.ndarray]:
    """Joints (T, 22, 3) and features (T-1, 263) of one clip."""
    path = shard_path(ds_dir, shard_of(ds_dir, clip_id))
    with np.load(path, allow_pickle=False) as npz:
        return npz[f"{clip_id}/joints"], npz[f"{clip_id}/features"]


def iter_shard(ds_dir: PathLike, shard: str) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(clip_id, joints, features) of every clip in one shard, in the shard's order."""
    path = shard_path(ds_dir, shard)
    if not path.exists():
        raise LavimoInputError(path, "motion shard missing: rerun `lavimo prepare` for this dataset")
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz[META_KEY]))
            for clip_id in meta["clips"]:
                yield clip_id, npz[f"{clip_id}/joints"], npz[f"{clip_id}/features"]
    except (zipfile.BadZipFile, EOFError, KeyError, ValueError) as error:  # each member carries a CRC-32, checked here
        raise LavimoInputError(
            path, f"corrupt motion shard ({type(error).__name__}: {error}): rerun `lavimo prepare` for this dataset"
        ) from error


def shards(ds_dir: PathLike) -> list[str]:
    """Shard names listed in the manifest, sorted."""
    return sorted(load_manifest(ds_dir)["shard"].unique())


def iter_motions(ds_dir: PathLike) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(clip_id, joints, features) of every clip of a prepared dataset, shard by shard."""
    for shard in shards(ds_dir):
        yield from iter_shard(ds_dir, shard)
