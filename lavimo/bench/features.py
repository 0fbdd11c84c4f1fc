"""`lavimo bench features`: the frame encoders' ways to run on this machine, then a feature-cache build.

1. The bare encoder on one fixed batch of real training views, for the resolved encoder (EfficientNet-Lite0
   without CLIP weights) and CLIP ViT-B/32 (random weights: its compute): torch as the pipeline ran it before
   (channels-last for the convolutional net, batches as given, torch's threads) against the other memory
   layout, smaller batches, one intra-op thread, two inter-op streams of one thread, OpenVINO, ONNX Runtime
   (when installed; the convolutional net only) and ``torch.compile`` (``LAVIMO_BENCH_COMPILE=1``: minutes of
   compiling). Each line: frames/s and the max abs difference from the torch features; "equal" means below
   one float16 step at the largest feature, i.e. the cached (float16) features are the same to within rounding.
2. A build of a small fixed sample (the first 8 clips of the first enabled dataset that has frames, else
   synthetic 512px clips; ``--limit N`` for more) with the runtime the pipeline uses:
   frames/s against the bare encoder, the share of the time the encoder waits for decoded and augmented
   views, and what decoding + augmenting a clip costs next to encoding it.

Environment knobs: LAVIMO_BENCH_CHECKPOINT (CLIP weights), LAVIMO_BENCH_ENCODERS=resolved (no CLIP-compute
lines), LAVIMO_BENCH_COMPILE=1, LAVIMO_BENCH_WORKERS=1,2 (the builds' worker counts; default 1, as the pipeline).
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lavimo.bench.common import full_dataset_views, load_config
from lavimo.video.build import BuildOptions, ClipViews, build_feature_cache, plan_items
from lavimo.video.encoders import FrameEncoder, load_frame_encoder, openvino_available

log = logging.getLogger(__name__)
SAMPLE_CLIPS = 8  # the default sample: a build of about 250 frames (train clips get 4 views of 8 frames)
BUILD_BATCH = 2  # clips per encoder batch in the build (a steady state of several batches on the sample)
CLIP_FRAMES = 8  # frames of the CLIP-compute comparison (a ViT-B/32 is ~10x the fallback's compute)
Encode = Callable[[torch.Tensor], torch.Tensor]


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


def train_views(ds_dir: Path, frames_dir: Path, options: BuildOptions, n_frames: int) -> tuple[torch.Tensor, float]:
    """(``n_frames`` frames of training views of the sample's clips at 224 px, decode + augment CPU seconds per
    clip in this process with one thread)."""
    from lavimo.datasets.manifest import load_manifest

    items = [i for shard in plan_items(load_manifest(ds_dir), options.views, set(), None).values() for i in shard]
    dataset = ClipViews([i for i in items if i.split == "train"], frames_dir, options, 224)
    views, clips, threads = [], 0, torch.get_num_threads()
    torch.set_num_threads(1)  # as in a DataLoader worker
    start = time.process_time()
    try:
        while sum(len(v) for v in views) < n_frames and clips < len(dataset):
            item = dataset[clips]
            clips += 1
            if "views" in item:
                views.append(item["views"].flatten(0, 1))
    finally:
        torch.set_num_threads(threads)
    if not views:
        raise SystemExit("lavimo bench features: the sample has no train clip with readable frames")
    return torch.cat(views)[:n_frames], (time.process_time() - start) / clips


def frames_per_second(encode: Encode, batch: torch.Tensor, passes: int = 2) -> tuple[float, torch.Tensor]:
    """(best frames/s over ``passes`` after a warm-up, the output)."""
    out = encode(batch[: max(1, len(batch) // 4)])  # warm-up (and first-call set-up) on a part of the batch
    best = float("inf")
    for _ in range(passes):
        start = time.perf_counter()
        out = encode(batch)
        best = min(best, time.perf_counter() - start)
    return len(batch) / best, out


def _in_chunks(encoder: FrameEncoder, size: int) -> Encode:
    return lambda frames: torch.cat([encoder(frames[i : i + size]) for i in range(0, len(frames), size)])


def _one_thread(encode: Encode) -> Encode:
    def run(frames: torch.Tensor) -> torch.Tensor:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return encode(frames)
        finally:
            torch.set_num_threads(threads)

    return run


def _two_streams(encoder: FrameEncoder) -> Encode:
    """Two halves of the batch at once, each on one intra-op thread (the ops release the GIL)."""
    pool = ThreadPoolExecutor(2)
    return _one_thread(lambda frames: torch.cat(list(pool.map(encoder, frames.chunk(2)))))


def _with_layout(encoder: FrameEncoder, channels_last: bool) -> FrameEncoder:
    other = copy.deepcopy(encoder)
    other.channels_last = channels_last
    layout = torch.channels_last if channels_last else torch.contiguous_format
    other.backbone = other.backbone.to(memory_format=layout)
    return other


def _onnxruntime(encoder: FrameEncoder, threads: int) -> Encode:
    """The backbone exported to ONNX and run by ONNX Runtime's CPU provider (float32)."""
    import onnxruntime as ort

    size = encoder.preprocessing.input_size
    with tempfile.TemporaryDirectory(prefix="lavimo-onnx-") as folder:
        path = Path(folder) / "model.onnx"
        torch.backends.mha.set_fastpath_enabled(False)  # the exporter has no fused attention
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter (no onnxscript needed)
                torch.onnx.export(
                    encoder.backbone, (torch.zeros(2, 3, size, size),), str(path), input_names=["x"], dynamo=False,
                    dynamic_axes={"x": {0: "n"}}, opset_version=17,
                )  # fmt: skip
        finally:
            torch.backends.mha.set_fastpath_enabled(True)
        settings = ort.SessionOptions()
        settings.intra_op_num_threads, settings.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(str(path), settings, providers=["CPUExecutionProvider"])
    normalise = lambda frames: ((frames.float() - encoder.mean) / encoder.std).numpy()  # noqa: E731
    return lambda frames: torch.from_numpy(session.run(None, {"x": normalise(frames)})[0])


def _compiled(encoder: FrameEncoder) -> Encode:
    compiled = copy.deepcopy(encoder)
    compiled.backbone = torch.compile(compiled.backbone)
    return compiled


def variants(encoder: FrameEncoder, batch_size: int) -> list[tuple[str, Callable[[], Encode]]]:
    """(name, builder of the encode function) of every way to run ``encoder`` that this machine has."""
    threads = torch.get_num_threads()
    layout, other = ("channels-last", "NCHW") if encoder.channels_last else ("NCHW", "channels-last")
    found: list[tuple[str, Callable[[], Encode]]] = [
        (f"torch, {layout} (before), {threads} threads, batches of {batch_size}", lambda: encoder)
    ]
    if encoder.channels_last:  # a convolutional net (a ViT has one convolution: layout and batch size hardly matter)
        found.append((f"torch, {other}", lambda: _with_layout(encoder, not encoder.channels_last)))
        found.append((f"torch, batches of {batch_size // 4}", lambda: _in_chunks(encoder, batch_size // 4)))
    found.append(("torch, 1 intra-op thread", lambda: _one_thread(encoder)))
    found.append(("torch, 2 inter-op streams x 1 thread", lambda: _two_streams(encoder)))
    if openvino_available():
        found.append((f"OpenVINO, {threads} threads", lambda: copy.deepcopy(encoder).use_openvino(threads)))
        found.append(("OpenVINO, 1 thread", lambda: copy.deepcopy(encoder).use_openvino(1)))
    if encoder.channels_last and all(_installed(name) for name in ("onnxruntime", "onnx")):  # ViT: a long export
        found.append((f"ONNX Runtime, {threads} threads", lambda: _onnxruntime(encoder, threads)))
    if os.environ.get("LAVIMO_BENCH_COMPILE") == "1":
        found.append(("torch.compile", lambda: _compiled(encoder)))
    return found


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def compare_encoders(encoder: FrameEncoder, batch: torch.Tensor) -> None:
    """Print frames/s and the difference from the torch path of every variant on ``batch``."""
    print(f"  {encoder.name} ({encoder.weights.source}), {len(batch)} frames of training views:")
    reference: torch.Tensor | None = None
    for name, build in variants(encoder, len(batch)):
        start = time.perf_counter()
        try:
            encode = build()
        except Exception as error:  # a runtime that cannot take this model: say so and go on
            print(f"    {name}: unavailable ({str(error).splitlines()[0][:100]})")
            continue
        setup = time.perf_counter() - start
        fps, out = frames_per_second(encode, batch)
        reference = out if reference is None else reference
        diff = float((out.float() - reference).abs().max())
        step = float(np.finfo(np.float16).eps) * float(reference.abs().max())
        note = f", set-up {setup:.1f} s" if setup > 1 else ""
        print(
            f"    {name}: {fps:.1f} frames/s, max abs diff {diff:.1e} ({'equal' if diff < step else 'DIFFERENT'}{note})"
        )


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


def bench_build(encoder: FrameEncoder, ds_dir: Path, frames_dir: Path, options: BuildOptions) -> BuildTiming:
    """Build the sample's cache into a temporary folder, timing every batch. The build reads a copy of the dataset's
    manifest and rejections (it rewrites the rejections' features rows) and the dataset's frames."""
    timing = BuildTiming()
    with tempfile.TemporaryDirectory(prefix="lavimo-bench-") as out:
        dataset = Path(out) / "dataset"
        dataset.mkdir()
        for name in ("manifest.parquet", "rejected.csv"):
            if (ds_dir / name).is_file():
                shutil.copy2(ds_dir / name, dataset / name)
        start = time.perf_counter()
        cache = build_feature_cache(dataset, frames_dir, Path(out) / "features", encoder, options, timing.on_batch)
        timing.seconds = time.perf_counter() - start
        timing.frames = sum(cache.n_views(c) for c in cache.clip_ids) * cache.num_frames
    return timing


def bench_features(args: argparse.Namespace) -> int:
    """Print the encoder comparison, then the sample build's frames/s against its bare encoder."""
    config = load_config(args.config)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    limit = args.limit or SAMPLE_CLIPS
    views = full_dataset_views(config)
    options = BuildOptions(views=views, batch_size=BUILD_BATCH, progress=False, limit=limit)
    resolved = load_frame_encoder(checkpoint=os.environ.get("LAVIMO_BENCH_CHECKPOINT"), device=device)
    encoders = [resolved]
    if resolved.name != "clip-vit-b32" and os.environ.get("LAVIMO_BENCH_ENCODERS") != "resolved":
        encoders.append(load_frame_encoder(random_init=True, device=device))  # the paper encoder's compute
    with tempfile.TemporaryDirectory(prefix="lavimo-bench-data-") as tmp:
        found = _dataset_dirs(config) or synthetic_dataset(Path(tmp), limit)
        source = "synthetic 512px PNG clips (all train)" if found[0] == Path(tmp) else str(found[0])
        print(f"features bench: {source}, {limit} clips, device {device}, torch threads {torch.get_num_threads()}")
        batch, prep_seconds = train_views(*found, options, BUILD_BATCH * views * 8)  # the build's first batch
        batch = batch.to(device)
        print("bare encoder (one batch, best of 2 passes):")
        for encoder in encoders:
            compare_encoders(encoder, batch if encoder is resolved else batch[:CLIP_FRAMES])
        runtime = "auto" if device == "cpu" else "torch"
        fast = load_frame_encoder(checkpoint=os.environ.get("LAVIMO_BENCH_CHECKPOINT"), device=device, runtime=runtime)
        bare_fps, _ = frames_per_second(fast, batch)
        print(f"build of {limit} clips, {fast.name} on {fast.runtime}, batches of {BUILD_BATCH} clips:")
        print(f"  decoding + augmenting a train clip ({views} views): {prep_seconds:.2f} CPU s in one thread; "
              f"encoding its {views * 8} frames: {views * 8 / bare_fps:.2f} s with the bare encoder")  # fmt: skip
        for workers in [int(w) for w in os.environ.get("LAVIMO_BENCH_WORKERS", "1").split(",")]:
            timing = bench_build(fast, *found, BuildOptions(**{**options.__dict__, "workers": workers}))
            steady = timing.steady_fps()
            print(
                f"  {workers} decoding worker(s): {timing.frames} frames, build {steady:.1f} frames/s steady "
                f"({timing.frames / timing.seconds:.1f} incl. start-up) | bare encoder {bare_fps:.1f} frames/s | "
                f"ratio {steady / bare_fps:.2f} | encoder waits {100 * (1 - timing.encoder_busy()):.0f}% of the time"
            )
    return 0
