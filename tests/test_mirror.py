"""Left/right mirroring of joints, captions and clip ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lavimo.io import LavimoInputError
from lavimo.layout import mirror_clip_id
from lavimo.motion import skeleton
from lavimo.motion.mirror import mirror_joints, mirror_text

JOINTS_FILE = Path(__file__).parent / "data" / "humanml3d" / "new_joints" / "012314.npy"


def test_mirror_joints_swaps_sides_and_negates_x() -> None:
    joints = np.load(JOINTS_FILE)
    mirrored = mirror_joints(joints)
    assert mirrored.shape == joints.shape and mirrored.dtype == joints.dtype
    for left, right in skeleton.T2M_LEFT_RIGHT_PAIRS:
        np.testing.assert_array_equal(mirrored[:, left, 0], -joints[:, right, 0])
        np.testing.assert_array_equal(mirrored[:, right, 1:], joints[:, left, 1:])
    for centre in (0, 3, 6, 9, 12, 15):
        np.testing.assert_array_equal(mirrored[:, centre], joints[:, centre] * [-1, 1, 1])
    np.testing.assert_array_equal(mirror_joints(mirrored), joints)
    assert not np.shares_memory(mirrored, joints)


def test_mirror_joints_keeps_bone_lengths_symmetric() -> None:
    joints = np.load(JOINTS_FILE)
    mirrored = mirror_joints(joints)
    parents = np.array(skeleton.T2M_PARENTS)
    perm = skeleton.mirror_permutation()
    length = np.linalg.norm(joints[:, 1:] - joints[:, parents[1:]], axis=-1)
    mirrored_length = np.linalg.norm(mirrored[:, 1:] - mirrored[:, parents[1:]], axis=-1)
    np.testing.assert_allclose(mirrored_length, length[:, perm[1:] - 1], atol=1e-6)


def test_mirror_joints_rejects_wrong_shape() -> None:
    with pytest.raises(LavimoInputError, match="shape"):
        mirror_joints(np.zeros((4, 21, 3)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a person turns left", "a person turns right"),
        ("Right arm waves, then the left leg kicks.", "Left arm waves, then the right leg kicks."),
        ("STEP LEFT AND RIGHT", "STEP RIGHT AND LEFT"),
        ("walks leftwards, looks rightward", "walks rightwards, looks leftward"),
        ("uses the left-hand side, right-handed", "uses the right-hand side, left-handed"),
        ("spins clockwise then counterclockwise", "spins clockwise then counterclockwise"),
        ("stands upright in bright light", "stands upright in bright light"),
        ("", ""),
    ],
)
def test_mirror_text(text: str, expected: str) -> None:
    assert mirror_text(text) == expected
    assert mirror_text(mirror_text(text)) == text


def test_mirror_clip_id() -> None:
    assert mirror_clip_id("012314") == "M012314"
