"""`lavimo bench render`: one Blender process per shard vs one per clip, and a matplotlib skeleton baseline.

This process never imports bpy: every render runs in a `lavimo render clips` subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lavimo.bench.common import demo_bvh_files, load_config
from lavimo.frame_sampling import uniform_frame_indices
from lavimo.io import LavimoInputError
from lavimo.motion.skeleton import T2M_KINEMATIC_CHAINS

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "data" / "humanml3d" / "new_joints" / "012314.npy"
DEFAULT_CLIPS = 20
FPS = 20.0


def _prepared_clips(config: dict, count: int) -> list[np.ndarray] | None:
    """The first ``count`` clips of the prepared demo dataset, if there are that many."""
    from lavimo.datasets.manifest import load_manifest, load_motion

    ds_dir = Path(config["results_dir"]) / "demo"
    try:
        ids = list(load_manifest(ds_dir)["clip_id"])[:count]
        return [load_motion(ds_dir, c)[0] for c in ids] if len(ids) == count else None
    except (LavimoInputError, OSError, KeyError, ValueError):
        return None


def _bvh_clips(config: dict, count: int, work: Path) -> list[np.ndarray] | None:
    """``count`` clips converted from the bundled demo BVHs, if the bundle is there."""
    from lavimo.motion.pipeline import bvh_to_clip

    try:
        paths = demo_bvh_files(config, work / "demo")
        clips = []
        for path in paths[:: max(1, len(paths) // count)]:  # spread over the motion kinds
            try:
                clips.append(bvh_to_clip(path).joints)
            except (LavimoInputError, ValueError):
                continue
            if len(clips) == count:
                return clips
    except (LavimoInputError, OSError, ValueError):
        return None
    return None


def _fixture_clips(count: int) -> list[np.ndarray]:
    """``count`` random crops (3 to 8.5 s) of the HumanML3D test fixture."""
    fixture = np.load(FIXTURE)
    rng = np.random.default_rng(0)
    clips = []
    for _ in range(count):
        length = int(rng.integers(60, len(fixture) + 1))
        start = int(rng.integers(0, len(fixture) - length + 1))
        clips.append(fixture[start : start + length])
    return clips


def demo_clips(config: dict, count: int, work: Path) -> tuple[list[np.ndarray], str]:
    """Up to ``count`` joint arrays: the prepared demo dataset, else demo BVHs, else crops of the test fixture."""
    clips = _prepared_clips(config, count)
    if clips is not None:
        return clips, "prepared demo dataset"
    clips = _bvh_clips(config, count, work)
    if clips is not None:
        return clips, "demo BVHs (lavimo.motion.pipeline.bvh_to_clip)"
    return _fixture_clips(count), f"crops of {FIXTURE.name}"


def demo_avatars(config: dict, work: Path) -> Path:
    """The built avatar folder of the configured backend, else avatars built into ``work``."""
    backend = config["avatars"]["backend"]
    built = Path(config["results_dir"]) / "avatars" / backend
    if len(list(built.glob("[0-9][0-9].npz"))) == 13:
        return built
    from lavimo.avatars.build import build_avatars

    build_avatars(backend, work / "avatars")
    return work / "avatars"


def _render(
    joint_files: list[Path], avatars: Path, frames_dir: Path, stats: Path, mesh_detail: float
) -> tuple[float, float]:
    """Run one `lavimo render clips` process; (wall seconds, CPU seconds of the process and its threads)."""
    command = [sys.executable, "-m", "lavimo.cli", "render", "clips", "--avatars", str(avatars)]
    command += ["--mesh-detail", str(mesh_detail)]
    command += ["--frames-dir", str(frames_dir), "--stats", str(stats), "--joints", *map(str, joint_files)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _batch_run(files: list[Path], avatars: Path, work: Path, run: int, mesh_detail: float) -> tuple[float, float]:
    """Render every clip in one process and print its figures; (wall seconds, CPU seconds)."""
    wall, cpu = _render(files, avatars, work / f"batch{run}", work / f"batch{run}.json", mesh_detail)
    stats = json.loads((work / f"batch{run}.json").read_text())
    n = len(files)
    print(
        f"one process, {n} clips (run {run}): {wall:.1f} s wall ({wall / n:.2f} s/clip), "
        f"{cpu:.1f} s CPU ({cpu / n:.2f} s/clip); {stats['frames']} frames, "
        f"{stats['frames_per_second']:.2f} frames/s per process while rendering, "
        f"{stats['frames'] / wall:.2f} frames/s including start-up"
    )
    return wall, cpu


def skeleton_plots(clips: list[np.ndarray], out_dir: Path, num_frames: int = 8) -> tuple[int, float] | None:
    """Draw the sampled frames as matplotlib 3D skeletons at 512x512; (frames, seconds), None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    start, frames = time.perf_counter(), 0
    fig = plt.figure(figsize=(5.12, 5.12), dpi=100)
    for c, joints in enumerate(clips):
        for k, t in enumerate(uniform_frame_indices(len(joints), num_frames)):
            fig.clf()
            ax = fig.add_subplot(projection="3d")
            for chain in T2M_KINEMATIC_CHAINS:
                pts = joints[t, list(chain)]
                ax.plot(pts[:, 0], pts[:, 2], pts[:, 1], linewidth=3)
            root = joints[t, 0]
            ax.set(xlim=(root[0] - 1, root[0] + 1), ylim=(root[2] - 1, root[2] + 1), zlim=(0, 2))
            fig.savefig(out_dir / f"{c:02d}_{k:02d}.png")
            frames += 1
    plt.close(fig)
    return frames, time.perf_counter() - start


def bench_render(args: argparse.Namespace) -> int:
    """Print frames/s per process, seconds per clip (batch vs per-clip processes) and the matplotlib baseline."""
    config = load_config(args.config)
    count = args.limit or DEFAULT_CLIPS
    mesh_detail = float(config["render"]["mesh_detail"])
    with tempfile.TemporaryDirectory(prefix="lavimo-bench-render-") as tmp:
        work = Path(tmp)
        clips, source = demo_clips(config, count, work)
        avatars = demo_avatars(config, work)
        files = []
        for i, joints in enumerate(clips):
            files.append(work / "joints" / f"bench{i:03d}.npy")
            files[-1].parent.mkdir(parents=True, exist_ok=True)
            np.save(files[-1], np.asarray(joints, np.float32))
        print(
            f"clips: {len(files)} ({source}); avatars: {avatars}; engine workbench, frames mode, 512x512, "
            f"mesh detail {mesh_detail} (render.mesh_detail in {args.config})"
        )

        n = len(files)
        load_before = os.getloadavg()[0]
        # the batch runs before and after the per-clip processes, so that both see the machine's load alike
        batches = [_batch_run(files, avatars, work, 1, mesh_detail)]
        single = [
            _render([f], avatars, work / "single", work / f"single{i}.json", mesh_detail) for i, f in enumerate(files)
        ]
        batches.append(_batch_run(files, avatars, work, 2, mesh_detail))
        batch_wall, batch_cpu = (sum(b[k] for b in batches) / len(batches) for k in (0, 1))
        single_wall, single_cpu = (sum(s[k] for s in single) for k in (0, 1))
        print(
            f"one process per clip: {single_wall:.1f} s wall ({single_wall / n:.2f} s/clip), "
            f"{single_cpu:.1f} s CPU ({single_cpu / n:.2f} s/clip); batch (mean of both runs: "
            f"{batch_wall / n:.2f} s/clip) is {single_wall / batch_wall:.2f}x faster per clip in wall time, "
            f"{single_cpu / batch_cpu:.2f}x in CPU time (the fairer figure on a shared machine)"
        )
        print(
            f"load average (1 min): {load_before:.2f} before, {os.getloadavg()[0]:.2f} after the runs, "
            f"on {os.cpu_count()} CPUs"
        )
        plots = skeleton_plots(clips, work / "matplotlib")
        if plots is None:
            print("matplotlib skeleton plot: matplotlib is not installed (pip install matplotlib)")
        else:
            frames, seconds = plots
            print(
                f"matplotlib 3D skeleton, 512x512: {frames} frames in {seconds:.1f} s, {frames / seconds:.2f} frames/s"
            )
    return 0
