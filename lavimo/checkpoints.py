"""Checkpoint files of a training run: the format stamp, saving and loading.

A run folder holds ``checkpoints/last.pt`` (full training state), ``checkpoints/best.pt`` (the best validation
weights) and :data:`MODEL_FILE` (the selected weights). Every one is a plain dict saved with ``torch.save``
and stamped ``"format": CHECKPOINT_FORMAT``; it loads with ``torch.load(weights_only=True)`` (no code runs from
the file), and a loader refuses a file without the stamp or with another one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from lavimo.io import LavimoInputError, atomic_path

PathLike = str | os.PathLike[str]
MODEL_FILE = "model.pt"  # the selected weights in a run folder (the Snakemake target)
# the "format" stamp of every checkpoint and model file; a loader refuses any other
CHECKPOINT_FORMAT = 1


def save_checkpoint(path: PathLike, state: Mapping[str, Any]) -> None:
    """``state`` stamped with :data:`CHECKPOINT_FORMAT`, saved to a temp file and renamed into place (a killed
    run never leaves half a checkpoint)."""
    with atomic_path(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, **state}, tmp)


def load_checkpoint(path: PathLike) -> dict[str, Any]:
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
