"""Uniform frame sampling, shared by the renderer (bpy side) and the video features (torch side): numpy only."""

from __future__ import annotations

import numpy as np


def uniform_frame_indices(n_frames: int, k: int = 8) -> np.ndarray:
    """Indices of ``k`` frames spread uniformly over a clip of ``n_frames``: the centre of each of k equal segments.

    Always within ``[0, n_frames - 1]`` and non-decreasing; a clip shorter than ``k`` frames repeats frames.
    """
    if n_frames < 1:
        raise ValueError(f"a clip needs at least one frame, got n_frames={n_frames}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return np.floor((np.arange(k) + 0.5) * n_frames / k).astype(np.int64)
