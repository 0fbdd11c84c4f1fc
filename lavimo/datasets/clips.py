"""Per-clip array helpers shared by the dataset preparers: completing, checking, cropping, mirroring.

Stored clips follow the layout of ARCHITECTURE.md: joints (T, 22, 3) and features (T-1, 263). The
HumanML3D pipeline (and every HumanML3D/TMR release) gives joints recovered from the features, with
as many frames as the features; :func:`complete_joints` appends the last frame from the final local
velocities, which reproduces the dropped position exactly (to float precision).
"""

from __future__ import annotations

import numpy as np

from lavimo.io import LavimoInputError
from lavimo.motion.humanml3d import process_joints, recover_root
from lavimo.motion.mirror import mirror_joints
from lavimo.motion.plausibility import MAX_BODY_M as MAX_BODY_M  # the limits, re-exported from lavimo.motion
from lavimo.motion.plausibility import MAX_EXTENT_M as MAX_EXTENT_M
from lavimo.motion.plausibility import check_motion_values
from lavimo.motion.quaternion import qinv, qrot
from lavimo.motion.skeleton import FEATURE_DIM, NUM_JOINTS

FPS = 20
_VELOCITY = slice(4 + 9 * (NUM_JOINTS - 1), 4 + 9 * (NUM_JOINTS - 1) + 3 * NUM_JOINTS)  # [193:259]


def complete_joints(joints: np.ndarray, features: np.ndarray) -> np.ndarray:
    """Joints (N, 22, 3) recovered from features (N, 263) -> (N+1, 22, 3): the last frame from the velocities."""
    yaw, _ = recover_root(features.astype(np.float64))
    velocity = features[-1, _VELOCITY].astype(np.float64).reshape(NUM_JOINTS, 3)
    last = joints[-1].astype(np.float64) + qrot(np.broadcast_to(qinv(yaw[-1]), (NUM_JOINTS, 4)), velocity)
    return np.concatenate([joints, last[None].astype(joints.dtype)], axis=0)


def check_motion(joints: np.ndarray, features: np.ndarray, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate shapes, frame counts and values (:func:`check_motion_values`); return float32 copies."""
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3):
        raise LavimoInputError(source, f"expected joints (T, {NUM_JOINTS}, 3), got {joints.shape}")
    if features.ndim != 2 or features.shape[1] != FEATURE_DIM:
        raise LavimoInputError(source, f"expected features (T-1, {FEATURE_DIM}), got {features.shape}")
    if features.shape[0] != joints.shape[0] - 1 or features.shape[0] < 1:
        raise LavimoInputError(source, f"{joints.shape[0]} joint frames but {features.shape[0]} feature frames")
    check_motion_values(joints, features, source)
    return joints.astype(np.float32), features.astype(np.float32)


def from_joints(world: np.ndarray, source: str) -> tuple[np.ndarray, np.ndarray]:
    """World joints (T, 22, 3) m, Y up, 20 fps -> canonical joints (T, 22, 3) and features (T-1, 263)."""
    joints, features = process_joints(world, source=source)
    return check_motion(complete_joints(joints, features), features, source)


def mirrored(joints: np.ndarray, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Mirror a clip's joints (T, 22, 3) and recompute its features, as HumanML3D builds ``M`` clips."""
    return from_joints(mirror_joints(joints, source=source), source)


def crop(joints: np.ndarray, features: np.ndarray, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """Feature frames [start, end) (HumanML3D's ``motion[int(s*20):int(e*20)]``) and their end joints."""
    return joints[start : end + 1], features[start:end]


def seconds_to_frames(start: float, end: float, fps: float = FPS) -> tuple[int, int]:
    """Feature frame range of a caption span, as HumanML3D and TMR compute it."""
    return int(start * fps), int(end * fps)


def duration(n_frames: int, fps: float = FPS) -> float:
    """Seconds spanned by ``n_frames`` joint frames: (n - 1) / fps, i.e. feature frames / fps as TMR's durations."""
    return round((n_frames - 1) / fps, 6)
