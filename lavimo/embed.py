"""Embeddings of a trained model: load a run's weights, embed a split of a dataset for retrieval."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lavimo.checkpoints import MODEL_FILE, load_checkpoint
from lavimo.distributed import resolve_device
from lavimo.io import LavimoInputError
from lavimo.model import LAVIMO, ModelConfig
from lavimo.retrieval_data import Collate, MotionStats, RetrievalDataset

PathLike = str | os.PathLike[str]


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """bf16 autocast on CUDA for ``auto``/``bf16`` (and on CPU only for an explicit ``bf16``); else disabled."""
    enabled = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def load_trained(path: PathLike, device: str = "auto") -> tuple[LAVIMO, MotionStats, dict[str, Any]]:
    """(model in eval mode, motion statistics, the stored file) from a run folder or a model/checkpoint file."""
    path = Path(path)
    file = path / MODEL_FILE if path.is_dir() else path
    try:
        state = load_checkpoint(file)
    except LavimoInputError as error:
        if file.name != MODEL_FILE or not file.is_file():
            raise
        raise LavimoInputError(
            file,
            f"{error.problem}; rerun the run's `lavimo train` (snakemake: --forcerun train): a finished run "
            "writes model.pt again from checkpoints/best.pt",
        ) from error
    for key in ("model", "model_config", "motion_stats"):
        if key not in state:
            raise LavimoInputError(file, f"checkpoint lacks {key!r}")
    model = LAVIMO(ModelConfig.from_dict(state["model_config"]))
    load_weights(model, state["model"], file)
    stats = MotionStats(
        state["motion_stats"]["mean"].numpy(), state["motion_stats"]["std"].numpy(), str(state.get("stats_source"))
    )
    return model.to(resolve_device(device)).eval(), stats, state


def load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], path: PathLike) -> None:
    """``model.load_state_dict(weights)``; weights that do not fit the model are one error naming ``path``."""
    own = model.state_dict()
    resized = [k for k in own if k in weights and tuple(weights[k].shape) != tuple(own[k].shape)]
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    problems = []
    if resized:
        first = resized[0]
        problems.append(
            f"{len(resized)} tensor(s) of another shape (first {first}: {tuple(weights[first].shape)} in the file, "
            f"{tuple(own[first].shape)} for its config)"
        )
    problems += [
        f"{len(keys)} {name} (first {keys[0]})"
        for name, keys in (("missing", missing), ("unexpected", unexpected))
        if keys
    ]
    if problems:
        raise LavimoInputError(path, "the weights do not fit the model config stored with them: " + "; ".join(problems))
    model.load_state_dict(weights)


@torch.no_grad()
def embed_dataset(
    model: LAVIMO, dataset: RetrievalDataset, batch_size: int = 64, precision: str = "auto"
) -> dict[str, Any]:
    """L2-normalised float32 embeddings of every clip (first caption, clean view) in dataset order.

    Returns clip_ids, captions, text (N, C), motion (N, C), sentence (N, D_s) when the dataset has sentence
    embeddings, and for a 3-modal model with features video (N, C) plus video_valid (N,) bool.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    collate = Collate(model.tokenizer)
    parts: dict[str, list[np.ndarray]] = {"text": [], "motion": [], "video": [], "video_valid": [], "sentence": []}
    captions: list[str] = []
    for start in range(0, len(dataset), batch_size):
        batch = collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        captions += batch["text"]
        with autocast(device, precision):
            parts["text"].append(model.encode_text(batch["text_tokens"]).float().cpu().numpy())
            motion = batch["motion"].to(device)
            parts["motion"].append(model.encode_motion(motion, batch["lengths"].to(device)).float().cpu().numpy())
            if model.has_video and "video" in batch:
                parts["video"].append(model.encode_video(batch["video"].to(device)).float().cpu().numpy())
                parts["video_valid"].append(batch["video_valid"].numpy())
        if "sentence_emb" in batch:
            parts["sentence"].append(batch["sentence_emb"].numpy())
    model.train(was_training)
    out: dict[str, Any] = {"clip_ids": list(dataset.clip_ids), "captions": captions}
    out.update({k: np.concatenate(v) for k, v in parts.items() if v})
    return out
