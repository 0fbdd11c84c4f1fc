"""Embeddings of a trained model: load a run's weights, embed a split of a dataset for retrieval."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lavimo.io import LavimoInputError
from lavimo.model import LAVIMO, ModelConfig
from lavimo.retrieval_data import Collate, MotionStats, RetrievalDataset

PathLike = str | os.PathLike[str]
MODEL_FILE = "model.pt"
# the "format" stamp of every checkpoint and model file lavimo.train writes; a loader refuses any other
CHECKPOINT_FORMAT = 1


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> cuda when available, else cpu; anything else as torch understands it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """bf16 autocast on CUDA for ``auto``/``bf16`` (and on CPU only for an explicit ``bf16``); else disabled."""
    enabled = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def load_weights_file(path: PathLike) -> dict[str, Any]:
    """A checkpoint or model file, loaded with ``weights_only=True`` (no code runs from the file).

    Its ``format`` stamp must be :data:`CHECKPOINT_FORMAT` (see :func:`check_checkpoint_format`).
    """
    path = Path(path)
    if not path.is_file():
        raise LavimoInputError(path, "model file does not exist (train the run first)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated file, pickle with code, wrong format
        raise LavimoInputError(path, f"not a loadable lavimo checkpoint ({type(error).__name__}: {error})") from error
    check_checkpoint_format(path, state)
    return state


def check_checkpoint_format(path: PathLike, state: Any) -> None:
    """Raise :class:`LavimoInputError` naming ``path`` unless ``state`` carries this version's format stamp."""
    if not isinstance(state, dict):
        raise LavimoInputError(path, f"not a lavimo checkpoint (holds a {type(state).__name__}, not a dict)")
    if "format" not in state:
        raise LavimoInputError(
            path,
            f"no checkpoint format stamp (expected {CHECKPOINT_FORMAT}): not written by lavimo train, "
            "or by a version from before the stamp; retrain the run",
        )
    found = state["format"]
    if isinstance(found, bool) or found != CHECKPOINT_FORMAT:
        raise LavimoInputError(
            path,
            f"checkpoint format {found!r}, expected {CHECKPOINT_FORMAT}: written by another lavimo version; "
            "retrain the run or load it with the version that wrote it",
        )


def load_trained(path: PathLike, device: str = "auto") -> tuple[LAVIMO, MotionStats, dict[str, Any]]:
    """(model in eval mode, motion statistics, the stored file) from a run folder or a model/checkpoint file."""
    path = Path(path)
    file = path / MODEL_FILE if path.is_dir() else path
    state = load_weights_file(file)
    for key in ("model", "model_config", "motion_stats"):
        if key not in state:
            raise LavimoInputError(file, f"checkpoint lacks {key!r}")
    model = LAVIMO(ModelConfig.from_dict(state["model_config"]))
    model.load_state_dict(state["model"])
    stats = MotionStats(
        state["motion_stats"]["mean"].numpy(), state["motion_stats"]["std"].numpy(), str(state.get("stats_source"))
    )
    return model.to(resolve_device(device)).eval(), stats, state


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
