"""`lavimo bench dag`: time and peak memory of Snakemake building the DAG of `train_humanml3d` at HumanML3D's size.

A synthetic prepared HumanML3D (:func:`synthetic_humanml3d`: a manifest of 29,232 clips in shards, as `lavimo
prepare humanml3d` lays them out; no motion files, which the DAG never reads) goes into a scratch results
folder; `snakemake -n train_humanml3d` runs on it in a child process whose wall time and peak RSS are
reported, with the jobs per rule (shards, not one job per clip). Targets: under 60 s and under 2 GiB.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from lavimo.avatars.assign import avatar_for_clip
from lavimo.bench.common import load_config
from lavimo.layout import mirror_clip_id

REPO = Path(__file__).resolve().parents[2]
HUMANML3D_CLIPS = 29_232  # HumanML3D with its mirrored copies
SPLIT_SHARES = {"train": 0.80, "val": 0.05, "test": 0.15}  # HumanML3D's lists: 23,384 / 1,460 / 4,384 clips
HUMANML3D_TRAIN_CLIPS = 23_384  # HumanML3D's train list with its mirrored copies
TARGET_SECONDS, TARGET_BYTES = 60.0, 2 * 2**30
CAPTIONS = ("a person walks forward and stops.", "someone waves with the right hand.", "a man jumps twice.")


def split_counts(clips: int) -> dict[str, int]:
    """Clips per split for a dataset of ``clips`` clips, in HumanML3D's proportions (train takes the rest)."""
    counts = {split: round(clips * share) for split, share in SPLIT_SHARES.items() if split != "train"}
    return {"train": clips - sum(counts.values()), **counts}


def synthetic_humanml3d(
    dataset_dir: str | os.PathLike[str], clips: int = HUMANML3D_CLIPS, shard_size: int = 128
) -> int:
    """Write the ``manifest.parquet`` of a prepared HumanML3D-like dataset of ``clips`` clips (half of them the
    `M`-prefixed mirrors of the other half, split by source in HumanML3D's proportions, three captions each,
    ``shard_size`` clips per shard in id order); returns the number of shards. No motion shards are written."""
    from lavimo.datasets.manifest import write_manifest

    sources = [f"{i:06d}" for i in range(clips // 2)]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(sources))
    split_of = {}
    bounds = split_counts(len(sources))
    cuts = np.cumsum([bounds["train"], bounds["val"]])
    for rank, index in enumerate(order):
        split_of[sources[index]] = "train" if rank < cuts[0] else "val" if rank < cuts[1] else "test"
    lengths = rng.integers(40, 197, len(sources))
    rows = []
    for source, n_frames in zip(sources, lengths, strict=True):
        for clip_id in (source, mirror_clip_id(source)):
            rows.append(
                {
                    "clip_id": clip_id,
                    "source": f"synthetic/{source}.npy",
                    "split": split_of[source],
                    "fps": 20,
                    "n_frames": int(n_frames),
                    "texts": [{"text": text, "start": 0.0, "end": 0.0} for text in CAPTIONS],
                    "avatar": avatar_for_clip(clip_id),
                    "mirrored_from": source if clip_id != source else "",
                    "shard": f"{len(rows) // shard_size:04d}",
                }
            )
    write_manifest(dataset_dir, pd.DataFrame(rows))
    return math.ceil(len(rows) / shard_size)


@dataclass(frozen=True)
class DagRun:
    """What one `snakemake -n` run took, and the jobs it planned."""

    seconds: float
    peak_bytes: int
    jobs: dict[str, int]  # rule -> jobs; "total" included
    returncode: int
    output: str


def _job_stats(output: str) -> dict[str, int]:
    """The first "Job stats" table of a snakemake output: rule -> count."""
    table = output.split("Job stats:", 1)[-1].split("\n\n", 1)[0]
    return {rule: int(count) for rule, count in re.findall(r"^(\w+)\s+(\d+)\s*$", table, flags=re.MULTILINE)}


# Runs argv[2:] and writes its peak RSS (KiB) to argv[1]. Measuring through this small launcher matters: a child
# forked straight from a big process (pytest after torch) reports the parent's RSS as its own peak.
_PEAK_RSS_LAUNCHER = """
import os, sys
pid = os.spawnv(os.P_NOWAIT, sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def dry_run(workdir: Path, configfile: Path, target: str) -> DagRun:
    """`snakemake -n TARGET` on this checkout's Snakefile in ``workdir``: wall time and peak RSS of the process."""
    snakemake = Path(sys.executable).parent / "snakemake"
    command = [str(snakemake), target, "-n", "-s", str(REPO / "Snakefile"), "-d", str(workdir)]
    log, peak_file = workdir / "dry_run.log", workdir / "dry_run.peak_kib"
    with open(log, "w") as out:
        start = time.perf_counter()
        launcher = [sys.executable, "-c", _PEAK_RSS_LAUNCHER, str(peak_file)]
        returncode = subprocess.call([*launcher, *command, "--configfile", str(configfile)], stdout=out,
                                     stderr=subprocess.STDOUT)  # fmt: skip
        seconds = time.perf_counter() - start
    output = log.read_text()
    peak_kib = int(peak_file.read_text()) if peak_file.is_file() else 0  # 0: snakemake never started
    return DagRun(seconds, peak_kib * 1024, _job_stats(output), returncode, output)


def humanml3d_dag(scratch: Path, config: dict, clips: int) -> tuple[DagRun, int, float]:
    """Write a synthetic prepared HumanML3D of ``clips`` clips under ``scratch`` and dry-run `train_humanml3d` on it;
    (the run, shards, seconds spent writing the manifest)."""
    root, results = scratch / "HumanML3D", scratch / "results"
    root.mkdir(parents=True)  # the dataset's input folder: older than the manifest, so `prepare` is not planned
    start = time.perf_counter()
    shards = synthetic_humanml3d(results / "humanml3d", clips, config["prepare"]["shard_size"])
    written = time.perf_counter() - start
    config = {**config, "results_dir": str(results)}
    config["datasets"] = {**config["datasets"], "humanml3d": {**config["datasets"]["humanml3d"], "root": str(root)}}
    configfile = scratch / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    return dry_run(scratch, configfile, "train_humanml3d"), shards, written


def bench_dag(args: argparse.Namespace) -> int:
    """Print the DAG's jobs, its build time and peak memory against the targets."""
    config = load_config(args.config)
    clips = args.limit or HUMANML3D_CLIPS
    with tempfile.TemporaryDirectory(prefix="lavimo-bench-dag-") as tmp:
        run, shards, written = humanml3d_dag(Path(tmp), config, clips)
    if run.returncode != 0:
        print(f"bench dag: snakemake -n train_humanml3d failed (exit {run.returncode}):\n{run.output[-3000:]}")
        return 1
    size = config["prepare"]["shard_size"]
    print(
        f"bench dag: `snakemake -n train_humanml3d` on a synthetic prepared HumanML3D: {clips:,} clips in {shards} "
        f"shards of {size} (manifest written in {written:.1f} s, not counted)"
    )
    rules = ", ".join(f"{rule} {count}" for rule, count in sorted(run.jobs.items()) if rule != "total")
    total = run.jobs.get("total", 0)
    print(f"  jobs: {total:,} ({rules}): {total / clips:.4f} jobs per clip")
    within = run.seconds < TARGET_SECONDS and run.peak_bytes < TARGET_BYTES
    print(
        f"  DAG built in {run.seconds:.1f} s wall (target < {TARGET_SECONDS:.0f} s), peak memory "
        f"{run.peak_bytes / 2**20:.0f} MiB (target < {TARGET_BYTES / 2**30:.0f} GiB): "
        f"{'within both targets' if within else 'OVER TARGET'}"
    )
    print(f"  load average (1 min) {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    return 0 if within else 1
