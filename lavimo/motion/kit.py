"""KIT-ML in Guo et al.'s release: 21 joints, 251-dim features, 12.5 fps.

The feature layout is HumanML3D's with J = 21 (see ``lavimo.motion.humanml3d``); recovery reuses the
same code. The release has no shared target skeleton in this repository, so only features -> joints
is offered here. Joint positions come back in the unit the features were made in (not checked
here against real KIT-ML data; TMR re-derives KIT-ML from AMASS at 20 fps in metres as 263-dim).
"""

from __future__ import annotations

import numpy as np

from lavimo.motion.humanml3d import SkeletonSpec, feature_dim, features_to_joints

KIT_NUM_JOINTS = 21
KIT_FEATURE_DIM = feature_dim(KIT_NUM_JOINTS)  # 251
KIT_FPS = 12.5

KIT_KINEMATIC_CHAINS: tuple[tuple[int, ...], ...] = (
    (0, 11, 12, 13, 14, 15),
    (0, 16, 17, 18, 19, 20),
    (0, 1, 2, 3, 4),
    (3, 5, 6, 7),
    (3, 8, 9, 10),
)

# rest-pose bone directions, as HumanML3D's paramUtil.kit_raw_offsets
KIT_RAW_OFFSETS = np.array(
    [[0, 0, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [1, 0, 0], [0, -1, 0], [0, -1, 0], [-1, 0, 0],
     [0, -1, 0], [0, -1, 0], [1, 0, 0], [0, -1, 0], [0, -1, 0], [0, 0, 1], [0, 0, 1], [-1, 0, 0], [0, -1, 0],
     [0, -1, 0], [0, 0, 1], [0, 0, 1]],
    dtype=np.float64,
)  # fmt: skip

KIT_FACE_JOINTS: tuple[int, int, int, int] = (11, 16, 5, 8)  # r_hip, l_hip, r_shoulder, l_shoulder
KIT_LEFT_FOOT: tuple[int, int] = (19, 20)
KIT_RIGHT_FOOT: tuple[int, int] = (14, 15)

KIT = SkeletonSpec(
    name="kit",
    chains=KIT_KINEMATIC_CHAINS,
    raw_offsets=KIT_RAW_OFFSETS,
    face_joints=KIT_FACE_JOINTS,
    feet_left=KIT_LEFT_FOOT,
    feet_right=KIT_RIGHT_FOOT,
    leg_joints=(17, 18),
    target_bone_lengths=None,
)


def kit_features_to_joints(features: np.ndarray, source: str = "<array>") -> np.ndarray:
    """KIT-ML features (T, 251) -> joints (T, 21, 3) float32 (``recover_from_ric`` with 21 joints)."""
    return features_to_joints(features, source=source, n_joints=KIT_NUM_JOINTS)
