"""`lavimo bench train`: training throughput, peak memory and data-wait share of the `demo` and `paper` models.

Each size runs in its own process (so peak memory is its own) on the real prepared demo set (results/demo,
or the first enabled dataset): one epoch of the real training loop at batch 64, 3-modal when the dataset
has a feature cache, else 2-modal. Reported: samples/s over the epoch after the first (warm-up) step,
peak memory (GPU: torch.cuda.max_memory_allocated; CPU: the process's peak RSS), and the fraction of the
step time spent waiting for the next batch (target < 5%). Breakdown: weights + optimizer state, and the
activations autograd saved for backward in the warm-up step (distinct storages), with the share of the
(L x L) attention maps (the math attention path is taken in training: dropout > 0).
Also printed: the time the preset's epochs (400 for `paper`) would take on HumanML3D's 23,384 training clips
(mirrors included) at the measured rate. Environment knobs: LAVIMO_BENCH_PRESETS (default "demo,paper"),
LAVIMO_BENCH_PRECISIONS (training precisions, default "auto"; "bf16,fp32" measures both, e.g. on a GPU),
LAVIMO_BENCH_STEPS (steps per size, default 8).
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
from lavimo.bench.dag import HUMANML3D_TRAIN_CLIPS


def projected_hours(samples_per_s: float, epochs: int, clips: int = HUMANML3D_TRAIN_CLIPS) -> float:
    """Hours that ``epochs`` epochs of ``clips`` training clips take at ``samples_per_s``."""
    return epochs * clips / samples_per_s / 3600


def _dataset_dir(config: dict[str, Any]) -> Path | None:
    """The first enabled dataset (the demo set first) that has been prepared and has caption embeddings."""
    results = Path(config["results_dir"])
    for name in ["demo", *config["datasets_enabled"]]:
        if (results / name / "manifest.parquet").is_file() and (results / name / "sentences/current.json").is_file():
            return results / name
    return None


def measure(preset: str, dataset_dir: str, steps: int, precision: str = "auto", batch_size: int = 64) -> dict[str, Any]:
    """One size at one training precision: a real Trainer, one warm-up step, then ``steps`` timed training steps
    (the bench runs it in a child process, so that the peak memory is its own)."""
    import torch

    from lavimo.train import Trainer, make_train_config

    variant = "3modal" if (Path(dataset_dir) / "features" / "current.json").is_file() else "2modal"
    epochs = make_train_config(preset, {}).epochs
    cfg = make_train_config(preset, {"batch_size": batch_size, "epochs": 1, "variant": variant, "precision": precision})
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
            "precision": trainer.precision,
            "epochs": epochs,
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


def _child(preset: str, dataset_dir: str, steps: int, precision: str, queue: Any) -> None:
    try:
        queue.put(measure(preset, dataset_dir, steps, precision))
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
    precisions = os.environ.get("LAVIMO_BENCH_PRECISIONS", "auto").split(",")
    context = multiprocessing.get_context("spawn")
    print(f"bench train: {dataset_dir}, batch 64, {steps} timed steps per size (after 1 warm-up step)")
    for preset in presets:
        for precision in precisions:
            queue = context.Queue()
            process = context.Process(target=_child, args=(preset, str(dataset_dir), steps, precision, queue))
            process.start()
            result = queue.get()
            process.join()
            if "error" in result:
                print(f"  {preset:6s} {precision} failed: {result['error']}")
                continue
            _print_result(result)
    return 0


def _print_result(result: dict[str, Any]) -> None:
    print(
        f"  {result['preset']:6s} {result['variant']} on {result['device']}, {result['precision']}: "
        f"{result['parameters_m']:.1f} M parameters ({result['trainable_m']:.1f} M trainable, text "
        f"{result['text_encoder']}) | {result['samples_per_s']:.1f} samples/s | peak memory "
        f"{result['peak_memory_mb']:.0f} MB | data wait {100 * result['data_wait_fraction']:.2f}% of step time"
    )
    print(
        f"         memory: weights + optimizer state {result['weights_optimizer_mb']:.0f} MB, "
        f"activations saved for backward {result['activations_mb']:.0f} MB (of which "
        f"{result['attention_maps_mb']:.0f} MB attention maps, longest sequence {result['frames']})"
    )
    hours = projected_hours(result["samples_per_s"], result["epochs"])
    print(
        f"         projected: {result['epochs']} epochs (the preset's) of HumanML3D's {HUMANML3D_TRAIN_CLIPS:,} "
        f"training clips at this rate: {hours:.1f} h"
    )
