"""Resampling motions in time (linear interpolation between frames)."""

from __future__ import annotations

import numpy as np


def resampled_length(n_frames: int, src_fps: float, dst_fps: float) -> int:
    """Frames at ``dst_fps`` covering the span of ``n_frames`` at ``src_fps`` (first frame kept, no extrapolation)."""
    if n_frames <= 0:
        return 0
    duration = (n_frames - 1) / src_fps
    return int(np.floor(duration * dst_fps + 1e-6)) + 1


def resample(joints: np.ndarray, src_fps: float, dst_fps: float = 20.0) -> np.ndarray:
    """Resample (T, ...) frames from ``src_fps`` to ``dst_fps`` by linear interpolation in time.

    Output frame k is at time k / dst_fps; frames of an integer-ratio downsampling (120 -> 20,
    60 -> 20) are exactly every n-th source frame, 30 -> 20 blends neighbours half-way.
    """
    if src_fps <= 0 or dst_fps <= 0:
        raise ValueError(f"frame rates must be positive, got {src_fps} -> {dst_fps}")
    joints = np.asarray(joints)
    n_src = joints.shape[0]
    n_dst = resampled_length(n_src, src_fps, dst_fps)
    if n_src <= 1:
        return joints.astype(np.float64, copy=True)
    position = np.arange(n_dst) * (src_fps / dst_fps)
    lower = np.minimum(np.floor(position + 1e-9).astype(np.int64), n_src - 1)
    weight = np.clip(position - lower, 0.0, 1.0)
    weight[weight < 1e-9] = 0.0
    upper = np.minimum(lower + 1, n_src - 1)
    shape = (n_dst,) + (1,) * (joints.ndim - 1)
    weight = weight.reshape(shape)
    return joints[lower] * (1.0 - weight) + joints[upper] * weight


def nominal_fps(frame_time: float) -> float:
    """Frame rate from a BVH frame time, snapped to a whole number when within 0.1% (0.0333333 s -> 30)."""
    fps = 1.0 / frame_time
    rounded = round(fps)
    return float(rounded) if rounded > 0 and abs(fps - rounded) <= 1e-3 * fps else fps
