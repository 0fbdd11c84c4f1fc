"""The shared prepare engine: process source units in parallel into motion shards, then write the manifest.

A *unit* is one source item (a BVH file, a HumanML3D clip id, ...); processing it yields one or more clips
(mirror, sub-clips) or a rejection. Units are sorted by key and cut into shards; a shard whose
fingerprint (inputs' size and mtime, unit payloads, options, engine version) is unchanged is skipped on
a rerun. Every file is written atomically; the manifest is removed before any shard is rebuilt and
written last, so it never describes shards that are not there.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, astuple, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from lavimo.avatars.assign import avatar_for_clip
from lavimo.datasets.clips import FPS
from lavimo.datasets.manifest import (
    MANIFEST,
    MANIFEST_COLUMNS,
    MOTIONS,
    read_shard_meta,
    shard_name,
    shard_path,
    write_manifest,
    write_shard,
)
from lavimo.io import LavimoInputError, Rejection, read_rejections, write_rejections

LOG = logging.getLogger(__name__)
ENGINE_VERSION = 1
STAGE = "prepare"


@dataclass(frozen=True)
class PrepareOptions:
    """Options that change what a unit produces (part of every shard's fingerprint)."""

    min_seconds: float = 1.0
    mirror: bool = True
    seed: int = 0
    n_captions: int = 3


@dataclass(frozen=True)
class Unit:
    """One source item: a unique key, its source path, a JSON-able payload and the files it reads."""

    key: str
    source: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()


@dataclass
class ClipOut:
    """One prepared clip as a unit processor returns it."""

    clip_id: str
    joints: np.ndarray
    features: np.ndarray
    texts: list[dict[str, Any]]
    source: str
    mirrored_from: str = ""


@dataclass
class UnitResult:
    """What processing one unit gave: clips, and rejections of parts of it (e.g. one bad sub-clip)."""

    clips: list[ClipOut] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


Processor = Callable[[Unit, PrepareOptions], UnitResult]


@dataclass
class BuildResult:
    """Outcome of a prepare run."""

    manifest: pd.DataFrame
    rejected: list[Rejection]
    shards_built: int
    shards_skipped: int
    seconds: float

    def summary(self, name: str) -> str:
        """One line: clips, captions, rejected, shards."""
        captions = int(self.manifest["texts"].map(len).sum()) if len(self.manifest) else 0
        return (
            f"{name}: {len(self.manifest)} clips, {captions} captions, {len(self.rejected)} rejected; "
            f"shards built {self.shards_built}, reused {self.shards_skipped}; {self.seconds:.1f} s"
        )


@dataclass(frozen=True)
class _ShardTask:
    name: str
    path: str
    units: tuple[Unit, ...]
    process: Processor
    options: PrepareOptions
    fingerprint: str


def _stat(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def fingerprint(units: Sequence[Unit], process: Processor, options: PrepareOptions) -> str:
    """Hash of everything a shard's content depends on."""
    spec = {
        "engine": ENGINE_VERSION,
        "process": f"{process.__module__}.{process.__qualname__}",
        "options": asdict(options),
        "units": [[u.key, u.source, dict(u.payload), [_stat(p) for p in u.inputs]] for u in units],
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


def _too_short(clip: ClipOut, options: PrepareOptions) -> Rejection | None:
    seconds = clip.joints.shape[0] / FPS
    if seconds + 1e-9 >= options.min_seconds:
        return None
    reason = f"too short: {clip.joints.shape[0]} frames at {FPS} fps = {seconds:.2f} s < {options.min_seconds:g} s"
    return Rejection(clip.clip_id, STAGE, clip.source, reason)


def run_unit(process: Processor, unit: Unit, options: PrepareOptions) -> UnitResult:
    """Process one unit; a :class:`LavimoInputError` becomes a rejection of the whole unit, anything else stops."""
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # a corrupt value overflows; the clip checks refuse it
            result = process(unit, options)
    except LavimoInputError as error:
        return UnitResult(rejected=[Rejection(unit.key, STAGE, error.path, error.problem)])
    except Exception as error:  # a bug, not bad input: stop, but say which clip
        raise RuntimeError(f"preparing {unit.key} ({unit.source}) failed: {error!r}") from error
    kept: list[ClipOut] = []
    for clip in result.clips:
        short = _too_short(clip, options)
        if short is None:
            kept.append(clip)
        else:
            result.rejected.append(short)
    return UnitResult(kept, result.rejected)


def _build_shard(task: _ShardTask) -> dict[str, Any]:
    """Worker: process a shard's units and write the shard; returns its meta."""
    motions: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    entries = []
    for unit in task.units:
        result = run_unit(task.process, unit, task.options)
        clips = []
        for clip in result.clips:
            motions[clip.clip_id] = (clip.joints, clip.features)
            clips.append(
                {
                    "clip_id": clip.clip_id,
                    "source": clip.source,
                    "n_frames": int(clip.joints.shape[0]),
                    "texts": clip.texts,
                    "mirrored_from": clip.mirrored_from,
                }
            )
        entries.append({"key": unit.key, "clips": clips, "rejected": [asdict(r) for r in result.rejected]})
    meta = {"fingerprint": task.fingerprint, "clips": list(motions), "units": entries}
    write_shard(task.path, motions, meta)
    return meta


def _plan(
    out_dir: Path, units: Sequence[Unit], process: Processor, options: PrepareOptions, units_per_shard: int
) -> list[_ShardTask]:
    tasks = []
    for index, start in enumerate(range(0, len(units), units_per_shard)):
        chunk = tuple(units[start : start + units_per_shard])
        name = shard_name(index)
        path = str(shard_path(out_dir, name))
        tasks.append(_ShardTask(name, path, chunk, process, options, fingerprint(chunk, process, options)))
    return tasks


def _run_tasks(
    out_dir: Path, tasks: list[_ShardTask], workers: int, total: int, desc: str
) -> tuple[dict[str, dict[str, Any]], int]:
    """Build the shards whose fingerprint changed (in a process pool); returns all metas and the count built."""
    metas: dict[str, dict[str, Any]] = {}
    todo = []
    with tqdm(total=total, desc=desc, unit="clip", mininterval=1.0) as bar:
        for task in tasks:
            meta = read_shard_meta(task.path)
            if meta is not None and meta.get("fingerprint") == task.fingerprint:
                metas[task.name] = meta
                bar.update(len(task.units))
            else:
                todo.append(task)
        if todo:
            (out_dir / MANIFEST).unlink(missing_ok=True)
        if workers <= 1 or len(todo) <= 1:
            for task in todo:
                metas[task.name] = _build_shard(task)
                bar.update(len(task.units))
        else:
            with multiprocessing.get_context("fork").Pool(min(workers, len(todo))) as pool:
                for task, meta in zip(todo, pool.imap(_build_shard, todo), strict=True):
                    metas[task.name] = meta
                    bar.update(len(task.units))
    return metas, len(todo)


def _remove_orphans(out_dir: Path, keep: set[str]) -> None:
    for path in (out_dir / MOTIONS).glob("*.npz"):
        if path.stem not in keep:
            path.unlink()


def build_dataset(
    out_dir: str | os.PathLike[str],
    units: Sequence[Unit],
    process: Processor,
    split_of: Mapping[str, str],
    options: PrepareOptions,
    shard_size: int = 128,
    clips_per_unit: int = 1,
    workers: int = 1,
    rejected: Sequence[Rejection] = (),
    desc: str = "prepare",
) -> BuildResult:
    """Process ``units`` into shards under ``out_dir``, then write the manifest and ``rejected.csv``.

    ``split_of`` maps a unit key to its split (all clips of a unit share it); ``rejected`` are units
    refused before processing (bad labels, missing files), recorded with the rest.
    """
    started = time.perf_counter()
    out = Path(out_dir)
    ordered = sorted(units, key=lambda u: u.key)
    if len({u.key for u in ordered}) != len(ordered):
        raise ValueError("unit keys are not unique")
    per_shard = max(1, shard_size // max(1, clips_per_unit))
    tasks = _plan(out, ordered, process, options, per_shard)
    metas, built = _run_tasks(out, tasks, workers, len(ordered), desc)
    _remove_orphans(out, {t.name for t in tasks})
    frame, all_rejected = _collect(tasks, metas, split_of, options.seed)
    all_rejected = list(rejected) + all_rejected
    previous = [r for r in read_rejections(out / "rejected.csv") if r.stage == STAGE]
    if sorted(map(astuple, previous)) != sorted(map(astuple, all_rejected)) or not (out / "rejected.csv").exists():
        write_rejections(out / "rejected.csv", all_rejected, STAGE)
    write_manifest(out, frame)
    elapsed = time.perf_counter() - started
    return BuildResult(frame, sorted(all_rejected, key=lambda r: r.item), built, len(tasks) - built, elapsed)


def _collect(
    tasks: list[_ShardTask], metas: Mapping[str, dict[str, Any]], split_of: Mapping[str, str], seed: int
) -> tuple[pd.DataFrame, list[Rejection]]:
    rows: list[dict[str, Any]] = []
    rejected: list[Rejection] = []
    for task in tasks:
        for entry in metas[task.name]["units"]:
            rejected += [Rejection(**r) for r in entry["rejected"]]
            for clip in entry["clips"]:
                origin = clip["mirrored_from"] or clip["clip_id"]
                rows.append(
                    {
                        **clip,
                        "split": split_of[entry["key"]],
                        "fps": FPS,
                        "avatar": avatar_for_clip(origin, seed),
                        "shard": task.name,
                    }
                )
    frame = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    if frame["clip_id"].duplicated().any():
        raise ValueError(f"duplicate clip ids: {sorted(frame.loc[frame['clip_id'].duplicated(), 'clip_id'])[:5]}")
    return frame, rejected
