"""`lavimo bench features`: frames/s of a feature-cache build against the bare encoder on the same batches.

The build decodes PNGs and augments views in DataLoader workers while the main process encodes; the ratio
build / bare shows whether decoding and augmentation starve the model (target >= 0.9). Uses the rendered
frames of the first enabled dataset when they exist, else synthetic 512x512 PNG clips (all train: 4
augmented views each, the heaviest case). Environment knobs: LAVIMO_BENCH_WORKERS, LAVIMO_BENCH_BATCH,
LAVIMO_BENCH_CHECKPOINT (CLIP weights), LAVIMO_BENCH_ENCODERS=resolved (skip the random-init CLIP run).
The steady-state rate (after the first batch: DataLoader start-up and pipeline fill excluded, as they
vanish on a real dataset) is compared with the bare encoder.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lavimo.bench.common import load_config
from lavimo.video.build import BuildOptions, ClipViews, build_feature_cache, plan_items
from lavimo.video.encoders import FrameEncoder, load_frame_encoder

log = logging.getLogger(__name__)


def _dataset_dirs(config: dict[str, Any]) -> tuple[Path, Path] | None:
    """(dataset dir, frames dir) of the first enabled dataset if it has a manifest and frames."""
    results = Path(config["results_dir"])
    for name in config["datasets_enabled"]:
        ds = results / name
        if (ds / "manifest.parquet").is_file() and any((ds / "frames").glob("*/00.png")):
            return ds, ds / "frames"
    return None


def synthetic_dataset(root: Path, n_clips: int, size: int = 512) -> tuple[Path, Path]:
    """A manifest and PNG frames of ``n_clips`` train clips: a moving figure on a floor, with texture noise."""
    import pandas as pd
    from PIL import Image

    from lavimo.datasets.manifest import write_manifest

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    rows = []
    for c in range(n_clips):
        clip_dir = root / "frames" / f"bench{c:04d}"
        clip_dir.mkdir(parents=True, exist_ok=True)
        for k in range(8):
            image = np.full((size, size, 3), 190, np.uint8)
            image[yy > size * 0.7] = (120, 110, 100)
            cx = size // 2 + int(size * 0.15 * np.sin(0.6 * k + c))
            body = (np.abs(xx - cx) < size * 0.05) & (yy > size * 0.25) & (yy < size * 0.75)
            image[body] = (60, 90, 160)
            image = np.clip(image + rng.integers(-6, 7, image.shape), 0, 255).astype(np.uint8)
            Image.fromarray(image).save(clip_dir / f"{k:02d}.png")
        rows.append(
            {"clip_id": f"bench{c:04d}", "source": "synthetic", "split": "train", "fps": 20, "n_frames": 64,
             "texts": [{"text": "a person walks", "start": 0.0, "end": 0.0}], "avatar": 0, "mirrored_from": None,
             "shard": f"{c // 16:04d}"}
        )  # fmt: skip
    write_manifest(root, pd.DataFrame(rows))
    return root, root / "frames"


def bare_encoder_fps(encoder: FrameEncoder, batch: torch.Tensor, total_frames: int) -> float:
    """Frames/s of the encoder alone on one fixed batch, repeated until ``total_frames`` (at least 2 passes)."""
    encoder(batch)  # warm-up
    if batch.device.type == "cuda":
        torch.cuda.synchronize()
    passes = max(2, round(total_frames / len(batch)))
    start = time.perf_counter()
    for _ in range(passes):
        encoder(batch)
    if batch.device.type == "cuda":
        torch.cuda.synchronize()
    return passes * len(batch) / (time.perf_counter() - start)


def first_batch(ds_dir: Path, frames_dir: Path, encoder: FrameEncoder, options: BuildOptions) -> torch.Tensor:
    """The frames of the first encoder batch of a build (views of ``batch_size`` clips), on the encoder's device."""
    from lavimo.datasets.manifest import load_manifest

    items = [i for shard in plan_items(load_manifest(ds_dir), options.views, set(), None).values() for i in shard]
    dataset = ClipViews(items[: options.batch_size], frames_dir, options, encoder.preprocessing.input_size)
    views = [dataset[i]["views"] for i in range(len(dataset))]
    return torch.cat([v.flatten(0, 1) for v in views]).to(encoder.mean.device)


@dataclass
class BuildTiming:
    """Frames and times of a build: overall, and in the steady state (after the first batch arrived)."""

    frames: int = 0
    seconds: float = 0.0
    stamps: list[tuple[float, int, float]] = field(default_factory=list)

    def on_batch(self, n_frames: int, encode_seconds: float) -> None:
        """Record one encoded batch."""
        self.stamps.append((time.perf_counter(), n_frames, encode_seconds))

    def encoder_busy(self) -> float:
        """Fraction of the steady state the main process spent encoding (the rest: waiting for the loader)."""
        if len(self.stamps) < 2:
            return 1.0
        return sum(s for _, _, s in self.stamps[1:]) / (self.stamps[-1][0] - self.stamps[0][0])

    def steady_fps(self) -> float:
        """Frames/s from the end of the first batch to the end of the last (pipeline fill excluded)."""
        if len(self.stamps) < 2:
            return self.frames / self.seconds
        frames = sum(n for _, n, _ in self.stamps[1:])
        return frames / (self.stamps[-1][0] - self.stamps[0][0])


def bench_one(
    encoder: FrameEncoder, ds_dir: Path, frames_dir: Path, options: BuildOptions
) -> tuple[BuildTiming, float]:
    """(build timing, bare encoder frames/s on the build's first batch) for one encoder.

    The bare rate is the better of a measurement before and one after the build (a conservative ratio on a
    shared machine).
    """
    batch = first_batch(ds_dir, frames_dir, encoder, options)
    before = bare_encoder_fps(encoder, batch, 4 * len(batch))
    timing = BuildTiming()
    with tempfile.TemporaryDirectory(prefix="lavimo-bench-") as out:
        start = time.perf_counter()
        cache = build_feature_cache(ds_dir, frames_dir, out, encoder, options, on_batch=timing.on_batch)
        timing.seconds = time.perf_counter() - start
        timing.frames = sum(cache.n_views(c) for c in cache.clip_ids) * cache.num_frames
    return timing, max(before, bare_encoder_fps(encoder, batch, timing.frames))


def bench_features(args: argparse.Namespace) -> int:
    """Print build and bare-encoder frames/s and their ratio, for the resolved encoder (and CLIP's compute)."""
    workers = int(os.environ.get("LAVIMO_BENCH_WORKERS", min(8, os.cpu_count() or 1)))
    options = BuildOptions(batch_size=int(os.environ.get("LAVIMO_BENCH_BATCH", 2)), workers=workers, progress=False)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    encoders = [load_frame_encoder(checkpoint=os.environ.get("LAVIMO_BENCH_CHECKPOINT"), device=device)]
    if encoders[0].name != "clip-vit-b32" and os.environ.get("LAVIMO_BENCH_ENCODERS") != "resolved":
        encoders.append(load_frame_encoder(random_init=True, device=device))  # the paper encoder's compute
    with tempfile.TemporaryDirectory(prefix="lavimo-bench-data-") as tmp:
        found = _dataset_dirs(load_config(args.config))
        if found is None:
            found = synthetic_dataset(Path(tmp), args.limit or 16)
        source = "synthetic 512px PNG clips (all train)" if found[0] == Path(tmp) else str(found[0])
        options = BuildOptions(**{**options.__dict__, "limit": args.limit})
        print(f"features bench: {source}, device {device}, torch threads {torch.get_num_threads()}, "
              f"workers {options.workers}, batch {options.batch_size} clips, views {options.views}")  # fmt: skip
        for encoder in encoders:
            timing, bare_fps = bench_one(encoder, found[0], found[1], options)
            steady = timing.steady_fps()
            print(
                f"  {encoder.name} ({encoder.weights.source}), {timing.frames} frames: build {steady:.1f} frames/s "
                f"steady ({timing.frames / timing.seconds:.1f} incl. start-up) | bare encoder {bare_fps:.1f} "
                f"frames/s | ratio {steady / bare_fps:.2f} | encoder busy {100 * timing.encoder_busy():.0f}%"
            )
    return 0
