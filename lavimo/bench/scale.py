"""`lavimo bench scale`: what each stage costs per clip on this machine, and the wall time that projects for HumanML3D.

Measured on small real samples of the bundled demo (Bandai-Namco BVHs), through the commands the rules run:
`lavimo prepare demo`, `lavimo render shard`, `lavimo features build` and `lavimo features sentences`, each at two
sample sizes in a child process whose CPU time (user + system, its workers included) is taken, so that the slope
is the cost per clip and the intercept the cost per job (start-up, model loading). Prepare and sentences cost
little per clip next to their start-up: their second sample is ten times the larger one. Training (the preset
HumanML3D trains with, `paper` by default: one epoch per 1,000 clips) and evaluation (embedding the clips) are
timed in a child process on the larger sample. CPU seconds, not wall seconds, so that other work on a shared
machine inflates the figures less.

The projection for HumanML3D (29,232 clips with mirrors, 80/5/15 % train/val/test, shards of
``prepare.shard_size``) assumes work spreads ideally over cores: prepare, sentences, training and evaluation are
one job each on one node (lavimo trains on one machine, so a cluster does not shorten them); render and
features run one job per shard, on as many cores as there are. The GPU column uses figures measured here on a
GPU (features: `lavimo features build --device cuda`; training and evaluation: the same child on the GPU) and
says "unmeasured" where this machine has none. Knobs: ``--limit N`` source clips in the larger sample (default 6),
LAVIMO_BENCH_TRAIN_STEPS (timed training steps, default 3), LAVIMO_BENCH_TRAIN_BATCH (default 8).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lavimo.bench.common import full_dataset_views, load_config
from lavimo.bench.dag import HUMANML3D_CLIPS, split_counts
from lavimo.bench.render import demo_avatars

NODE_CORES, NODES = 16, 10  # the machines of the projection
CHEAP_SCALE = 10  # prepare and sentences are measured on a sample this many times the larger one
CAPTIONS_PER_CLIP = 3  # HumanML3D: 44,970 captions of 14,616 motions, and their mirrors' (left/right swapped)


@dataclass(frozen=True)
class StageCost:
    """CPU seconds of one stage: per clip (the slope between two sample sizes) and per job (the intercept)."""

    stage: str
    per_clip: float
    per_job: float
    sample: str  # what was measured
    gpu_per_clip: float | None = None  # wall seconds per clip on one GPU, when measured
    unit: str = "clip"  # what per_clip counts (sentences: unique captions)


@dataclass(frozen=True)
class Row:
    """One line of the projection table (seconds; None: not measured)."""

    stage: str
    sample: str
    cost: str
    work: str
    machine: float
    cluster: float
    gpu: float | str | None  # a string: not a GPU stage


def _lavimo(*args: str) -> float:
    """Run `lavimo ARGS` in a child process; its CPU seconds (user + system, reaped workers included)."""
    with tempfile.TemporaryFile("w+") as stderr:
        command = [sys.executable, "-m", "lavimo.cli", *args]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            stderr.seek(0)
            raise RuntimeError(f"`lavimo {' '.join(args)}` failed (exit {process.returncode}): {stderr.read()[-2000:]}")
    return usage.ru_utime + usage.ru_stime


def fit(
    stage: str, counts: tuple[int, int], seconds: tuple[float, float], sample: str, unit: str = "clip"
) -> StageCost:
    """Per-clip and per-job cost from two sample sizes (when noise makes the slope useless: all per clip)."""
    (n1, n2), (s1, s2) = counts, seconds
    slope = (s2 - s1) / (n2 - n1) if n2 != n1 else 0.0
    if slope <= 0:
        return StageCost(stage, s2 / n2, 0.0, sample, unit=unit)
    return StageCost(stage, slope, max(0.0, s1 - slope * n1), sample, unit=unit)


def render_args(config: dict[str, Any]) -> list[str]:
    """The studio options `lavimo render shard` gets from the config (as rules/common.smk passes them)."""
    render = config["render"]
    args = ["--engine", render["engine"], "--mode", render["mode"], "--num-frames", str(render["num_frames"])]
    args += ["--resolution", str(render["resolution"]), "--mesh-detail", str(render["mesh_detail"])]
    return args + (["--force-engine"] if render["force_engine"] else [])


def features_args(config: dict[str, Any]) -> list[str]:
    """The options `lavimo features build` gets from the config (as rules/common.smk passes them)."""
    feats = config["features"]
    args = ["--encoder", feats["encoder"], "--views", str(full_dataset_views(config))]
    args += ["--frames", str(config["render"]["num_frames"])]
    args += ["--batch-size", str(feats["batch_size"]), "--seed", str(feats["seed"])]
    return args + (["--checkpoint", str(feats["checkpoint"])] if feats["checkpoint"] else [])


def measure_sample(
    config: dict[str, Any], sources: int, work: Path, avatars: Path, render: bool = True
) -> tuple[Path, dict[str, int], dict[str, float]]:
    """Prepare ``sources`` demo sources (and mirrors), render and encode them (if ``render``) and embed their
    captions; (dataset, {"clips": .., "captions": unique captions}, CPU seconds per stage)."""
    from lavimo.datasets.manifest import load_manifest
    from lavimo.text.sentences import manifest_captions

    ds = work / f"demo-{sources}"
    bundle = str(config["datasets"]["demo"]["bundle"])
    cpu = {"prepare": _lavimo("prepare", "demo", "--out", str(ds), "--bundle", bundle, "--limit", str(sources),
                              "--workers", "1", "--shard-size", str(config["prepare"]["shard_size"]))}  # fmt: skip
    manifest = load_manifest(ds)
    cpu["sentences"] = _lavimo("features", "sentences", "--dataset-dir", str(ds), "--out", str(ds / "sentences"))
    counts = {"clips": len(manifest), "captions": len(manifest_captions(manifest["texts"]))}
    if not render:
        return ds, counts, cpu
    where = ["--dataset-dir", str(ds), "--avatars", str(avatars), "--frames-dir", str(ds / "frames")]
    cpu["render"] = sum(
        _lavimo("render", "shard", *where, "--shard", shard, *render_args(config), "--threads", "1")
        for shard in sorted(manifest["shard"].unique())
    )
    build = ["features", "build", "--dataset-dir", str(ds), "--frames-dir", str(ds / "frames")]
    cpu["features"] = _lavimo(*build, "--out", str(ds / "features"), *features_args(config), "--workers", "2",
                              "--device", "cpu")  # fmt: skip
    return ds, counts, cpu


def gpu_features(config: dict[str, Any], ds: Path, clips: int) -> float | None:
    """Wall seconds per clip of `lavimo features build --device cuda` on the sample (None without a GPU)."""
    import torch

    if not torch.cuda.is_available():
        return None
    start = time.perf_counter()
    _lavimo("features", "build", "--dataset-dir", str(ds), "--frames-dir", str(ds / "frames"),
            "--out", str(ds / "features-gpu"), *features_args(config), "--device", "cuda")  # fmt: skip
    return (time.perf_counter() - start) / clips


def _train_child(dataset_dir: str, preset: str, device: str, batch: int, steps: int, queue: Any) -> None:
    try:
        queue.put(train_and_embed(dataset_dir, preset, device, batch, steps))
    except Exception as error:  # reported by the parent
        queue.put({"error": f"{type(error).__name__}: {error}"})


def train_and_embed(dataset_dir: str, preset: str, device: str, batch: int, steps: int) -> dict[str, Any]:
    """``steps`` training steps (after one warm-up step) of ``preset`` on the dataset, then embedding its training
    clips as evaluation does: CPU and wall seconds per training sample and per embedded clip."""
    import torch
    from tqdm import tqdm

    from lavimo.embed import embed_dataset
    from lavimo.train import Trainer, make_train_config

    overrides = {"batch_size": batch, "epochs": 10_000, "variant": "3modal", "num_workers": 0, "device": device}
    cfg = make_train_config(preset, overrides)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(dataset_dir, out, cfg, progress=False)
        per_epoch = len(trainer.sampler)
        if per_epoch == 0:
            raise ValueError(f"{len(trainer.data.train)} training clips: fewer than one batch of {batch}")
        bar = tqdm(disable=True)
        trainer.train_epoch(bar, per_epoch, max_steps=1)  # warm-up: allocator, lazy initialisation
        sync()
        cpu, wall, done = time.process_time(), time.perf_counter(), 0
        while done < steps:
            trainer.epoch += 1  # another epoch's batches
            before = trainer.step
            trainer.train_epoch(bar, per_epoch, max_steps=steps - done)
            done += trainer.step - before
        sync()
        train_cpu, train_wall = time.process_time() - cpu, time.perf_counter() - wall
        cpu, wall = time.process_time(), time.perf_counter()
        embedded = embed_dataset(trainer.model, trainer.data.train, batch, cfg.precision)
        sync()
        clips = len(embedded["clip_ids"])
        return {
            "samples": done * batch,
            "train_cpu_per_sample": train_cpu / (done * batch),
            "train_wall_per_sample": train_wall / (done * batch),
            "eval_cpu_per_clip": (time.process_time() - cpu) / clips,
            "eval_wall_per_clip": (time.perf_counter() - wall) / clips,
            "parameters_m": trainer.model.metadata()["parameters"]["total"] / 1e6,
            "text_encoder": trainer.model.text_encoder_source.split(" (")[0],
        }


def measure_training(dataset_dir: Path, preset: str, device: str) -> dict[str, Any]:
    """:func:`train_and_embed` in a fresh process (its memory is its own)."""
    batch = int(os.environ.get("LAVIMO_BENCH_TRAIN_BATCH", "8"))
    steps = int(os.environ.get("LAVIMO_BENCH_TRAIN_STEPS", "3"))
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_train_child, args=(str(dataset_dir), preset, device, batch, steps, queue))
    process.start()
    result = queue.get()
    process.join()
    if "error" in result:
        raise RuntimeError(f"training {preset} on {device}: {result['error']}")
    return {**result, "batch": batch, "steps": steps}


def duration(seconds: float | None) -> str:
    """A wall time for people: s, min, h or days."""
    if seconds is None:
        return "unmeasured"
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _waves(jobs: int, slots: int, job_seconds: float) -> float:
    """Wall time of ``jobs`` equal one-core jobs on ``slots`` cores."""
    return math.ceil(jobs / slots) * job_seconds


def project(
    costs: dict[str, StageCost],
    train: dict[str, Any],
    epochs: int,
    gpu_train: dict[str, Any] | None,
    clips: int = HUMANML3D_CLIPS,
    shard_size: int = 128,
) -> list[Row]:
    """Wall times of HumanML3D's stages on one 16-core machine, 10 such nodes under Slurm, and one GPU."""
    splits = split_counts(clips)
    shards = math.ceil(clips / shard_size)
    rows = []
    for name, items in (("prepare", clips), ("sentences", CAPTIONS_PER_CLIP * clips)):
        cost = costs[name]
        seconds = (cost.per_job + items * cost.per_clip) / NODE_CORES  # one job, all cores of one node
        per = f"{cost.per_clip:.3f} CPU s/{cost.unit} + {cost.per_job:.0f} s/job"
        rows.append(Row(name, cost.sample, per, f"{items:,} {cost.unit}s, 1 job", seconds, seconds, "CPU stage"))
    for name in ("render", "features"):
        cost = costs[name]
        job = cost.per_job + shard_size * cost.per_clip
        gpu = None if name == "features" else "CPU stage"
        if name == "features" and cost.gpu_per_clip is not None:
            gpu = clips * cost.gpu_per_clip
        rows.append(
            Row(name, cost.sample, f"{cost.per_clip:.2f} CPU s/clip + {cost.per_job:.0f} s/job",
                f"{shards} shard jobs", _waves(shards, NODE_CORES, job), _waves(shards, NODE_CORES * NODES, job), gpu)
        )  # fmt: skip
    samples = epochs * splits["train"]
    train_seconds = samples * train["train_cpu_per_sample"] / NODE_CORES
    gpu = samples * gpu_train["train_wall_per_sample"] if gpu_train else None
    per_1000 = 1000 * train["train_cpu_per_sample"]
    rows.append(
        Row(f"train ({train['preset']}, {epochs} epochs)", train["sample"], f"{duration(per_1000)} CPU per epoch of "
            f"1,000 clips", f"{epochs} x {splits['train']:,} clips, 1 job", train_seconds, train_seconds, gpu)
    )  # fmt: skip
    eval_seconds = splits["test"] * train["eval_cpu_per_clip"] / NODE_CORES
    gpu = splits["test"] * gpu_train["eval_wall_per_clip"] if gpu_train else None
    rows.append(
        Row("evaluate", train["eval_sample"], f"{train['eval_cpu_per_clip']:.2f} CPU s/clip",
            f"{splits['test']:,} test clips, 1 job", eval_seconds, eval_seconds, gpu)
    )  # fmt: skip
    return rows


def table(rows: list[Row]) -> str:
    """The projection as a Markdown table, with a total line."""
    lines = [
        f"| stage | measured on | cost here | HumanML3D work | one {NODE_CORES}-core machine | {NODES}-node Slurm "
        f"cluster ({NODE_CORES} cores each) | features + training on one GPU |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        gpu = r.gpu if isinstance(r.gpu, str) else duration(r.gpu)
        lines.append(f"| {r.stage} | {r.sample} | {r.cost} | {r.work} | {duration(r.machine)} | "
                     f"{duration(r.cluster)} | {gpu} |")  # fmt: skip
    machine, cluster = sum(r.machine for r in rows), sum(r.cluster for r in rows)
    on_gpu = [r.machine if isinstance(r.gpu, str) else r.gpu for r in rows]  # CPU stages on the 16-core machine
    gpu_total = None if None in on_gpu else sum(on_gpu)
    note = f" (CPU stages on the {NODE_CORES}-core machine)" if gpu_total is not None else ""
    lines.append(f"| total | | | | {duration(machine)} | {duration(cluster)} | {duration(gpu_total)}{note} |")
    return "\n".join(lines)


def bench_scale(args: argparse.Namespace) -> int:
    """Measure each stage on two demo samples, print the per-clip costs and the HumanML3D projection."""
    import torch

    from lavimo.datasets.manifest import load_manifest
    from lavimo.presets import resolve_preset
    from lavimo.train import make_train_config
    from lavimo.video.cache import FeatureCache

    config = load_config(args.config)
    large = args.limit or 6
    small = max(1, large // 3)
    preset = resolve_preset(config["preset"], "humanml3d")
    epochs = make_train_config(preset, config["train"]["overrides"]).epochs
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="lavimo-bench-scale-") as tmp:
        work = Path(tmp)
        avatars = demo_avatars(config, work)
        (_, c1, cpu1), (ds, c2, cpu2) = (measure_sample(config, n, work, avatars) for n in (small, large))
        # prepare and caption embedding cost little per clip next to their start-up: a sample 10 times larger
        _, c3, cpu3 = measure_sample(config, CHEAP_SCALE * large, work, avatars, render=False)
        n1, n2 = c1["clips"], c2["clips"]
        measured = {stage: ("clips", c1, c2, cpu1, cpu2) for stage in ("render", "features")}
        measured |= {"prepare": ("clips", c1, c3, cpu1, cpu3), "sentences": ("captions", c1, c3, cpu1, cpu3)}
        costs = {
            stage: fit(stage, (a[unit], b[unit]), (cpu_a[stage], cpu_b[stage]),
                       f"{a['clips']} and {b['clips']} demo clips", unit.removesuffix("s"))
            for stage, (unit, a, b, cpu_a, cpu_b) in measured.items()
        }  # fmt: skip
        encoder = FeatureCache.open_current(ds / "features").meta["encoder"]
        splits = load_manifest(ds)["split"].value_counts().to_dict()
        gpu = gpu_features(config, ds, n2)
        if gpu is not None:
            costs["features"] = StageCost(**{**costs["features"].__dict__, "gpu_per_clip": gpu})
        train = measure_training(ds, preset, "cpu")
        train["sample"] = f"{n2} demo clips, batch {train['batch']}, {train['steps']} steps"
        train.update(preset=preset, eval_sample=f"{n2} demo clips")
        gpu_train = measure_training(ds, preset, "cuda") if torch.cuda.is_available() else None
    print(
        f"bench scale: per-clip costs on this machine ({os.cpu_count()} CPUs, load average {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after), demo samples of {n1} and {n2} clips (prepare and sentences: {n1} and "
        f"{c3['clips']}); render {config['render']['engine']} {config['render']['resolution']}x"
        f"{config['render']['resolution']}; features {encoder['name']} (weights: {encoder['weights']['source']}), "
        f"{full_dataset_views(config)} views per training clip (the larger sample's splits: {splits}); training "
        f"preset {preset} ({train['parameters_m']:.1f} M parameters, text encoder {train['text_encoder']})"
    )
    for cost in costs.values():
        unit, a, b, cpu_a, cpu_b = measured[cost.stage]
        print(
            f"  {cost.stage:10s} {cost.per_clip:8.3f} CPU s per {cost.unit}, {cost.per_job:6.1f} CPU s per job "
            f"(measured: {cpu_a[cost.stage]:.1f} CPU s for {a[unit]} {unit}, {cpu_b[cost.stage]:.1f} for {b[unit]})"
        )
    per_sample = train["train_cpu_per_sample"]
    print(
        f"  {'train':10s} {per_sample:8.3f} CPU s per sample ({1000 * per_sample / 3600:.2f} CPU h per epoch of 1,000 "
        f"clips), {train['train_wall_per_sample']:.3f} s wall per sample"
    )
    print(f"  {'evaluate':10s} {train['eval_cpu_per_clip']:8.3f} CPU s per clip")
    rows = project(costs, train, epochs, gpu_train, shard_size=config["prepare"]["shard_size"])
    print(f"\nHumanML3D ({HUMANML3D_CLIPS:,} clips with mirrors), projected wall time:\n")
    print(table(rows))
    if gpu_train is None:
        print("\nGPU: unmeasured (no GPU on this machine); run `lavimo bench scale` on a GPU host to fill the column")
    return 0
