"""The follow camera (numpy only: importable without bpy).

Coordinates are the motion's: metres, Y up, the first frame facing +Z. The camera looks at a target
that follows a Gaussian-smoothed root trajectory, from a fixed direction (azimuth about Y from the
+Z front, elevation above the floor) and a fixed distance per clip, chosen so that every point of
the body stays inside the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UP = np.array([0.0, 1.0, 0.0])


@dataclass(frozen=True)
class CameraRig:
    """Where the follow camera sits relative to the body and how tightly it frames it."""

    azimuth_deg: float = 30.0  # about +Y, from the front (+Z) towards the body's left (+X)
    elevation_deg: float = 12.0  # above the horizontal
    fov_deg: float = 40.0  # square frame: horizontal = vertical field of view
    fill: float = 0.62  # stature / frame height at the target when nothing needs more room
    smooth_seconds: float = 0.8  # Gaussian sigma of the root trajectory
    margin_m: float = 0.22  # room kept around each joint for the flesh around it (all frames)
    vertex_margin_m: float = 0.03  # room kept around each skinned vertex (frames that are skinned)
    edge_pad: float = 0.05  # fraction of the half frame left free at the borders


@dataclass(frozen=True)
class CameraPath:
    """Per-frame camera location and look-at target (motion coordinates) at one fixed distance."""

    locations: np.ndarray  # (T, 3)
    targets: np.ndarray  # (T, 3)
    distance: float
    direction: np.ndarray  # (3,) unit vector from target to camera
    fov_deg: float


def gaussian_smooth(values: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Smooth ``values`` (T, D) along time with a Gaussian.

    The ends are padded by point reflection (2 x_0 - x_k), so that motion at constant velocity passes unchanged:
    the camera neither runs ahead of the body at the start of a clip nor lags behind at its end.
    """
    values = np.asarray(values, dtype=np.float64)
    if sigma_frames <= 0 or len(values) < 2:
        return values.copy()
    radius = int(np.ceil(3 * sigma_frames))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_frames) ** 2)
    kernel /= kernel.sum()
    padded = np.concatenate([_reflect(values, radius), values, _reflect(values[::-1], radius)[::-1]])
    return np.stack([np.convolve(padded[:, d], kernel, mode="valid") for d in range(values.shape[1])], axis=1)


def _reflect(values: np.ndarray, count: int) -> np.ndarray:
    """``count`` samples before ``values[0]``, point-reflected about it (the last sample repeats if too short)."""
    index = np.minimum(np.arange(count, 0, -1), len(values) - 1)
    return 2 * values[0] - values[index]


def view_direction(rig: CameraRig) -> np.ndarray:
    """Unit vector from the look-at target towards the camera."""
    az, el = np.radians(rig.azimuth_deg), np.radians(rig.elevation_deg)
    return np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])


def camera_basis(direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(right, up) unit vectors of the image plane for a camera placed along ``direction`` from its target."""
    forward = -direction
    right = np.cross(forward, UP)
    right /= np.linalg.norm(right)
    return right, np.cross(right, forward)


def look_targets(joints: np.ndarray, fps: float, rig: CameraRig) -> np.ndarray:
    """(T, 3) look-at points: smoothed root XZ and smoothed vertical centre of the joints."""
    centre_y = 0.5 * (joints[:, :, 1].min(axis=1) + joints[:, :, 1].max(axis=1))
    track = np.stack([joints[:, 0, 0], centre_y, joints[:, 0, 2]], axis=1)
    return gaussian_smooth(track, rig.smooth_seconds * fps)


def fit_distance(relative: np.ndarray, margin: float, direction: np.ndarray, rig: CameraRig) -> float:
    """Smallest camera distance at which points ``relative`` (N, 3) to their target, each grown by ``margin``, fit."""
    if relative.size == 0:
        return 0.0
    right, up = camera_basis(direction)
    tan_half = np.tan(np.radians(rig.fov_deg) / 2) * (1 - rig.edge_pad)
    towards = relative @ direction  # how much closer to the camera than the target
    extent = np.maximum(np.abs(relative @ right), np.abs(relative @ up))
    return float(np.max((extent + margin) / tan_half + towards + margin))


def camera_path(
    joints: np.ndarray,
    fps: float,
    stature: float,
    rig: CameraRig | None = None,
    vertices: np.ndarray | None = None,
    vertex_frames: np.ndarray | None = None,
) -> CameraPath:
    """Follow camera for posed ``joints`` (T, 22, 3); skinned ``vertices`` (N, V, 3) of ``vertex_frames`` refine it."""
    rig = rig or CameraRig()
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or not np.isfinite(joints).all():
        raise ValueError("joints must be a finite (T, J, 3) array")
    direction = view_direction(rig)
    targets = look_targets(joints, fps, rig)
    base = stature / (2 * np.tan(np.radians(rig.fov_deg) / 2) * rig.fill)
    distance = max(base, fit_distance((joints - targets[:, None]).reshape(-1, 3), rig.margin_m, direction, rig))
    if vertices is not None and vertex_frames is not None:
        relative = np.asarray(vertices, dtype=np.float64) - targets[np.asarray(vertex_frames)][:, None]
        distance = max(distance, fit_distance(relative.reshape(-1, 3), rig.vertex_margin_m, direction, rig))
    locations = targets + distance * direction
    return CameraPath(locations=locations, targets=targets, distance=distance, direction=direction, fov_deg=rig.fov_deg)
