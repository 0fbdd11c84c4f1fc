"""Rendered frames of one clip: locate, check and decode them.

Layout written by :mod:`lavimo.render` (see :mod:`lavimo.layout`): ``{frames_dir}/{clip_id}/00.png .. 07.png``
plus ``meta.json`` (``indices``, ``avatar``, ``engine``, ``resolution``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lavimo.frame_sampling import uniform_frame_indices
from lavimo.io import LavimoInputError
from lavimo.layout import FRAME_GLOB, FRAME_META


def read_frame_meta(clip_dir: Path) -> dict:
    """The renderer's ``meta.json`` of a clip folder ({} if absent); unreadable JSON is an input error."""
    path = clip_dir / FRAME_META
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise LavimoInputError(path, f"unreadable frame meta ({error})") from error


def list_frames(clip_dir: Path, num_frames: int) -> list[Path]:
    """The ``num_frames`` PNGs of a clip in time order (uniformly subsampled if more were rendered)."""
    if not clip_dir.is_dir():
        raise LavimoInputError(clip_dir, "frame folder does not exist (was the clip rendered?)")
    files = sorted(clip_dir.glob(FRAME_GLOB))
    if len(files) < num_frames:
        raise LavimoInputError(clip_dir, f"expected {num_frames} frame PNGs, found {len(files)}")
    if len(files) > num_frames:
        files = [files[i] for i in uniform_frame_indices(len(files), num_frames)]
    return files


def decode_frame(path: Path, expected_size: int | None = None) -> torch.Tensor:
    """One PNG as a (3,H,W) uint8 RGB tensor; missing, unreadable or wrongly sized files are input errors."""
    try:
        with Image.open(path) as image:
            if image.format != "PNG":
                raise LavimoInputError(path, f"frame is {image.format}, expected PNG")
            array = np.array(image if image.mode == "RGB" else image.convert("RGB"))
    except FileNotFoundError as error:
        raise LavimoInputError(path, "frame file does not exist") from error
    except (OSError, ValueError, SyntaxError) as error:  # PIL: unidentified, truncated or corrupt
        raise LavimoInputError(path, f"not a readable PNG ({error})") from error
    height, width = array.shape[:2]
    if expected_size is not None and (height, width) != (expected_size, expected_size):
        raise LavimoInputError(path, f"frame is {width}x{height}, expected {expected_size}x{expected_size}")
    return torch.from_numpy(array).permute(2, 0, 1)


def _meta_resolution(meta: dict) -> int | None:
    """The square frame size recorded by the renderer (an int, or [w, h] with w == h), else None."""
    value = meta.get("resolution")
    if isinstance(value, list | tuple) and len(value) == 2 and value[0] == value[1]:
        value = value[0]
    return int(value) if isinstance(value, int | float) else None


def load_clip_frames(
    clip_dir: Path, num_frames: int = 8, expected_size: int | None = None, min_size: int = 256
) -> tuple[torch.Tensor, list[int]]:
    """Decode a clip's frames: (T,3,H,W) uint8 and the source frame indices (from meta.json, else 0..T-1).

    ``expected_size`` defaults to the ``resolution`` in meta.json; every frame must have the same size, at
    least ``min_size`` (the training crop).
    """
    meta = read_frame_meta(clip_dir)
    files = list_frames(clip_dir, num_frames)
    size = expected_size if expected_size is not None else _meta_resolution(meta)
    frames = [decode_frame(path, size) for path in files]
    for path, frame in zip(files, frames, strict=True):
        if frame.shape != frames[0].shape:
            raise LavimoInputError(path, f"frame size {tuple(frame.shape[1:])} differs from {files[0].name}'s")
        if min(frame.shape[1:]) < min_size:
            raise LavimoInputError(path, f"frame {tuple(frame.shape[1:])} is smaller than the {min_size}px crop")
    indices = meta.get("indices")
    if not isinstance(indices, list) or len(indices) != len(list(clip_dir.glob(FRAME_GLOB))):
        indices = list(range(len(files)))
    elif len(indices) != num_frames:
        indices = [int(indices[i]) for i in uniform_frame_indices(len(indices), num_frames)]
    return torch.stack(frames), [int(i) for i in np.asarray(indices).tolist()]
