"""Render many clips in one Blender process: a whole motion shard, or a list of joint files.

The studio and the avatars are loaded once; clips already done with the same joints, avatar and settings
are skipped (so a rerun after a kill renders only what is missing, and a rerun with other settings renders
again); a clip that fails is recorded as a rejection and the rest go on.
Per shard: ``{frames_dir}/{shard}.rejected.csv`` (stage ``render``) and the marker ``{frames_dir}/{shard}.done``;
once all shards are done, :mod:`lavimo.render.rejects` merges the lists into the dataset's ``rejected.csv``.
A full disk is not a clip's fault: it stops the process (no marker written) instead of rejecting clips, so a
rerun with space renders what is missing.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from lavimo.avatars.assign import avatar_for_clip
from lavimo.io import (
    DiskFullError,
    LavimoInputError,
    Rejection,
    is_disk_full,
    load_npy,
    save_json,
    write_rejections,
)
from lavimo.render.clip import (
    AvatarBank,
    ClipJob,
    ClipOptions,
    ClipPlan,
    RenderSignature,
    ahead,
    is_done,
    plan_clip,
    render_clip,
)
from lavimo.render.rejects import STAGE, shard_rejections_path
from lavimo.render.scene import Studio, StudioSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingClip:
    """A clip still to render and how to load its joints."""

    clip_id: str
    avatar: int
    fps: float
    load: Callable[[], np.ndarray]
    signature: str | None = None  # recorded in the clip's meta.json


@dataclass
class RenderReport:
    """What one process rendered."""

    rendered: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    frames: int = 0  # frames rendered
    setup_seconds: float = 0.0  # Blender scene set-up
    render_seconds: float = 0.0  # clip rendering, set-up excluded

    def summary(self) -> dict[str, Any]:
        """JSON-able counts and timings."""
        rate = self.frames / self.render_seconds if self.render_seconds else 0.0
        return {
            "rendered": len(self.rendered),
            "skipped": len(self.skipped),
            "rejected": len(self.rejected),
            "frames": self.frames,
            "setup_seconds": round(self.setup_seconds, 3),
            "render_seconds": round(self.render_seconds, 3),
            "frames_per_second": round(rate, 3),
        }


def shard_lock_name(shard: str) -> str:
    """The lock file, in the frames folder, that one `lavimo render shard` process holds while it renders ``shard``."""
    return f".{shard}.lock"


def remove_stale_tmp(frames_dir: Path, clip_ids: Iterable[str]) -> None:
    """Delete temporary clip folders left by a killed run."""
    for clip_id in clip_ids:
        for tmp in frames_dir.glob(f".{clip_id}.tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)


def render_pending(
    pending: Sequence[PendingClip],
    avatars_dir: str | os.PathLike[str],
    frames_dir: str | os.PathLike[str],
    renders_dir: str | os.PathLike[str] | None,
    settings: StudioSettings,
    options: ClipOptions,
    source: str,
    report: RenderReport | None = None,
) -> RenderReport:
    """Render ``pending`` clips in this process; failures become rejections (``source`` names where they came from)."""
    report = report or RenderReport()
    if not pending:
        return report
    frames_dir = Path(frames_dir)
    remove_stale_tmp(frames_dir, [p.clip_id for p in pending])
    start = time.perf_counter()
    studio = Studio(settings)
    bank = AvatarBank(avatars_dir, studio)
    report.setup_seconds += time.perf_counter() - start
    shadows = studio.draws_shadow and not options.every_frame  # read here: the planner thread must not touch bpy

    def prepare(item: PendingClip) -> tuple[ClipJob | None, ClipPlan | None, Exception | None]:
        """Load and plan a clip (numpy only: runs in the planner thread while the previous clip renders)."""
        try:
            job = ClipJob(item.clip_id, item.avatar, item.fps, item.load(), item.signature)
            avatar = bank.data(item.avatar)
            plan = plan_clip(job, avatar, options, lambda layout: not studio.has_grid(layout), shadows)
        except Exception as error:  # reported when the clip's turn comes
            return None, None, error
        return job, plan, None

    start = time.perf_counter()
    try:
        with (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="lavimo-plan") as planner,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="lavimo-frames") as pool,
        ):
            planned = ahead(planner, prepare, pending, depth=1)
            for item, (job, plan, failure) in tqdm(
                zip(pending, planned, strict=True), total=len(pending), desc=f"render {source}", unit="clip",
                mininterval=2.0,
            ):  # fmt: skip
                try:
                    if failure is not None:
                        raise failure
                    meta = render_clip(studio, bank, job, frames_dir, renders_dir, options, pool, plan)
                except Exception as error:  # whatever one clip does wrong, the shard goes on
                    if is_disk_full(error):  # ... but a full disk fails every clip after it: stop
                        raise DiskFullError(getattr(error, "filename", None) or frames_dir / item.clip_id) from error
                    log.warning("%s: rejected (%s)", item.clip_id, error)
                    report.rejected.append(Rejection(item.clip_id, STAGE, source, f"{type(error).__name__}: {error}"))
                else:
                    report.rendered.append(item.clip_id)
                    report.frames += len(job.joints) if options.every_frame else len(set(meta["indices"]))
    finally:
        report.render_seconds += time.perf_counter() - start
        studio.close()
    return report


def _pending(
    clip_id: str,
    avatar: int,
    fps: float,
    joints: np.ndarray,
    frames_dir: str | os.PathLike[str],
    renders_dir: str | os.PathLike[str] | None,
    signature: RenderSignature,
    report: RenderReport,
) -> PendingClip | None:
    """The clip to render, or None (and listed as skipped) when it is done with this signature."""
    clip_signature = signature(avatar, fps, joints)
    if is_done(frames_dir, clip_id, renders_dir, clip_signature):
        report.skipped.append(clip_id)
        return None
    return PendingClip(clip_id, avatar, fps, lambda: joints, clip_signature)


def shard_pending(
    ds_dir: str | os.PathLike[str],
    shard: str,
    frames_dir: str | os.PathLike[str],
    renders_dir: str | os.PathLike[str] | None,
    signature: RenderSignature,
    report: RenderReport,
) -> list[PendingClip]:
    """Clips of ``shard`` (from the dataset's manifest) not rendered yet with ``signature``; the rest go to
    ``report.skipped``."""
    import pandas as pd

    from lavimo.datasets.manifest import iter_shard, load_manifest

    manifest = load_manifest(ds_dir)
    rows = manifest[manifest["shard"].astype(str) == str(shard)].set_index("clip_id")
    if rows.empty:
        raise LavimoInputError(Path(ds_dir) / "manifest.parquet", f"no clips in shard {shard!r}")
    joints = {clip_id: j for clip_id, j, _ in iter_shard(ds_dir, str(shard)) if clip_id in rows.index}
    pending = []
    for clip_id, row in rows.iterrows():
        clip_id = str(clip_id)
        if clip_id not in joints:
            report.rejected.append(Rejection(clip_id, STAGE, f"shard {shard}", "no motion in the shard file"))
            continue
        avatar = avatar_for_clip(clip_id) if pd.isna(row["avatar"]) else int(row["avatar"])
        item = _pending(clip_id, avatar, float(row["fps"]), joints[clip_id], frames_dir, renders_dir, signature, report)
        if item is not None:
            pending.append(item)
    return pending


def render_shard(
    ds_dir: str | os.PathLike[str],
    shard: str,
    avatars_dir: str | os.PathLike[str],
    frames_dir: str | os.PathLike[str],
    renders_dir: str | os.PathLike[str] | None,
    settings: StudioSettings,
    options: ClipOptions,
) -> RenderReport:
    """Render every missing clip of one shard; write the shard's rejection list and done marker."""
    frames_dir = Path(frames_dir)
    frames_dir.mkdir(parents=True, exist_ok=True)
    report = RenderReport()
    video_dir = renders_dir if options.video else None
    signature = RenderSignature(settings, options, avatars_dir)
    pending = shard_pending(ds_dir, shard, frames_dir, video_dir, signature, report)
    log.info("shard %s: %d to render, %d already done", shard, len(pending), len(report.skipped))
    render_pending(pending, avatars_dir, frames_dir, video_dir, settings, options, f"shard {shard}", report)
    write_rejections(shard_rejections_path(frames_dir, shard), report.rejected, STAGE)
    save_json(frames_dir / f"{shard}.done", {"shard": shard, "engine": settings.engine, **report.summary()})
    return report


def joint_file_pending(
    paths: Sequence[str | os.PathLike[str]],
    frames_dir: str | os.PathLike[str],
    renders_dir: str | os.PathLike[str] | None,
    fps: float,
    avatar: int | None,
    signature: RenderSignature,
    report: RenderReport,
) -> list[PendingClip]:
    """Clips from joint ``.npy`` files (clip id = file stem) not rendered yet with ``signature``; an unreadable
    file becomes a rejection."""
    pending = []
    for path in map(Path, paths):
        clip_id = path.stem
        try:
            joints = load_npy(path, "joint file")
        except LavimoInputError as error:
            report.rejected.append(Rejection(clip_id, STAGE, error.path, error.problem))
            continue
        chosen = avatar_for_clip(clip_id) if avatar is None else avatar
        item = _pending(clip_id, chosen, fps, joints, frames_dir, renders_dir, signature, report)
        if item is not None:
            pending.append(item)
    return pending
