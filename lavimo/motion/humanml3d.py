"""HumanML3D motion features: joints (T,J,3) <-> the redundant (T-1, D) representation of Guo et al. 2022.

Written from the published algorithm (HumanML3D ``motion_representation``) and checked against the
sample clip 012314 of the HumanML3D release. Everything is vectorised over frames; only the joint
tree is walked in Python. The functions are generic in the skeleton (``SkeletonSpec``): the 22-joint
t2m skeleton (263-dim) is the default, KIT-ML's 21-joint skeleton (251-dim) reuses them via
``lavimo.motion.kit``.

Feature layout for J joints (J=22: D=263):

    [0]                     root angular velocity about Y (half-angle per frame, HumanML3D convention)
    [1:3]                   root linear velocity in XZ, in the root's facing frame
    [3]                     root height
    [4 : 4+3(J-1)]          ric: joints 1..J-1 relative to the root XZ, rotated to face +Z
    [.. : ..+6(J-1)]        continuous 6D local rotations of joints 1..J-1 (IK on the target skeleton)
    [.. : ..+3J]            local velocities of all J joints, in the root's facing frame
    [-4:]                   foot contacts (left foot joints, right foot joints), 0/1

Quirks of the reference reproduced on purpose, because every released HumanML3D feature file
carries them (checked on clip 012314; see HumanML3D issues #74, #119):

* the IK takes its facing direction from (l_hip - r_hip) + (r_shoulder - l_shoulder) (the reference
  unpacks the face joints in the wrong order), smoothed over time with a Gaussian (sigma 20 frames);
* the feature IK sets frame 0's root rotation to identity (also for the limb chains);
* every chain, also those hanging off spine3, starts from the root rotation;
* [0] is arcsin of the Y component of the frame-to-frame yaw quaternion, i.e. half the yaw step.

One reference bug is fixed by default: where the facing crosses the back direction the reference
stores [0] with the wrong sign (issue #156); ``reference_yaw_sign=True`` reproduces it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from lavimo.io import LavimoInputError
from lavimo.motion import skeleton as t2m
from lavimo.motion.quaternion import qbetween, qinv, qmul, qrot, quat_to_cont6d

DEFAULT_FEET_THRESHOLD = 0.002
FORWARD_SMOOTHING_SIGMA = 20.0  # frames; Gaussian smoothing of the facing direction in the feature IK
_UP = np.array([0.0, 1.0, 0.0])
_FORWARD = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class SkeletonSpec:
    """Everything the feature pipeline needs to know about one skeleton."""

    name: str
    chains: tuple[tuple[int, ...], ...]
    raw_offsets: np.ndarray  # (J, 3) unit rest-pose bone directions
    face_joints: tuple[int, int, int, int]  # r_hip, l_hip, r_shoulder, l_shoulder
    feet_left: tuple[int, ...]
    feet_right: tuple[int, ...]
    leg_joints: tuple[int, int]  # two leg bones whose summed length sets the retargeting scale
    target_bone_lengths: np.ndarray | None = None  # (J,) of the uniform target skeleton, if known

    @property
    def n_joints(self) -> int:
        return len(self.raw_offsets)

    @property
    def feature_dim(self) -> int:
        return feature_dim(self.n_joints)

    @property
    def parents(self) -> np.ndarray:
        parents = np.full(self.n_joints, -1)
        for chain in self.chains:
            parents[list(chain[1:])] = chain[:-1]
        return parents


T2M = SkeletonSpec(
    name="t2m",
    chains=t2m.T2M_KINEMATIC_CHAINS,
    raw_offsets=t2m.T2M_RAW_OFFSETS,
    face_joints=t2m.FACE_JOINTS,
    feet_left=t2m.LEFT_FOOT,
    feet_right=t2m.RIGHT_FOOT,
    leg_joints=(5, 8),  # r_knee, r_ankle: thigh + shin
    target_bone_lengths=t2m.T2M_TARGET_BONE_LENGTHS,
)


def feature_dim(n_joints: int) -> int:
    """Feature size for a J-joint skeleton: 4 + 3(J-1) + 6(J-1) + 3J + 4 (263 for 22, 251 for 21)."""
    return 4 + 9 * (n_joints - 1) + 3 * n_joints + 4


def n_joints_of(dim: int) -> int:
    """Joint count of a feature size (inverse of ``feature_dim``)."""
    if (dim + 1) % 12 != 0:
        raise ValueError(f"{dim} is not a HumanML3D feature size (4 + 9(J-1) + 3J + 4 = 12J - 1)")
    return (dim + 1) // 12


# ----------------------------------------------------------------------------- validation


def _check_joints(joints: np.ndarray, spec: SkeletonSpec, source: str, min_frames: int = 2) -> np.ndarray:
    array = np.asarray(joints)
    if array.ndim != 3 or array.shape[1:] != (spec.n_joints, 3):
        raise LavimoInputError(source, f"expected joints of shape (T, {spec.n_joints}, 3), got {array.shape}")
    if not np.issubdtype(array.dtype, np.number):
        raise LavimoInputError(source, f"joints must be numeric, got dtype {array.dtype}")
    if array.shape[0] < min_frames:
        raise LavimoInputError(source, f"need at least {min_frames} frames, got {array.shape[0]}")
    if not np.all(np.isfinite(array)):
        raise LavimoInputError(source, "joints contain NaN or Inf values")
    return array.astype(np.float64)


def _check_features(features: np.ndarray, source: str, n_joints: int | None = None) -> np.ndarray:
    array = np.asarray(features)
    dims = f"{feature_dim(n_joints)}" if n_joints else "263 or 251"
    if array.ndim != 2:
        raise LavimoInputError(source, f"expected features of shape (T, {dims}), got {array.shape}")
    try:
        joints = n_joints_of(array.shape[1])
    except ValueError:
        joints = None
    if joints is None or joints < 2 or (n_joints is not None and joints != n_joints):
        raise LavimoInputError(source, f"expected features of shape (T, {dims}), got {array.shape}")
    if not np.issubdtype(array.dtype, np.number):
        raise LavimoInputError(source, f"features must be numeric, got dtype {array.dtype}")
    if array.shape[0] < 1:
        raise LavimoInputError(source, "features have no frames")
    if not np.all(np.isfinite(array)):
        raise LavimoInputError(source, "features contain NaN or Inf values")
    return array.astype(np.float64)


# ----------------------------------------------------------------------------- kinematics


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _forward_direction(joints: np.ndarray, face_joints: tuple[int, int, int, int]) -> np.ndarray:
    """Unit horizontal facing direction (..., 3) from the hip and shoulder across-vectors."""
    r_hip, l_hip, r_shoulder, l_shoulder = face_joints
    across = (joints[..., r_hip, :] - joints[..., l_hip, :]) + (joints[..., r_shoulder, :] - joints[..., l_shoulder, :])
    return _normalize(np.cross(_UP, _normalize(across)))


def _ik_forward(joints: np.ndarray, spec: SkeletonSpec, smooth: bool) -> np.ndarray:
    """Facing direction (T, 3) as the reference IK computes it (hip pair swapped; optional smoothing)."""
    r_hip, l_hip, r_shoulder, l_shoulder = spec.face_joints
    forward = np.cross(
        _UP, _normalize((joints[:, l_hip] - joints[:, r_hip]) + (joints[:, r_shoulder] - joints[:, l_shoulder]))
    )
    if smooth:
        forward = gaussian_filter1d(forward, FORWARD_SMOOTHING_SIGMA, axis=0, mode="nearest")
    return _normalize(forward)


def inverse_kinematics(
    joints: np.ndarray, spec: SkeletonSpec = T2M, smooth_forward: bool = False, identity_first: bool = False
) -> np.ndarray:
    """Local joint quaternions (T, J, 4): root = facing -> +Z, each bone the swing from its raw offset.

    Every chain starts from the root rotation (also chains hanging off a spine joint), matching
    ``forward_kinematics``.
    """
    root = qbetween(_ik_forward(joints, spec, smooth_forward), _FORWARD)
    if identity_first:
        root[0] = (1.0, 0.0, 0.0, 0.0)
    quats = np.zeros((*joints.shape[:-1], 4))
    quats[:, 0] = root
    for chain in spec.chains:
        parent_rot = root
        for parent, child in itertools.pairwise(chain):
            bone = _normalize(joints[:, child] - joints[:, parent])
            swing = qbetween(np.broadcast_to(spec.raw_offsets[child], bone.shape), bone)
            local = qmul(qinv(parent_rot), swing)
            quats[:, child] = local
            parent_rot = qmul(parent_rot, local)
    return quats


def forward_kinematics(
    quats: np.ndarray, root_pos: np.ndarray, offsets: np.ndarray, spec: SkeletonSpec = T2M
) -> np.ndarray:
    """Joint positions (T, J, 3) from local quaternions (T, J, 4), root positions (T, 3), bone vectors (J, 3)."""
    joints = np.zeros((*quats.shape[:-1], 3))
    joints[:, 0] = root_pos
    for chain in spec.chains:
        rot = quats[:, 0]
        for parent, child in itertools.pairwise(chain):
            rot = qmul(rot, quats[:, child])
            joints[:, child] = qrot(rot, np.broadcast_to(offsets[child], (*rot.shape[:-1], 3))) + joints[:, parent]
    return joints


def bone_lengths(frame: np.ndarray, spec: SkeletonSpec = T2M) -> np.ndarray:
    """Bone length (J,) of each joint to its parent in one pose (J, 3); 0 for the root."""
    parents = spec.parents
    lengths = np.linalg.norm(frame - frame[np.maximum(parents, 0)], axis=-1)
    lengths[parents < 0] = 0.0
    return lengths


def uniform_skeleton(joints: np.ndarray, spec: SkeletonSpec = T2M) -> np.ndarray:
    """Retarget (T, J, 3) onto the target bone lengths: IK on the raw offsets, FK with target offsets.

    The root trajectory is scaled by the ratio of the target's to the source's leg length (frame 0).
    """
    if spec.target_bone_lengths is None:
        raise ValueError(f"skeleton {spec.name!r} has no target bone lengths")
    source_len = bone_lengths(joints[0], spec)
    target_len = spec.target_bone_lengths
    leg = list(spec.leg_joints)
    scale = target_len[leg].sum() / max(source_len[leg].sum(), 1e-12)
    quats = inverse_kinematics(joints, spec, smooth_forward=False)
    return forward_kinematics(quats, joints[:, 0] * scale, spec.raw_offsets * target_len[:, None], spec)


# ----------------------------------------------------------------------------- joints -> features


def _canonicalize(joints: np.ndarray, spec: SkeletonSpec, source: str) -> np.ndarray:
    if bone_lengths(joints[0], spec)[list(spec.leg_joints)].sum() < 1e-6:
        raise LavimoInputError(source, "degenerate skeleton: the legs have zero length in frame 0")
    positions = uniform_skeleton(joints, spec)
    positions[..., 1] -= positions[..., 1].min()
    positions -= positions[0, 0] * np.array([1.0, 0.0, 1.0])
    facing = qbetween(_forward_direction(positions[0], spec.face_joints), _FORWARD)
    return qrot(facing, positions)


def canonicalize(joints: np.ndarray, source: str = "<array>", spec: SkeletonSpec = T2M) -> np.ndarray:
    """World joints (T, J, 3) (metres, Y up, 20 fps) -> the HumanML3D canonical pose sequence (T, J, 3).

    Retargets to the uniform target skeleton, puts the lowest joint on the floor, moves the first
    frame's root to the XZ origin and rotates about Y so that frame 0 faces +Z.
    """
    return _canonicalize(_check_joints(joints, spec, source, min_frames=1), spec, source)


def foot_contacts(
    positions: np.ndarray, spec: SkeletonSpec = T2M, threshold: float = DEFAULT_FEET_THRESHOLD
) -> np.ndarray:
    """Contacts (T-1, 4): 1 where a foot joint's squared displacement to the next frame is below ``threshold``."""
    feet = list(spec.feet_left) + list(spec.feet_right)
    speed2 = ((positions[1:, feet] - positions[:-1, feet]) ** 2).sum(-1)
    return (speed2 < threshold).astype(np.float64)


def _features_from_canonical(
    positions: np.ndarray, spec: SkeletonSpec, feet_threshold: float, reference_yaw_sign: bool
) -> np.ndarray:
    """The HumanML3D feature matrix (T-1, D) of canonical positions (T, J, 3)."""
    n_frames = len(positions)
    quats = inverse_kinematics(positions, spec, smooth_forward=True, identity_first=True)
    r_rot = quats[:, 0]  # world -> facing frame
    root_vel = qrot(r_rot[1:], positions[1:, 0] - positions[:-1, 0])
    yaw_step = qmul(r_rot[1:], qinv(r_rot[:-1]))
    if not reference_yaw_sign:
        yaw_step = np.where(yaw_step[:, :1] < 0, -yaw_step, yaw_step)
    root_rot_vel = np.arcsin(np.clip(yaw_step[:, 2], -1.0, 1.0))
    local = positions - positions[:, :1] * np.array([1.0, 0.0, 1.0])
    ric = qrot(r_rot[:, None], local)
    local_vel = qrot(r_rot[:-1, None], positions[1:] - positions[:-1])
    cont6d = quat_to_cont6d(quats[:, 1:])
    return np.concatenate(
        [
            root_rot_vel[:, None],
            root_vel[:, [0, 2]],
            ric[:-1, 0, 1:2],
            ric[:-1, 1:].reshape(n_frames - 1, -1),
            cont6d[:-1].reshape(n_frames - 1, -1),
            local_vel.reshape(n_frames - 1, -1),
            foot_contacts(positions, spec, feet_threshold),
        ],
        axis=-1,
    )


def joints_to_features(
    joints: np.ndarray,
    feet_threshold: float = DEFAULT_FEET_THRESHOLD,
    source: str = "<array>",
    spec: SkeletonSpec = T2M,
    reference_yaw_sign: bool = False,
) -> np.ndarray:
    """World joints (T, J, 3) -> HumanML3D features (T-1, D) float32 (canonicalisation included).

    ``reference_yaw_sign=True`` reproduces the reference's sign error in [0] on frames where the
    facing crosses the back direction (HumanML3D issue #156); by default the yaw step is taken with
    its non-negative-w quaternion, which is identical everywhere else and recovers correctly.
    """
    positions = _canonicalize(_check_joints(joints, spec, source), spec, source)
    return _features_from_canonical(positions, spec, feet_threshold, reference_yaw_sign).astype(np.float32)


# ----------------------------------------------------------------------------- features -> joints


def recover_root(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Root yaw quaternions (T, 4) and root positions (T, 3) integrated from features (T, D).

    The yaw is the cumulative sum of [0] shifted by one frame; the XZ position the cumulative sum of
    [1:3] rotated back by the inverse yaw (also shifted by one); Y is [3].
    """
    angle = np.concatenate([np.zeros(1), np.cumsum(features[:-1, 0])])
    yaw = np.stack([np.cos(angle), np.zeros_like(angle), np.sin(angle), np.zeros_like(angle)], axis=-1)
    step = np.zeros((len(features), 3))
    step[1:, [0, 2]] = features[:-1, 1:3]
    root = np.cumsum(qrot(qinv(yaw), step), axis=0)
    root[:, 1] = features[:, 3]
    return yaw, root


def recover_from_ric(features: np.ndarray, n_joints: int) -> np.ndarray:
    """Joints (T, J, 3) from validated features (T, D): ric positions un-rotated by the yaw plus root XZ."""
    yaw, root = recover_root(features)
    ric = features[:, 4 : 4 + 3 * (n_joints - 1)].reshape(len(features), n_joints - 1, 3)
    joints = qrot(qinv(yaw)[:, None], ric)
    joints[..., [0, 2]] += root[:, None, [0, 2]]
    return np.concatenate([root[:, None], joints], axis=1)


def features_to_joints(features: np.ndarray, source: str = "<array>", n_joints: int = t2m.NUM_JOINTS) -> np.ndarray:
    """HumanML3D features (T, D) -> joints (T, J, 3) float32 (``recover_from_ric``)."""
    return recover_from_ric(_check_features(features, source, n_joints), n_joints).astype(np.float32)


def process_joints(
    joints: np.ndarray,
    source: str = "<array>",
    feet_threshold: float = DEFAULT_FEET_THRESHOLD,
) -> tuple[np.ndarray, np.ndarray]:
    """World joints (T, 22, 3) -> (joints (T-1, 22, 3), features (T-1, 263)), both float32.

    The joints returned are the ones recovered from the features, exactly as HumanML3D's
    ``new_joints`` are made from ``new_joint_vecs``: the pair is consistent frame by frame and
    ``features_to_joints(features) == joints``.
    """
    features = joints_to_features(joints, feet_threshold=feet_threshold, source=source)
    return recover_from_ric(features.astype(np.float64), t2m.NUM_JOINTS).astype(np.float32), features
