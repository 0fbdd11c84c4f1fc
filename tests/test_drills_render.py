"""Fault drills of the render stage, on real demo clips: a SIGKILL mid-shard, a second workflow and a direct command
racing a Snakemake job on one results folder, and a disk that fills up. Each ends with nothing lost (a rerun
renders only what is missing) and nothing silently wrong (the frames equal those of an uninterrupted run)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from helpers import REPO, lavimo_process, run_lavimo, small_disk, tree_digest, wait_for_text
from workflow_helpers import SNAKEMAKE, run_snakemake

from lavimo.io import folder_lock, read_rejections
from lavimo.render.shard import shard_lock_name

# real processes, killed, raced or starved: tens of seconds each
pytestmark = pytest.mark.slow

SHARD = "0000"
RESOLUTION = "128"  # small frames: the drills are about files, not pictures

# kills the process while it writes the 4th frame of the 3rd clip: half that PNG on disk, then SIGKILL
KILL_IN_THIRD_CLIP = """
import os, pathlib, signal
_write_bytes, _pngs = pathlib.Path.write_bytes, [0]
def write_bytes(self, data):
    if self.suffix == ".png":
        _pngs[0] += 1
        if _pngs[0] == 2 * 8 + 4:
            with open(self, "wb") as handle:
                handle.write(data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
    return _write_bytes(self, data)
pathlib.Path.write_bytes = write_bytes
"""


@pytest.fixture(scope="module")
def demo_shard(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real prepared demo set: 3 Bandai-Namco clips and their mirrors, one shard of 6 clips."""
    from lavimo.datasets.build import PrepareOptions
    from lavimo.datasets.demo import prepare_demo

    dataset = tmp_path_factory.mktemp("drill") / "demo"
    prepare_demo(dataset, REPO / "resources" / "demo", PrepareOptions(), shard_size=16, limit=3, workers=1)
    return dataset


def shard_args(dataset: Path, avatars: Path, frames: Path, stats: Path) -> list[str]:
    """`lavimo render shard` of the drill shard, with the settings the drill workflow's config gives its rule."""
    where = ["--dataset-dir", str(dataset), "--shard", SHARD, "--avatars", str(avatars), "--frames-dir", str(frames)]
    return ["render", "shard", *where, "--resolution", RESOLUTION, "--stats", str(stats)]


def clip_ids(dataset: Path) -> list[str]:
    from lavimo.datasets.manifest import load_manifest

    return [str(c) for c in load_manifest(dataset)["clip_id"]]


def rendered(frames: Path) -> dict[str, dict[str, str]]:
    """Per finished clip (a folder with meta.json): the digests of its PNGs and its meta without the timing."""
    clips = {}
    for meta in sorted(frames.glob("[!.]*/meta.json")):
        record = {k: v for k, v in json.loads(meta.read_text()).items() if k != "seconds"}
        clips[meta.parent.name] = {**tree_digest(meta.parent), "meta.json": json.dumps(record, sort_keys=True)}
    return clips


@pytest.fixture(scope="module")
def reference_frames(demo_shard: Path, avatars_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The frames folder of an uninterrupted render of the drill shard."""
    frames = tmp_path_factory.mktemp("reference") / "frames"
    code, output = run_lavimo(*shard_args(demo_shard, avatars_dir, frames, frames.parent / "stats.json"))
    assert code == 0, output[-3000:]
    return frames


@pytest.fixture(scope="module")
def reference(demo_shard: Path, reference_frames: Path) -> dict:
    """What :func:`rendered` finds in the uninterrupted render: 8 frames and a meta.json per clip."""
    clips = rendered(reference_frames)
    assert sorted(clips) == sorted(clip_ids(demo_shard)) and all(len(c) == 9 for c in clips.values())
    return clips


def test_a_render_killed_mid_clip_resumes_with_only_the_missing_clips(
    demo_shard: Path, avatars_dir: Path, reference: dict, tmp_path: Path
) -> None:
    frames, stats = tmp_path / "frames", tmp_path / "stats.json"
    code, output = run_lavimo(*shard_args(demo_shard, avatars_dir, frames, stats), prelude=KILL_IN_THIRD_CLIP)
    assert code == -9, output[-3000:]
    ids = clip_ids(demo_shard)
    done = rendered(frames)
    assert sorted(done) == sorted(ids[:2]) and all(done[c] == reference[c] for c in done)
    partial = list(frames.glob(f".{ids[2]}.tmp-*"))  # the clip being written: never taken as done
    assert len(partial) == 1 and len(list(partial[0].glob("*.png"))) == 4
    assert not (frames / f"{SHARD}.done").exists()

    code, output = run_lavimo(*shard_args(demo_shard, avatars_dir, frames, stats))
    assert code == 0, output[-3000:]
    summary = json.loads(stats.read_text())
    assert (summary["rendered"], summary["skipped"], summary["rejected"]) == (4, 2, 0)
    assert rendered(frames) == reference
    assert not list(frames.glob(".*.tmp-*")) and (frames / f"{SHARD}.done").is_file()


def _workflow(tmp_path: Path, dataset: Path, avatars: Path) -> tuple[Path, list[str]]:
    """A results folder holding the drill's prepared set and avatars; the snakemake arguments that render its shard
    (in a working directory of its own: Snakemake's lock lives there)."""
    results = tmp_path / "results"
    shutil.copytree(dataset, results / "demo")
    shutil.copytree(avatars, results / "avatars" / "anny")
    config = {
        "results_dir": str(results),
        "datasets": {"demo": {"bundle": str(REPO / "resources" / "demo"), "limit": 3}},
        "prepare": {"shard_size": 16},
        "render": {"resolution": int(RESOLUTION)},
    }
    (tmp_path / "drill.yaml").write_text(yaml.safe_dump(config))
    target = str(results / f"demo/frames/{SHARD}.done")
    where = ["-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--configfile", str(tmp_path / "drill.yaml")]
    return results, [target, "--cores", "1", *where]


def test_a_second_workflow_is_refused_and_a_direct_render_takes_turns_with_the_job(
    demo_shard: Path, avatars_dir: Path, reference: dict, tmp_path: Path
) -> None:
    results, snakemake = _workflow(tmp_path, demo_shard, avatars_dir)
    frames, job_log = results / "demo" / "frames", results / f"logs/render/demo/{SHARD}.log"
    direct_log, direct_stats = tmp_path / "direct.log", tmp_path / "direct.json"
    # the drill holds the shard first, so that the workflow's job and the direct command both start while it runs
    with folder_lock(frames, "the drill", shard_lock_name(SHARD)):
        job = subprocess.Popen([SNAKEMAKE, *snakemake], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_for_text(job_log, "waiting for the drill", job)  # the render job has started
        second = run_snakemake(REPO, *snakemake, timeout=300)
        assert second.returncode != 0 and "Directory cannot be locked" in second.stdout + second.stderr
        direct = lavimo_process(*shard_args(results / "demo", avatars_dir, frames, direct_stats), log=direct_log)
        wait_for_text(direct_log, "waiting for the drill", direct)
    job_output = job.communicate(timeout=600)[0]
    assert job.returncode == 0, job_output[-3000:]
    assert direct.wait(timeout=600) == 0, direct_log.read_text()[-3000:]

    counts = re.search(r"rendered (\d+), skipped (\d+), rejected (\d+)", job_log.read_text())
    assert counts is not None, job_log.read_text()[-3000:]
    job_counts = tuple(map(int, counts.groups()))
    by_hand = json.loads(direct_stats.read_text())
    by_hand_counts = (by_hand["rendered"], by_hand["skipped"], by_hand["rejected"])
    assert sorted([job_counts, by_hand_counts]) == [(0, 6, 0), (6, 0, 0)]  # one rendered the shard, one found it done
    assert rendered(frames) == reference
    assert read_rejections(frames / f"{SHARD}.rejected.csv") == [] and (frames / f"{SHARD}.done").is_file()


def _kib(clip: Path) -> int:
    """KiB a clip folder takes on a tmpfs (whole 4 KiB pages per file)."""
    return sum(-(-path.stat().st_size // 4096) * 4 for path in clip.iterdir())


def test_a_full_disk_stops_the_render_clearly_and_a_rerun_with_space_finishes(
    demo_shard: Path, avatars_dir: Path, reference_frames: Path, reference: dict, tmp_path: Path
) -> None:
    ids = clip_ids(demo_shard)
    room = _kib(reference_frames / ids[0]) + _kib(reference_frames / ids[1]) + _kib(reference_frames / ids[2]) // 2
    frames, stats = tmp_path / "frames", tmp_path / "stats.json"
    with small_disk(frames, room) as resize:
        code, output = run_lavimo(*shard_args(demo_shard, avatars_dir, frames, stats))
        assert code == 1, output[-3000:]
        assert re.search(r"^lavimo: error: \S+: no space left on device", output, flags=re.MULTILINE), output[-3000:]
        assert "Traceback" not in output
        done = rendered(frames)  # the clips written before the disk filled up, whole and right
        assert 1 <= len(done) < len(ids) and all(done[c] == reference[c] for c in done)
        assert not list(frames.glob(".*.tmp-*"))  # the clip being written went away with its half-written frames
        assert not (frames / f"{SHARD}.done").exists() and not (frames / f"{SHARD}.rejected.csv").exists()

        resize(4 * room + 1024)
        code, output = run_lavimo(*shard_args(demo_shard, avatars_dir, frames, stats))
        assert code == 0, output[-3000:]
        summary = json.loads(stats.read_text())
        assert (summary["rendered"], summary["skipped"], summary["rejected"]) == (len(ids) - len(done), len(done), 0)
        assert rendered(frames) == reference and (frames / f"{SHARD}.done").is_file()
