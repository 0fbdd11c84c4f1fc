"""What no real human motion exceeds: limits every motion input and output is checked against.

A value beyond them is a corrupt file or wrong units, never a motion: it is refused as a
:class:`~lavimo.io.LavimoInputError` naming the file ("implausible ..."), not passed on.
"""

from __future__ import annotations

import numpy as np

from lavimo.io import LavimoInputError

MAX_BODY_M = 10.0  # no joint lies farther from its root (a body spans about 2 m)
MAX_EXTENT_M = 1000.0  # no coordinate (m) or feature (m, m/frame, radians/frame) goes beyond it
MAX_ROOT_SPEED_M_S = 50.0  # the root moves slower between two frames (a sprinter: about 10 m/s)
MAX_ANGLE_DEG = 1e5  # no BVH rotation channel goes beyond it (about 280 turns)
MAX_FRAME_TIME_S = 1.0  # a BVH frame time is a fraction of a second (0.0333 s at 30 fps)
MAX_CLIP_SECONDS = 3600.0  # no clip is longer than an hour


def check_joint_values(joints: np.ndarray, source: str, what: str = "motion") -> None:
    """Refuse joints (T, J, 3) in metres with NaN/Inf, a joint over :data:`MAX_BODY_M` from the root (joint 0)
    or a coordinate beyond :data:`MAX_EXTENT_M`. ``what`` names the joints in messages."""
    joints = np.asarray(joints)
    if not np.isfinite(joints).all():
        raise LavimoInputError(source, f"{what} contains NaN or Inf values")
    if joints.ndim == 3 and joints.shape[1] > 0:
        body = float(np.abs(joints - joints[:, :1]).max(initial=0.0))
        if body > MAX_BODY_M:
            raise LavimoInputError(
                source, f"implausible {what}: a joint lies {body:.3g} m from the root (a body spans < {MAX_BODY_M:g} m)"
            )
    extent = float(np.abs(joints).max(initial=0.0))
    if extent > MAX_EXTENT_M:
        raise LavimoInputError(
            source, f"implausible {what}: a joint coordinate of {extent:.3g} m, beyond {MAX_EXTENT_M:g}"
        )


def check_feature_values(features: np.ndarray, source: str, what: str = "motion") -> None:
    """Refuse features (m, m/frame, radians/frame) with NaN/Inf or a value beyond :data:`MAX_EXTENT_M`."""
    features = np.asarray(features)
    if not np.isfinite(features).all():
        raise LavimoInputError(source, f"{what} contains NaN or Inf values")
    extent = float(np.abs(features).max(initial=0.0))
    if extent > MAX_EXTENT_M:
        raise LavimoInputError(
            source, f"implausible {what}: a feature value of {extent:.3g} (m or m/frame), beyond {MAX_EXTENT_M:g}"
        )


def check_motion_values(joints: np.ndarray, features: np.ndarray, source: str, what: str = "motion") -> None:
    """Refuse a clip (joints in metres, features) with NaN or Inf values or an implausible scale (both checks above)."""
    check_joint_values(joints, source, what)
    check_feature_values(features, source, what)


def check_root_speed(joints: np.ndarray, frame_time: float, source: str) -> None:
    """Refuse world joints (T, J, 3) in metres whose root (joint 0) moves faster than :data:`MAX_ROOT_SPEED_M_S`
    between two frames ``frame_time`` seconds apart (a hip 1,000 m up for one frame)."""
    if len(joints) < 2:
        return
    with np.errstate(over="ignore", invalid="ignore"):  # a corrupt value overflows: an infinite speed, refused
        speed = np.linalg.norm(np.diff(joints[:, 0], axis=0), axis=-1) / frame_time
    fast = ~(speed <= MAX_ROOT_SPEED_M_S)  # NaN counts as too fast
    if fast.any():
        frame = int(np.argmax(fast))
        raise LavimoInputError(
            source,
            f"implausible motion: the root moves {float(speed[frame]):.3g} m/s between frames {frame + 1} and "
            f"{frame + 2} (beyond {MAX_ROOT_SPEED_M_S:g} m/s)",
        )


def check_frame_time(n_frames: int, frame_time: float, source: str) -> None:
    """Refuse a frame count or frame time that is not positive (and finite), or a frame time over
    :data:`MAX_FRAME_TIME_S` (resampling 1,000,000 s frames to 20 fps would take gigabytes)."""
    if n_frames <= 0 or not np.isfinite(frame_time) or frame_time <= 0:
        raise LavimoInputError(source, f"Frames: {n_frames}, Frame Time: {frame_time} are not positive")
    if frame_time > MAX_FRAME_TIME_S:
        problem = f"implausible Frame Time: {frame_time:g} s per frame (at most {MAX_FRAME_TIME_S:g} s; 30 fps: 0.0333)"
        raise LavimoInputError(source, problem)


def check_duration(n_frames: int, frame_time: float, source: str) -> None:
    """Refuse a clip of ``n_frames`` frames ``frame_time`` seconds apart longer than :data:`MAX_CLIP_SECONDS`."""
    seconds = (n_frames - 1) * frame_time
    if seconds > MAX_CLIP_SECONDS:
        raise LavimoInputError(
            source,
            f"implausible length: {n_frames} frames of {frame_time:g} s = {seconds / 3600:.3g} h "
            f"(at most {MAX_CLIP_SECONDS / 3600:g} h)",
        )
