"""The 22-joint SMPL/HumanML3D ("t2m") skeleton: joint order, kinematic tree and target bone lengths."""

from __future__ import annotations

import numpy as np

T2M_JOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "l_hip",
    "r_hip",
    "spine1",
    "l_knee",
    "r_knee",
    "spine2",
    "l_ankle",
    "r_ankle",
    "spine3",
    "l_foot",
    "r_foot",
    "neck",
    "l_collar",
    "r_collar",
    "head",
    "l_shoulder",
    "r_shoulder",
    "l_elbow",
    "r_elbow",
    "l_wrist",
    "r_wrist",
)
NUM_JOINTS = 22
FEATURE_DIM = 263

T2M_KINEMATIC_CHAINS: tuple[tuple[int, ...], ...] = (
    (0, 2, 5, 8, 11),
    (0, 1, 4, 7, 10),
    (0, 3, 6, 9, 12, 15),
    (9, 14, 17, 19, 21),
    (9, 13, 16, 18, 20),
)

# parent of each joint, derived from the chains (root has parent -1)
T2M_PARENTS: tuple[int, ...] = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)

FACE_JOINTS: tuple[int, int, int, int] = (2, 1, 17, 16)  # r_hip, l_hip, r_shoulder, l_shoulder
LEFT_FOOT: tuple[int, int] = (7, 10)
RIGHT_FOOT: tuple[int, int] = (8, 11)

# rest-pose bone directions ("raw offsets"); Y up, +X is the body's left
T2M_RAW_OFFSETS = np.array(
    [
        [0, 0, 0],
        [1, 0, 0],
        [-1, 0, 0],
        [0, 1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, 1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, 1, 0],
        [0, 0, 1],
        [0, 0, 1],
        [0, 1, 0],
        [1, 0, 0],
        [-1, 0, 0],
        [0, 0, 1],
        [0, -1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, -1, 0],
    ],
    dtype=np.float64,
)

# Bone lengths (m) of the uniform HumanML3D target skeleton, measured on frame 0 of the
# HumanML3D sample clip new_joints/012314.npy (every HumanML3D clip shares these lengths).
T2M_TARGET_BONE_LENGTHS = np.array(
    [0.0, 0.103074, 0.109883, 0.131568, 0.393623, 0.390188, 0.14319, 0.432433, 0.425643, 0.057365, 0.143382,
     0.149419, 0.21936, 0.137487, 0.143383, 0.103039, 0.131614, 0.122984, 0.25684, 0.263092, 0.266012, 0.269876],
    dtype=np.float64,
)  # fmt: skip

# left/right joint pairs, for mirroring
T2M_LEFT_RIGHT_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 2),
    (4, 5),
    (7, 8),
    (10, 11),
    (13, 14),
    (16, 17),
    (18, 19),
    (20, 21),
)


def mirror_permutation() -> np.ndarray:
    """Index array that swaps every left joint with its right counterpart."""
    perm = np.arange(NUM_JOINTS)
    for left, right in T2M_LEFT_RIGHT_PAIRS:
        perm[left], perm[right] = right, left
    return perm
