"""One BVH clip -> canonical 20 fps t2m joints + HumanML3D features (what dataset preparation calls per clip)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from lavimo.io import LavimoInputError
from lavimo.motion.bvh import read_bvh
from lavimo.motion.plausibility import check_motion_values, check_root_speed
from lavimo.motion.resample import nominal_fps, resample
from lavimo.motion.source_skeletons import SourceSkeleton, bvh_to_t2m, detect_skeleton

TARGET_FPS = 20.0


@dataclass
class MotionClip:
    """A prepared clip. ``joints`` and ``features`` have the same N frames (as HumanML3D's
    new_joints / new_joint_vecs): N = (20 fps frames of the source span) - 1, because features are
    made of frame-to-frame differences and the joints are recovered from them."""

    joints: np.ndarray  # (N, 22, 3) float32, canonical (HumanML3D) pose, metres, Y up, 20 fps
    features: np.ndarray  # (N, 263) float32
    source_fps: float
    skeleton: str
    source: str  # path of the BVH file
    source_frames: int

    @property
    def seconds(self) -> float:
        """Duration of the source clip (frames x frame time)."""
        return self.source_frames / self.source_fps


def bvh_world_joints(
    path: str | os.PathLike[str],
    skeleton: SourceSkeleton | str | None = None,
    unit_scale: float | None = None,
) -> tuple[np.ndarray, float, str]:
    """Read + FK + t2m mapping: (world joints (T, 22, 3) metres Y up, source fps, skeleton name).

    A root faster than :data:`~lavimo.motion.plausibility.MAX_ROOT_SPEED_M_S` is refused as implausible.
    """
    motion = read_bvh(path)
    if skeleton is None:
        skeleton = detect_skeleton(motion)
    name = skeleton if isinstance(skeleton, str) else skeleton.name
    world = bvh_to_t2m(motion, skeleton, unit_scale)
    check_root_speed(world, motion.frame_time, str(path))
    return world, nominal_fps(motion.frame_time), name


def bvh_to_clip(
    path: str | os.PathLike[str],
    min_seconds: float = 1.0,
    skeleton: SourceSkeleton | str | None = None,
    unit_scale: float | None = None,
) -> MotionClip:
    """BVH -> FK -> t2m joints (m, Y up) -> 20 fps -> HumanML3D canonical joints + features.

    Clips shorter than ``min_seconds`` (frames x frame time), and implausible motions (NaN/Inf, a joint far from the
    root, an absurd value: :mod:`lavimo.motion.plausibility`) raise :class:`LavimoInputError`.
    """
    from lavimo.motion.humanml3d import process_joints

    world, fps, name = bvh_world_joints(path, skeleton, unit_scale)
    seconds = world.shape[0] / fps
    if seconds + 1e-9 < min_seconds:
        raise LavimoInputError(
            path, f"too short: {world.shape[0]} frames at {fps:g} fps = {seconds:.2f} s < {min_seconds:g} s"
        )
    joints, features = process_joints(resample(world, fps, TARGET_FPS), source=str(path))
    check_motion_values(joints, features, str(path))
    return MotionClip(
        joints=joints, features=features, source_fps=fps, skeleton=name, source=str(path), source_frames=world.shape[0]
    )
