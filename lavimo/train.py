"""Training loop: run config, schedule, exact resume, validation and best-model selection.

The presets a run config starts from are in :mod:`lavimo.presets`, the checkpoint files in :mod:`lavimo.checkpoints`.

A run folder (``results/{ds}/runs/{variant}/``) holds::

    config.json            the resolved run config (train + model + data + environment), written at start
    history.jsonl          one JSON object per epoch: losses, lr, tau, throughput, data-wait share, [val metrics]
    tensorboard/           TensorBoard scalars
    checkpoints/last.pt    full training state after the latest epoch (resume point)
    checkpoints/best.pt    weights of the best validation epoch
    model.pt               the selected weights (= best.pt) once training finished: the Snakemake target

Every file is loadable with ``torch.load(weights_only=True)``. Randomness is derived from (seed, epoch, rank)
at the start of every epoch (dropout) and from (seed, epoch, clip) per sample, so a run resumed from
``last.pt`` continues exactly as an uninterrupted run would.

Multi-process (DDP) runs are started by ``torchrun`` (``lavimo train --nproc N`` launches it; the process group
helpers are in :mod:`lavimo.distributed`). The global batch is split over the processes; each process contrasts
its own slice.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import math
import os
import platform
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lavimo.checkpoints import MODEL_FILE, check_archive, load_checkpoint, save_checkpoint
from lavimo.datasets.manifest import MANIFEST
from lavimo.distributed import Process, all_reduce_mean, any_process, barrier, close_process, init_process
from lavimo.embed import autocast, embed_dataset
from lavimo.evaluate import evaluate_embeddings
from lavimo.io import LavimoInputError, atomic_path, save_json, save_text
from lavimo.layout import features_dir, sentences_dir
from lavimo.model import LAVIMO
from lavimo.retrieval_data import (
    Collate,
    EpochBatchSampler,
    MotionStats,
    RetrievalDataset,
    compute_motion_stats,
    split_ids,
)
from lavimo.text.sentences import SentenceCache, open_sentence_cache
from lavimo.train_config import (
    RESUME_FREE_FIELDS,
    TrainConfig,
    changed_settings,
    check_train_config,
    coerce,
    make_train_config,
)
from lavimo.video.cache import FeatureCache

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
__all__ = ["RESUME_FREE_FIELDS", "TrainConfig", "Trainer", "check_train_config", "coerce", "make_train_config", "train"]


def lr_at(step: int, cfg: TrainConfig, steps_per_epoch: int) -> float:
    """Learning rate of a step: linear warm-up, constant until ``lr_decay_start`` epochs, then linear to lr_min."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    decay_start = cfg.lr_decay_start * steps_per_epoch
    total = cfg.epochs * steps_per_epoch
    if step < decay_start or total <= decay_start:
        return cfg.lr
    progress = min(1.0, (step - decay_start) / max(1, total - 1 - decay_start))
    return cfg.lr + (cfg.lr_min - cfg.lr) * progress


def validation_score(metrics: Mapping[str, Mapping[str, float]]) -> float:
    """Model-selection score: R@1 + R@5 + R@10 of text->motion and motion->text (higher is better)."""
    return float(sum(metrics[d][k] for d in ("t2m", "m2t") for k in ("R@1", "R@5", "R@10")))


def training_precision(precision: str, device: torch.device) -> str:
    """What a run trains in: ``auto`` is bf16 autocast on CUDA and on CPUs with native bf16 arithmetic (AVX512-BF16
    or AMX: an epoch of the demo preset takes 0.7x the fp32 time on a 2-core AVX512-BF16 CPU), fp32 elsewhere (bf16
    is emulated there, and slower). Validation and evaluation embed in fp32 on a CPU whatever this says."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16"
    if device.type == "cpu" and (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()):
        return "bf16"
    return "fp32"


# ---- the model -----------------------------------------------------------------------------------------
def unwrap(model: nn.Module) -> LAVIMO:
    """The LAVIMO module inside a DDP wrapper."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model  # type: ignore[return-value]


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: no weight decay on biases, norms and the temperature."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "log_tau" in name else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


# ---- the run -------------------------------------------------------------------------------------------
@dataclass
class RunData:
    """The datasets and caches a run reads."""

    train: RetrievalDataset
    val: RetrievalDataset | None
    stats: MotionStats
    features: FeatureCache | None
    sentences: SentenceCache | None


def load_run_data(dataset_dir: PathLike, cfg: TrainConfig) -> RunData:
    """Train and validation sets of a prepared dataset, with its feature and sentence caches."""
    dataset_dir = Path(dataset_dir)
    features = FeatureCache.open_current(features_dir(dataset_dir), cfg.features) if cfg.variant == "3modal" else None
    sentences = open_sentence_cache(dataset_dir)
    if sentences is None:
        log.warning(
            "no sentence cache in %s: soft targets fall back to the identity (plain InfoNCE)",
            sentences_dir(dataset_dir),
        )
    train_ids = split_ids(dataset_dir, "train")
    stats = compute_motion_stats(dataset_dir, train_ids)
    common = {"features": features, "sentences": sentences, "max_frames": cfg.max_frames, "seed": cfg.seed}
    train = RetrievalDataset(
        dataset_dir,
        "train",
        stats,
        train=True,
        ids=train_ids,
        max_views=cfg.views,
        hflip_pairing=cfg.hflip_pairing,
        **common,
    )
    val_ids = split_ids(dataset_dir, cfg.val_split)
    val = RetrievalDataset(dataset_dir, cfg.val_split, stats, ids=val_ids, **common) if val_ids else None
    if val is None:
        log.warning("the %s split is empty: no validation, model.pt will hold the last epoch", cfg.val_split)
    return RunData(train, val, stats, features, sentences)


def data_fingerprint(data: RunData) -> dict[str, Any]:
    """What a run's numbers depend on besides its config: the frame-feature cache (its folder name carries a hash of
    its settings), the sentence model and the clips of each split. A checkpoint of other data is not resumed."""
    clips = [*data.train.clip_ids, "|", *(data.val.clip_ids if data.val is not None else [])]
    return {
        "features": None if data.features is None else data.features.encoder_id,
        "sentences": None if data.sentences is None else data.sentences.meta.get("weights_sha256"),
        "clips": hashlib.sha256("\n".join(clips).encode()).hexdigest()[:16],
    }


def resolved_config(dataset_dir: Path, cfg: TrainConfig, model: LAVIMO, data: RunData, proc: Process) -> dict[str, Any]:
    """The run's config.json: everything needed to know (and redo) what was trained."""
    features = data.features
    return {
        "dataset": dataset_dir.name,
        "dataset_dir": str(dataset_dir),
        "variant": cfg.variant,
        "train": cfg.to_dict(),
        "model": model.metadata(),
        "data": {
            "train_clips": len(data.train),
            "val_clips": len(data.val) if data.val is not None else 0,
            "motion_stats": data.stats.source,
            "features": None if features is None else {"encoder_id": features.encoder_id, **features.meta["encoder"]},
            "video_coverage_train": data.train.video_coverage,
            "sentences": None
            if data.sentences is None
            else {k: v for k, v in data.sentences.meta.items() if k != "captions"},
        },
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "device": str(proc.device),
            "device_name": torch.cuda.get_device_name(proc.device)
            if proc.device.type == "cuda"
            else platform.processor(),
            "world_size": proc.world_size,
            "host": platform.node(),
            "training_precision": training_precision(cfg.precision, proc.device),
        },
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


class Trainer:
    """Trains one run into its folder; ``fit()`` resumes from ``checkpoints/last.pt`` when present."""

    def __init__(self, dataset_dir: PathLike, out_dir: PathLike, cfg: TrainConfig, progress: bool = True) -> None:
        self.dataset_dir, self.out_dir, self.cfg, self.progress = Path(dataset_dir), Path(out_dir), cfg, progress
        self.proc = init_process(cfg.device)
        self.precision = training_precision(cfg.precision, self.proc.device)
        torch.manual_seed(cfg.seed)  # identical initial weights in every process
        self.data = load_run_data(self.dataset_dir, cfg)
        self.data_fingerprint = data_fingerprint(self.data)
        features = self.data.features
        model_cfg = cfg.model_config(features.dim if features else None, features.num_frames if features else None)
        self.model = LAVIMO(model_cfg).to(self.proc.device)
        self.ddp: nn.Module = self.model
        if self.proc.world_size > 1:
            ids = [self.proc.device.index] if self.proc.device.type == "cuda" else None
            self.ddp = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.optimizer = torch.optim.AdamW(_param_groups(self.model, cfg.weight_decay), lr=cfg.lr)
        if len(self.data.train) < cfg.batch_size:
            raise LavimoInputError(
                self.dataset_dir / MANIFEST,
                f"{len(self.data.train)} training clips are fewer than one batch of {cfg.batch_size}: "
                "prepare more clips or --set batch_size=N",
            )
        self.sampler = EpochBatchSampler(
            len(self.data.train), cfg.batch_size, cfg.seed, self.proc.rank, self.proc.world_size
        )
        self.loader = torch.utils.data.DataLoader(
            self.data.train,
            batch_sampler=self.sampler,
            collate_fn=Collate(self.model.tokenizer),
            num_workers=cfg.num_workers if cfg.num_workers >= 0 else (4 if self.proc.device.type == "cuda" else 0),
        )
        self.epoch, self.step, self.best_score, self.best_epoch = 0, 0, -math.inf, 0
        self.history: list[dict[str, Any]] = []
        self.writer = None

    # paths
    @property
    def last_path(self) -> Path:
        return self.out_dir / "checkpoints" / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.out_dir / "checkpoints" / "best.pt"

    def _stats_tensors(self) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(v) for k, v in self.data.stats.to_arrays().items()}

    def _weights_state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "model_config": self.model.config.to_dict(),
            "train_config": self.cfg.to_dict(),
            "motion_stats": self._stats_tensors(),
            "stats_source": self.data.stats.source,
            "epoch": self.epoch,
        }

    def training_state(self) -> dict[str, Any]:
        """Everything ``last.pt`` holds: weights, optimizer, counters, best so far and the history."""
        return {
            **self._weights_state(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "history": self.history,
            "data": self.data_fingerprint,
        }

    def resume(self) -> bool:
        """Load ``last.pt`` when it exists; refuse a checkpoint of a different config, start over from one of other
        data (:func:`data_fingerprint`)."""
        if not self.last_path.is_file():
            return False
        try:
            state = load_checkpoint(self.last_path)
        except LavimoInputError as error:
            raise LavimoInputError(
                error.path, f"{error.problem}; delete it or pass --restart to train from the start"
            ) from error
        changed = changed_settings(state.get("train_config", {}), self.cfg)
        if changed:
            raise LavimoInputError(
                self.last_path,
                f"holds a run with other settings ({', '.join(changed)}); "
                "pass --restart to start over or use another --out",
            )
        if state.get("data") != self.data_fingerprint:
            # the caches changed since (e.g. the workflow rebuilt the features with other settings): the checkpoint
            # would continue a model of other data, so the run starts over
            log.warning(
                "%s was trained on other data (%s, now %s): starting over",
                self.last_path,
                state.get("data"),
                self.data_fingerprint,
            )
            if self.proc.is_main:
                self.best_path.unlink(missing_ok=True)  # never let model.pt become the old data's weights
            return False
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.best_score, self.best_epoch = float(state["best_score"]), int(state["best_epoch"])
        self.history = list(state["history"])
        log.info("resuming %s after epoch %d (step %d)", self.out_dir, self.epoch, self.step)
        return True

    def fit(self, resume: bool = True) -> Path:
        """Train to ``cfg.epochs``; returns the path of ``model.pt``."""
        if resume:
            self.resume()
        if self.proc.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            config = resolved_config(self.dataset_dir, self.cfg, self.model, self.data, self.proc)
            save_json(self.out_dir / "config.json", config)
            self._write_history()
            self.writer = _tensorboard(self.out_dir / "tensorboard")
        steps_per_epoch = len(self.sampler)
        bar = _progress(self.cfg.epochs * steps_per_epoch, self.step, enabled=self.progress and self.proc.is_main)
        try:
            while self.epoch < self.cfg.epochs:
                record = self.train_epoch(bar, steps_per_epoch)
                self.epoch += 1
                record["epoch"] = self.epoch
                if self.epoch % self.cfg.eval_every == 0 or self.epoch == self.cfg.epochs:
                    self._validate(record)
                self.history.append(record)
                if self.proc.is_main:
                    self._log_epoch(record)
                    save_checkpoint(self.last_path, self.training_state())
                    self._write_history()
                barrier(self.proc)
        finally:
            bar.close()
            if self.writer is not None:
                self.writer.close()
        if self.proc.is_main:
            self._finish()
        barrier(self.proc)
        return self.out_dir / MODEL_FILE

    def train_epoch(self, bar: Any, steps_per_epoch: int, max_steps: int | None = None) -> dict[str, Any]:
        """One pass over the training set (or its first ``max_steps`` batches); mean losses and timings."""
        cfg, proc = self.cfg, self.proc
        torch.manual_seed(
            (cfg.seed * 1_000_003 + self.epoch * 1_009 + proc.rank) % 2**31
        )  # dropout stream of this epoch
        self.sampler.set_epoch(self.epoch)
        self.data.train.set_epoch(self.epoch)
        self.ddp.train()
        sums: dict[str, float] = {}
        samples, wait, started = 0, 0.0, time.perf_counter()
        fetch_start = time.perf_counter()
        steps = 0
        for batch in self.loader:
            wait += time.perf_counter() - fetch_start
            steps += 1
            lr = lr_at(self.step, cfg, steps_per_epoch)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            with autocast(proc.device, self.precision):
                out = self.ddp(_to_device(batch, proc.device))
            losses = {k: float(v.detach()) for k, v in out.items() if k.startswith("loss")}
            self._stop_if_not_finite(losses["loss"], batch["clip_ids"])
            self.optimizer.zero_grad(set_to_none=True)
            out["loss"].backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.optimizer.step()
            self.step += 1
            samples += len(batch["clip_ids"]) * proc.world_size
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + value
            if self.writer is not None and self.step % cfg.log_every == 0:
                for key, value in losses.items():
                    self.writer.add_scalar(f"train/{key}", value, self.step)
                self.writer.add_scalar("train/lr", lr, self.step)
                self.writer.add_scalar("train/tau", float(out["tau"]), self.step)
            elapsed = time.perf_counter() - started
            bar.update(1)
            bar.set_postfix(ep=self.epoch + 1, loss=f"{losses['loss']:.3f}", sps=f"{samples / elapsed:.0f}")
            if max_steps is not None and steps >= max_steps:
                break
            fetch_start = time.perf_counter()
        seconds = time.perf_counter() - started
        steps = max(1, steps)
        means = all_reduce_mean({k: v / steps for k, v in sums.items()}, proc)
        return {
            "step": self.step,
            "lr": lr_at(self.step - 1, cfg, steps_per_epoch),
            "tau": float(self.model.align_loss.tau.detach()),
            **self._pair_taus(),
            **means,
            "seconds": seconds,
            "samples_per_s": samples / seconds,
            "data_wait_fraction": wait / seconds,
        }

    def _stop_if_not_finite(self, loss: float, clip_ids: list[str]) -> None:
        """Stop at the first NaN or Inf loss (before it reaches the weights), naming the batch's clips.

        Every process of a multi-process run stops at the same step; the last checkpoint stays untouched.
        """
        bad = not math.isfinite(loss)
        if not any_process(bad, self.proc):
            return
        where = f"epoch {self.epoch + 1}, step {self.step + 1}"
        if not bad:
            raise LavimoInputError(self.out_dir, f"training stopped: another process had a non-finite loss at {where}")
        raise LavimoInputError(
            self.out_dir,
            f"training stopped: loss is {loss} at {where}; the batch's clips: {', '.join(clip_ids)} "
            "(check their motions and frame features)",
        )

    def _pair_taus(self) -> dict[str, float]:
        """tau_mt, tau_mv, tau_tv when each pair has its own temperature (model.tau_per_pair), else nothing."""
        align = unwrap(self.model).align_loss
        if align.log_tau_mv is None:
            return {}
        return {f"tau_{pair}": float(tau.detach()) for pair, tau in align.pair_taus().items()}

    def _validate(self, record: dict[str, Any]) -> None:
        """Retrieval metrics on the validation split (main process); keeps the best weights."""
        if self.proc.is_main and self.data.val is not None:
            emb = embed_dataset(self.model, self.data.val, self.cfg.batch_size, self.cfg.precision)
            inputs = {k: emb[k] for k in ("text", "motion", "video") if k in emb}
            metrics = evaluate_embeddings(inputs, protocols=("normal",))["normal"]
            record["val"] = metrics
            record["val_score"] = validation_score(metrics)
            if self.writer is not None:
                for direction, values in metrics.items():
                    for name, value in values.items():
                        self.writer.add_scalar(f"val/{direction}_{name}", value, self.epoch)
            if record["val_score"] > self.best_score:
                self.best_score, self.best_epoch = record["val_score"], self.epoch
                save_checkpoint(self.best_path, {**self._weights_state(), "val": metrics})
        barrier(self.proc)

    def _log_epoch(self, record: Mapping[str, Any]) -> None:
        val = record.get("val")
        extra = f" | val t2m R@1 {val['t2m']['R@1']:.2f} m2t R@1 {val['m2t']['R@1']:.2f}" if val else ""
        log.info(
            "epoch %d/%d loss %.4f (align %.4f recon %.4f) tau %.4f lr %.2e %.0f samples/s%s",
            record["epoch"],
            self.cfg.epochs,
            record["loss"],
            record["loss_align"],
            record["loss_recon"],
            record["tau"],
            record["lr"],
            record["samples_per_s"],
            extra,
        )

    def _write_history(self) -> None:
        save_text(self.out_dir / "history.jsonl", "".join(json.dumps(r) + "\n" for r in self.history))

    def _finish(self) -> None:
        """model.pt = the best validation weights (the last ones when there is no validation split)."""
        target = self.out_dir / MODEL_FILE
        if self.best_path.is_file():
            check_archive(self.best_path, "lavimo checkpoint")  # never copy a corrupt file into model.pt
            with atomic_path(target) as tmp:
                shutil.copyfile(self.best_path, tmp)
        else:
            save_checkpoint(target, self._weights_state())
        log.info("%s: weights of epoch %d (best validation score %.2f)", target, self.best_epoch, self.best_score)


def _to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """Move tensors (and the token dict) of a batch to the device."""
    out: dict[str, Any] = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            out[key] = value.to(device, non_blocking=True)
        elif isinstance(value, Mapping):
            out[key] = {k: v.to(device, non_blocking=True) for k, v in value.items()}
        else:
            out[key] = value
    return out


def _tensorboard(path: Path) -> Any:
    """A TensorBoard SummaryWriter, or None (with a warning) when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.warning("tensorboard is not installed: no TensorBoard scalars for this run")
        return None
    return SummaryWriter(str(path))


def _progress(total: int, initial: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True, mininterval=2.0)


def train(
    dataset_dir: PathLike, out_dir: PathLike, cfg: TrainConfig, *, resume: bool = True, progress: bool = True
) -> Path:
    """Train (or resume) one run; returns the path of its ``model.pt``."""
    trainer = Trainer(dataset_dir, out_dir, cfg, progress=progress)
    try:
        return trainer.fit(resume=resume)
    finally:
        close_process(trainer.proc)
