"""Linear blend skinning of an avatar posed by :func:`lavimo.avatars.retarget.retarget` (numpy only).

The trunk (pelvis, spine1, spine2, spine3) shares its skin weight by vertex height, with a short
linear ramp around each spine joint. When retargeting re-places the spine joints to fit a source
skeleton, the trunk weight is re-split around the new joints (:func:`skin_weights_for`), so that
every weight transition stays at the joint the two segments turn about (no tearing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from lavimo.avatars.retarget import Posed


class Skinnable(Protocol):
    """What skinning needs of an avatar."""

    vertices: np.ndarray  # (V, 3) rest mesh
    skin_weights: np.ndarray  # (V, 22) rows sum to 1
    rest_joints: np.ndarray  # (22, 3)


TRUNK_JOINTS = (0, 3, 6, 9)
TRUNK_RAMP_M = 0.03  # half width of the weight transitions at spine1, spine2, spine3 (less if they are close)


def split_trunk(vertices: np.ndarray, trunk: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """Shares (V, 4) of a per-vertex trunk weight (V,) for pelvis, spine1, spine2, spine3 by height."""
    y = np.asarray(vertices)[:, 1]
    heights = np.maximum.accumulate(joints[list(TRUNK_JOINTS[1:]), 1])  # never decreasing upwards
    gaps = np.diff(heights)
    nearest = np.minimum(np.concatenate([[np.inf], gaps]), np.concatenate([gaps, [np.inf]]))
    ramps = np.clip(0.4 * nearest, 0.005, TRUNK_RAMP_M)  # short segments keep a band of their own
    up = [np.clip((y - h + r) / (2 * r), 0.0, 1.0) for h, r in zip(heights, ramps, strict=True)]
    shares = np.stack([1 - up[0], up[0] - up[1], up[1] - up[2], up[2]], axis=1)
    return shares * trunk[:, None]


def skin_weights_for(avatar: Skinnable, posed: Posed) -> np.ndarray:
    """The avatar's skin weights (V, 22), the trunk re-split when ``posed`` moved the spine joints."""
    weights = np.asarray(avatar.skin_weights, dtype=np.float32)
    spine = list(TRUNK_JOINTS[1:])
    if np.allclose(posed.rest_joints[spine], avatar.rest_joints[spine], atol=1e-5):
        return weights
    weights = weights.copy()
    trunk = weights[:, list(TRUNK_JOINTS)].sum(1)
    weights[:, list(TRUNK_JOINTS)] = split_trunk(avatar.vertices, trunk, posed.rest_joints)
    return weights


def joint_transforms(posed: Posed, frames: np.ndarray) -> np.ndarray:
    """Affine transforms (N, 22, 3, 4) rest -> posed of every joint segment: x -> R_j (x - rest_j) + p_j."""
    rot = posed.global_rotations[frames]
    trans = posed.joints[frames] - np.einsum("njab,jb->nja", rot, posed.rest_joints)
    return np.concatenate([rot, trans[..., None]], axis=-1)


def skin(avatar: Skinnable, posed: Posed, frames: np.ndarray | None = None, chunk: int = 64) -> np.ndarray:
    """Skinned vertices (N, V, 3) float32 of the given frames (all frames when None)."""
    frames = np.arange(len(posed.joints)) if frames is None else np.atleast_1d(np.asarray(frames))
    weights = skin_weights_for(avatar, posed)
    rest = np.asarray(avatar.vertices, dtype=np.float32)
    out = np.empty((len(frames), len(rest), 3), dtype=np.float32)
    for start in range(0, len(frames), chunk):
        part = frames[start : start + chunk]
        transforms = joint_transforms(posed, part).astype(np.float32).reshape(len(part), -1, 12)
        blended = np.matmul(weights, transforms).reshape(len(part), len(rest), 3, 4)  # (n, V, 3, 4)
        out[start : start + len(part)] = np.einsum("nvab,vb->nva", blended[..., :3], rest) + blended[..., 3]
    return out
