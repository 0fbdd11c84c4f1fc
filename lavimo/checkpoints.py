"""Checkpoint files of a training run: the format stamp, saving and loading.

A run folder holds ``checkpoints/last.pt`` (full training state), ``checkpoints/best.pt`` (the best validation
weights) and :data:`MODEL_FILE` (the selected weights). Every one is a plain dict saved with ``torch.save``
and stamped ``"format": CHECKPOINT_FORMAT``; it loads with ``torch.load(weights_only=True)`` (no code runs from
the file), and a loader refuses a file without the stamp or with another one. PyTorch's loader does not check the
CRC-32 each record carries in the file's zip archive (bytes changed inside a tensor load as other weights without
a word), so :func:`load_checkpoint` checks every record's CRC-32 first.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from lavimo.io import DiskFullError, LavimoInputError, atomic_path

PathLike = str | os.PathLike[str]
MODEL_FILE = "model.pt"  # the selected weights in a run folder (the Snakemake target)
# the "format" stamp of every checkpoint and model file; a loader refuses any other
CHECKPOINT_FORMAT = 1


TORCH_WRITE_FAILURES = ("file write failed", "unexpected pos")


def save_checkpoint(path: PathLike, state: Mapping[str, Any]) -> None:
    """``state`` stamped with :data:`CHECKPOINT_FORMAT`, saved to a temp file and renamed into place (a killed
    run never leaves half a checkpoint)."""
    try:
        with atomic_path(path) as tmp:
            torch.save({"format": CHECKPOINT_FORMAT, **state}, tmp)
    except RuntimeError as error:
        # torch's zip writer reports a full disk as a RuntimeError ("file write failed", "unexpected pos ...")
        if not any(hint in str(error) for hint in TORCH_WRITE_FAILURES):
            raise
        raise DiskFullError(path) from None


def load_checkpoint(path: PathLike) -> dict[str, Any]:
    """A checkpoint or model file, loaded with ``weights_only=True`` (no code runs from the file).

    Its ``format`` stamp must be :data:`CHECKPOINT_FORMAT` (see :func:`check_checkpoint_format`).
    """
    path = Path(path)
    if not path.is_file():
        raise LavimoInputError(path, "model file does not exist (train the run first)")
    check_archive(path, "lavimo checkpoint")
    state = safe_torch_load(path, "lavimo checkpoint")
    check_checkpoint_format(path, state)
    return state


def check_archive(path: PathLike, what: str = "checkpoint") -> None:
    """Read every record of a ``torch.save`` zip archive and check its CRC-32; :class:`LavimoInputError` naming
    ``path`` when one differs (the file changed after it was written). Not a zip archive: left to the loader."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                with archive.open(info) as record:
                    while record.read(1 << 24):  # the CRC-32 is checked when a record is read to its end
                        pass
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise LavimoInputError(path, f"corrupt {what}: {error} (the file changed after it was written)") from error


def safe_torch_load(path: PathLike, what: str = "checkpoint") -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; a file it refuses is one :class:`LavimoInputError`.

    The message says why in one line (empty, truncated, not a PyTorch file, or Python objects a safe load
    refuses) without PyTorch's advice to load with ``weights_only=False``: no code runs from a file here.
    """
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise LavimoInputError(path, f"empty file (0 bytes), not a {what}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated file, pickle with code, not a torch file at all
        raise LavimoInputError(path, f"not a readable {what} ({_load_problem(error)})") from error


def _load_problem(error: Exception) -> str:
    """One line about why ``torch.load(weights_only=True)`` failed, PyTorch's advice left out."""
    text = str(error)
    refused = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if refused:
        return f"it holds Python objects ({refused.group(1)}) that a weights-only load refuses"
    first = text.split(". ")[0].splitlines()[0] if text else ""
    if "zip archive" in text:
        return f"truncated or corrupt PyTorch archive: {first}"
    return f"not a PyTorch file: {type(error).__name__} {first}".rstrip()


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


# model_config keys that say where the weights came from, not what they are
_LOCATION_KEYS = frozenset({"text_backbone_path", "text_allow_download"})


def check_checkpoint_fits_run(path: PathLike, state: Mapping[str, Any], run_config: Mapping[str, Any]) -> None:
    """Refuse a checkpoint whose variant or model config differs from a run's ``config.json``.

    Evaluating it would file another model's numbers under the run's name and variant.
    """
    stored = dict(state.get("model_config") or {})
    expected = json.loads(json.dumps((run_config.get("model") or {}).get("model_config") or {}, default=str))
    variant = stored.get("variant", (state.get("train_config") or {}).get("variant"))
    if run_config.get("variant") is not None and variant != run_config["variant"]:
        raise LavimoInputError(
            path,
            f"a {variant} model, but the run is {run_config['variant']} (its config.json): "
            "evaluate it with the run that trained it",
        )
    stored = json.loads(json.dumps(stored, default=str))
    differ = sorted(
        k for k in set(stored) | set(expected) if k not in _LOCATION_KEYS and stored.get(k) != expected.get(k)
    )
    if expected and differ:
        shown = ", ".join(f"{k} {stored.get(k)!r} (run: {expected.get(k)!r})" for k in differ[:4])
        more = f" and {len(differ) - 4} more" if len(differ) > 4 else ""
        raise LavimoInputError(
            path, f"model config differs from the run's config.json: {shown}{more}; evaluate it with its own run"
        )
