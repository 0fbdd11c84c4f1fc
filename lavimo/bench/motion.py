"""`lavimo bench motion`: throughput of BVH -> joints -> features -> joints on the demo clips."""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lavimo.bench.common import demo_bvh_files, load_config
from lavimo.io import LavimoInputError

REPO = Path(__file__).resolve().parents[2]
# the shared data beside the checkout (developer machines and CI), before the configured bundle
SHARED_DEMO_DIRS = tuple(
    REPO.parent / "shared" / "data" / "bandai-namco" / d / "data" for d in ("dataset-1", "dataset-2")
)


def demo_bvh_paths(config: dict[str, Any], limit: int | None = None) -> list[Path]:
    """The demo BVH files: the shared Bandai-Namco folders, else the configured demo bundle (``datasets.demo.bundle``,
    unpacked to a temporary folder)."""
    dirs = [d for d in SHARED_DEMO_DIRS if d.is_dir()]
    if dirs:
        paths = sorted(p for d in dirs for p in d.glob("*.bvh"))
    else:
        paths = demo_bvh_files(config, Path(tempfile.gettempdir()) / "lavimo-bench-demo")
    return paths[:limit] if limit is not None else paths


def _timed(function: Callable[[Any], Any], items: list[Any]) -> tuple[list[Any], tuple[float, float]]:
    """Apply ``function`` to every item: results (None for a rejected input), (wall, CPU) seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    results = []
    for item in items:
        try:
            results.append(function(item))
        except LavimoInputError:
            results.append(None)
    return results, (time.perf_counter() - wall, time.process_time() - cpu)


def _row(stage: str, clips: int, frames: int, seconds: tuple[float, float]) -> str:
    wall, cpu = seconds
    rate = frames / wall if wall > 0 else float("inf")
    return f"{stage:<38} {clips:>6} {frames:>9} {wall:>8.2f} {cpu:>8.2f} {rate:>11,.0f}"


def bench_motion(args: argparse.Namespace) -> int:
    """Print frames/s of each motion stage and the wall time of preparing every demo clip."""
    from lavimo.motion.humanml3d import features_to_joints, joints_to_features
    from lavimo.motion.pipeline import TARGET_FPS, bvh_to_clip, bvh_world_joints
    from lavimo.motion.resample import resample

    paths = demo_bvh_paths(load_config(args.config), args.limit)
    if not paths:
        print("no demo BVH files found")
        return 1
    world, t_world = _timed(bvh_world_joints, paths)
    world = [w for w in world if w is not None]
    source_frames = sum(w[0].shape[0] for w in world)
    at20, t_resample = _timed(lambda w: resample(w[0], w[1], TARGET_FPS), world)
    at20 = [j for j in at20 if j.shape[0] >= 2]
    frames20 = sum(j.shape[0] for j in at20)
    features, t_features = _timed(joints_to_features, at20)
    recovered, t_recover = _timed(features_to_joints, features)
    clips, t_total = _timed(bvh_to_clip, paths)
    prepared = [c for c in clips if c is not None]

    print(f"motion benchmark: {len(paths)} BVH files under {sorted({str(p.parent) for p in paths})}")
    print(f"{'stage':<38} {'clips':>6} {'frames':>9} {'wall s':>8} {'CPU s':>8} {'frames/s':>11}")
    print(_row("BVH -> joints (parse+FK+t2m, src fps)", len(world), source_frames, t_world))
    print(_row("resample -> 20 fps", len(at20), source_frames, t_resample))
    print(_row("joints -> features (20 fps)", len(features), frames20, t_features))
    print(_row("features -> joints", len(recovered), sum(f.shape[0] for f in features), t_recover))
    print(_row("total bvh_to_clip (all stages)", len(prepared), source_frames, t_total))
    print(
        f"prepared {len(prepared)} of {len(paths)} clips ({len(paths) - len(prepared)} rejected: too short or bad) "
        f"in {t_total[0]:.1f} s wall, {t_total[1]:.1f} s CPU, one process; "
        f"{sum(c.features.shape[0] for c in prepared)} feature frames at 20 fps"
    )
    print("frames/s = frames / wall s; wall >> CPU means other processes shared the cores")
    return 0
