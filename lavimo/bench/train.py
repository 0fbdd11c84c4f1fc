"""`lavimo bench train`: training throughput, peak memory and data-wait share of the `demo` and `paper` models.

Each size runs in its own process (so peak memory is its own) on the real prepared demo set (results/demo,
or the first enabled dataset): one epoch of the real training loop at batch 64, 3-modal when the dataset
has a feature cache, else 2-modal. Reported: samples/s over the epoch after the first (warm-up) step,
peak memory (GPU: torch.cuda.max_memory_allocated; CPU: the process's peak RSS), and the fraction of the
step time spent waiting for the next batch (target < 5%). Breakdown: weights + optimizer state, and the
activations autograd saved for backward in the warm-up step (distinct storages), with the share of the
(L x L) attention maps (the math attention path is taken in training: dropout > 0).
Environment knobs: LAVIMO_BENCH_PRESETS
(default "demo,paper"), LAVIMO_BENCH_STEPS (steps per size, default 8).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import tempfile
from pathlib import Path
from typing import Any

from lavimo.bench.common import load_config


def _dataset_dir(config: dict[str, Any]) -> Path | None:
    """The first enabled dataset (the demo set first) that has been prepared and has caption embeddings."""
    results = Path(config["results_dir"])
    for name in ["demo", *config["datasets_enabled"]]:
        if (results / name / "manifest.parquet").is_file() and (results / name / "sentences/current.json").is_file():
            return results / name
    return None


def _measure(preset: str, dataset_dir: str, steps: int) -> dict[str, Any]:
    """One size: a real Trainer, one warm-up step, then ``steps`` timed training steps (in a child process)."""
    import torch

    from lavimo.train import Trainer, make_train_config

    variant = "3modal" if (Path(dataset_dir) / "features" / "current.json").is_file() else "2modal"
    cfg = make_train_config(preset, {"batch_size": 64, "epochs": 1, "variant": variant})
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(dataset_dir, out, cfg, progress=False)
        steps = min(steps, len(trainer.sampler) - 1)
        saved = _SavedActivations()
        with torch.autograd.graph.saved_tensors_hooks(saved.pack, saved.unpack):
            trainer.train_epoch(_NoBar(), len(trainer.sampler), max_steps=1)  # warm-up: allocator, lazy inits
        record = trainer.train_epoch(_NoBar(), len(trainer.sampler), max_steps=steps)
        device = trainer.proc.device
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device) / 2**20
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        counts = trainer.model.metadata()["parameters"]
        state = sum(p.numel() * p.element_size() for p in trainer.model.parameters())
        state += sum(
            t.numel() * t.element_size()
            for st in trainer.optimizer.state.values()
            for t in st.values()
            if torch.is_tensor(t)
        )
        return {
            "preset": preset,
            "variant": variant,
            "device": str(device),
            "parameters_m": counts["total"] / 1e6,
            "trainable_m": counts["trainable"] / 1e6,
            "text_encoder": trainer.model.text_encoder_source.split(" (")[0],
            "steps": steps,
            "samples_per_s": record["samples_per_s"],
            "peak_memory_mb": peak,
            "data_wait_fraction": record["data_wait_fraction"],
            "activations_mb": saved.total / 2**20,
            "attention_maps_mb": saved.square / 2**20,
            "frames": saved.frames,
            "weights_optimizer_mb": state / 2**20,
        }


class _SavedActivations:
    """Bytes of the distinct tensor storages autograd keeps for backward in one step (the activations);
    ``square``: those of (..., L, L) attention maps of sequences longer than 16 (motion frames)."""

    def __init__(self) -> None:
        self.storages: dict[int, int] = {}
        self.total = self.square = self.frames = 0

    def pack(self, tensor: Any) -> Any:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in self.storages:
            self.storages[storage.data_ptr()] = storage.nbytes()
            self.total += storage.nbytes()
            if tensor.dim() >= 3 and tensor.shape[-1] == tensor.shape[-2] > 16:
                self.square += storage.nbytes()
                self.frames = max(self.frames, int(tensor.shape[-1]))
        return tensor

    @staticmethod
    def unpack(tensor: Any) -> Any:
        return tensor


class _NoBar:
    def update(self, _: int) -> None:
        pass

    def set_postfix(self, **_: Any) -> None:
        pass


def _child(preset: str, dataset_dir: str, steps: int, queue: Any) -> None:
    try:
        queue.put(_measure(preset, dataset_dir, steps))
    except Exception as error:  # reported by the parent
        queue.put({"preset": preset, "error": f"{type(error).__name__}: {error}"})


def bench_train(args: argparse.Namespace) -> int:
    """Print one line per model size."""
    dataset_dir = _dataset_dir(load_config(args.config))
    if dataset_dir is None:
        print("bench train: no prepared dataset with caption embeddings; run `snakemake sentences_demo` first")
        return 1
    steps = int(os.environ.get("LAVIMO_BENCH_STEPS", "8"))
    presets = os.environ.get("LAVIMO_BENCH_PRESETS", "demo,paper").split(",")
    context = multiprocessing.get_context("spawn")
    print(f"bench train: {dataset_dir}, batch 64, {steps} timed steps per size (after 1 warm-up step)")
    for preset in presets:
        queue = context.Queue()
        process = context.Process(target=_child, args=(preset, str(dataset_dir), steps, queue))
        process.start()
        result = queue.get()
        process.join()
        if "error" in result:
            print(f"  {preset:6s} failed: {result['error']}")
            continue
        print(
            f"  {preset:6s} {result['variant']} on {result['device']}: {result['parameters_m']:.1f} M parameters "
            f"({result['trainable_m']:.1f} M trainable, text {result['text_encoder']}) | "
            f"{result['samples_per_s']:.1f} samples/s | peak memory {result['peak_memory_mb']:.0f} MB | "
            f"data wait {100 * result['data_wait_fraction']:.2f}% of step time"
        )
        print(
            f"         memory: weights + optimizer state {result['weights_optimizer_mb']:.0f} MB, "
            f"activations saved for backward {result['activations_mb']:.0f} MB (of which "
            f"{result['attention_maps_mb']:.0f} MB attention maps, longest sequence {result['frames']})"
        )
    return 0
