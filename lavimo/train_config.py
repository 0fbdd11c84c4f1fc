"""A training run's settings, torch-free: :class:`TrainConfig`, its presets with ``--set`` overrides, and the range
and choice checks every setting passes (also run by the Snakefile on ``train.overrides`` before any job starts).

The presets are in :mod:`lavimo.presets`; the loop that uses the settings is :mod:`lavimo.train`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lavimo.layout import CURRENT
from lavimo.model.config import ModelConfig
from lavimo.presets import MODEL_PRESETS, TRAIN_PRESETS

VARIANTS = ("3modal", "2modal")
PRECISIONS = ("auto", "bf16", "fp32")
HFLIP_PAIRINGS = ("original", "mirror")  # lavimo.retrieval_data: what a flipped training view is paired with
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:[0-9]+)?")
MODEL_FIELDS = {f.name for f in dataclasses.fields(ModelConfig)}
# the least value of each numeric setting
MINIMA = {
    "epochs": 1,
    "batch_size": 2,  # a contrastive batch needs negatives
    "lr": 0.0,
    "lr_min": 0.0,
    "lr_decay_start": 0,
    "warmup_steps": 0,
    "weight_decay": 0.0,
    "grad_clip": 0.0,
    "max_frames": 1,
    "eval_every": 1,
    "seed": 0,
    "views": 0,
    "num_workers": -1,
    "log_every": 1,
}
INTEGER_FIELDS = {"epochs", "batch_size", "lr_decay_start", "warmup_steps", "max_frames", "eval_every", "seed",
                  "views", "num_workers", "log_every"}  # fmt: skip


# fields that may change between a run and its resumption without changing the numbers it produces
RESUME_FREE_FIELDS = ("num_workers", "device", "log_every")


@dataclass
class TrainConfig:
    """Everything a training run is made of (defaults = the paper, section 4)."""

    model: str = "paper"  # model size preset: paper | demo | tiny (lavimo.presets.MODEL_PRESETS)
    model_overrides: dict[str, Any] = field(default_factory=dict)
    variant: str = "3modal"  # 3modal | 2modal (text + motion only)
    epochs: int = 400
    batch_size: int = 64  # global batch (split over processes)
    lr: float = 1e-4
    lr_min: float = 1e-5
    lr_decay_start: int = 100  # constant lr for this many epochs, then linear decay to lr_min at the last epoch
    warmup_steps: int = 0
    weight_decay: float = 0.01
    grad_clip: float = 0.0  # 0 = off
    max_frames: int = 196  # longer motions are cropped (randomly in training, centred in evaluation)
    eval_every: int = 10  # validate every N epochs (and after the last one)
    val_split: str = "val"  # split used for validation and best-model selection
    seed: int = 0
    views: int = 0  # augmented views per training clip drawn from the feature cache (0 = all it holds)
    features: str = CURRENT  # pointer in {dataset}/features/ naming the frame-feature cache (3-modal)
    # a flipped training view with: "original" the clip's own motion and caption (the paper says no more),
    # "mirror" the mirrored clip's, which is what the flipped view shows (lavimo.retrieval_data)
    hflip_pairing: str = "original"
    num_workers: int = -1  # DataLoader workers; -1 = auto: 4 on a GPU, 0 on a CPU (data is in memory)
    precision: str = "auto"  # auto: bf16 where the device computes it natively (training_precision) | bf16 | fp32
    device: str = "auto"
    log_every: int = 10  # steps between TensorBoard scalars

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of every field."""
        return dataclasses.asdict(self)

    def model_config(self, frame_dim: int | None = None, num_frames: int | None = None) -> ModelConfig:
        """The model config of this run (frame size and count from the feature cache for 3-modal runs)."""
        overrides = dict(self.model_overrides)
        if frame_dim is not None:
            overrides.setdefault("frame_dim", frame_dim)
        if num_frames is not None:
            overrides.setdefault("num_frames", num_frames)
        return ModelConfig.from_preset(self.model, variant=self.variant, **overrides)


def coerce(value: str, like: Any) -> Any:
    """A command-line string as the type of ``like`` (JSON for dicts and lists; for an unset (None) setting JSON when
    it parses, e.g. null or a number, else the string itself, e.g. a path)."""
    if isinstance(like, bool):
        if value.lower() not in {"true", "false", "1", "0", "yes", "no"}:
            raise ValueError(f"expected a boolean, got {value!r}")
        return value.lower() in {"true", "1", "yes"}
    if isinstance(like, int | float) and not isinstance(like, bool):
        return type(like)(float(value)) if isinstance(like, int) and float(value).is_integer() else type(like)(value)
    if isinstance(like, str):
        return value
    if like is None:
        try:
            return json.loads(value)
        except ValueError:
            return value
    return json.loads(value)


def _coerced(key: str, value: Any, like: Any) -> Any:
    """``value`` as the type of ``like`` when it is a command-line string; a ValueError naming ``key`` otherwise."""
    if not isinstance(value, str):
        return value
    try:
        return coerce(value, like)
    except ValueError:
        kind = "a whole number" if isinstance(like, int) and not isinstance(like, bool) else type(like).__name__
        raise ValueError(f"{key} must be {kind}, got {value!r}") from None


def make_train_config(preset: str, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """A preset's config (:data:`lavimo.presets.TRAIN_PRESETS`) with overrides (values may be strings from
    ``--set key=value``)."""
    if preset not in TRAIN_PRESETS:
        raise ValueError(f"unknown training preset {preset!r}; expected one of {sorted(TRAIN_PRESETS)}")
    cfg = TrainConfig(**TRAIN_PRESETS[preset])
    for key, value in (overrides or {}).items():
        if key.startswith("model."):  # model.latent_dim=128 -> model_overrides
            name = key.removeprefix("model.")
            like = getattr(ModelConfig(), name) if hasattr(ModelConfig(), name) else value
            cfg.model_overrides[name] = _coerced(key, value, like)
            continue
        if not hasattr(cfg, key):
            raise ValueError(f"unknown training setting {key!r}; known: {sorted(cfg.to_dict())}")
        current = getattr(cfg, key)
        setattr(cfg, key, _coerced(key, value, current))
    check_train_config(cfg)
    return cfg


def check_train_config(cfg: TrainConfig) -> None:
    """Raise ValueError naming the first setting of ``cfg`` (model settings included) outside its range or
    choices, before any data is read or torch is imported."""
    if cfg.model not in MODEL_PRESETS:
        raise ValueError(f"model must be one of {sorted(MODEL_PRESETS)}, got {cfg.model!r}")
    for name, allowed in (
        ("variant", VARIANTS),
        ("precision", PRECISIONS),
        ("hflip_pairing", HFLIP_PAIRINGS),
    ):
        if getattr(cfg, name) not in allowed:
            raise ValueError(f"{name} must be one of {list(allowed)}, got {getattr(cfg, name)!r}")
    for name, low in MINIMA.items():
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < low:
            raise ValueError(f"{name} must be a finite number >= {low:g}, got {value!r}")
        if name in INTEGER_FIELDS and not float(value).is_integer():
            raise ValueError(f"{name} must be a whole number, got {value!r}")
    if cfg.lr <= 0:
        raise ValueError(f"lr must be > 0, got {cfg.lr!r}")
    if cfg.lr_min > cfg.lr:
        raise ValueError(f"lr_min ({cfg.lr_min!r}) must not exceed lr ({cfg.lr!r})")
    if not DEVICE_PATTERN.fullmatch(str(cfg.device)):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {cfg.device!r}")
    if not isinstance(cfg.val_split, str) or not cfg.val_split.strip():
        raise ValueError(f"val_split must name a split, got {cfg.val_split!r}")
    unknown = sorted(set(cfg.model_overrides) - MODEL_FIELDS)
    if unknown:
        raise ValueError(f"unknown model setting(s) {['model.' + k for k in unknown]}; known: {sorted(MODEL_FIELDS)}")
    cfg.model_config()  # the model's own checks (ModelConfig.__post_init__)


def changed_settings(saved: Mapping[str, Any], cfg: TrainConfig) -> list[str]:
    """The settings (by name, sorted) in which a recorded run's ``saved`` train config differs from ``cfg``, leaving
    out those that do not change the numbers (:data:`RESUME_FREE_FIELDS`)."""
    wanted = cfg.to_dict()
    return sorted(
        k for k in wanted.keys() | saved.keys() if k not in RESUME_FREE_FIELDS and saved.get(k) != wanted.get(k)
    )


def check_run_folder(out_dir: str | os.PathLike[str], dataset_dir: str | os.PathLike[str], cfg: TrainConfig) -> None:
    """Refuse to train into a folder that holds a run of another dataset or other settings (its ``config.json``):
    training would replace that run's weights, checkpoints and history. ``lavimo train --restart`` replaces it on
    purpose. Settings that do not change the numbers (:data:`RESUME_FREE_FIELDS`) may differ."""
    from lavimo.io import LavimoInputError, read_json

    config_path = Path(out_dir) / "config.json"
    if not config_path.is_file():
        return
    recorded = read_json(config_path, "run config")
    recorded_dir = recorded.get("dataset_dir")
    if recorded_dir is not None and Path(recorded_dir).resolve() != Path(dataset_dir).resolve():
        raise LavimoInputError(
            config_path,
            f"holds a run of another dataset ({recorded.get('dataset')}: {recorded_dir}); pass --restart to replace "
            "it or use another --out",
        )
    changed = changed_settings(recorded.get("train") or {}, cfg)
    if changed:
        raise LavimoInputError(
            config_path,
            f"holds a run with other settings ({', '.join(changed)}); pass --restart to replace it, or another --out",
        )
