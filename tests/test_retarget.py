"""Retargeting and skinning maths (numpy only; no body model needed)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from lavimo.avatars.retarget import (
    FOOT_JOINTS,
    HUMANML3D_PELVIS_DIRS,
    HUMANML3D_SPINE3_DIRS,
    adapt_rest_joints,
    bone_errors_deg,
    fit_pivot,
    flat_foot_pitch,
    foot_contacts,
    kabsch,
    misfit_deg,
    place_foot,
    retarget,
    solve_rotations,
    swing,
    triad_directions,
)
from lavimo.avatars.skinning import TRUNK_JOINTS, skin, skin_weights_for, split_trunk

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "data" / "humanml3d" / "new_joints" / "012314.npy"


@dataclass
class Skeleton:
    rest_joints: np.ndarray


@dataclass
class Mesh:
    rest_joints: np.ndarray
    vertices: np.ndarray
    skin_weights: np.ndarray


@pytest.fixture(scope="module")
def motion() -> np.ndarray:
    return np.load(FIXTURE).astype(np.float64)


def random_rotations(n: int, seed: int = 0) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, 3, 3)))
    q[np.linalg.det(q) < 0, :, 0] *= -1.0
    return q


def test_random_rotations_are_rotations() -> None:
    r = random_rotations(5)
    assert np.allclose(np.linalg.det(r), 1.0) and np.allclose(r @ r.transpose(0, 2, 1), np.eye(3))


def test_swing_turns_a_onto_b() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(100, 3))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b = rng.normal(size=(100, 3))
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    b[0], b[1] = a[0], -a[1]  # identical and antiparallel
    r = swing(a, b)
    assert np.allclose(np.einsum("nij,nj->ni", r, a), b, atol=1e-9)
    assert np.allclose(np.linalg.det(r), 1.0) and np.allclose(r[0], np.eye(3))
    # minimal: the axis is normal to both, so a x b is left unchanged
    axis = np.cross(a[2:], b[2:])
    assert np.allclose(np.einsum("nij,nj->ni", r[2:], axis), axis, atol=1e-9)


def test_kabsch_recovers_rotation() -> None:
    r = random_rotations(4, seed=2)
    src = np.random.default_rng(3).normal(size=(4, 3, 3))
    dst = np.einsum("nij,nkj->nki", r, src)
    assert np.allclose(kabsch(src, dst), r, atol=1e-9)


def test_fit_pivot_recovers_layout_with_chirality() -> None:
    children = np.array([[0.1, 0.9, 0.02], [-0.1, 0.9, 0.02], [0.0, 1.15, -0.01]])
    pivot = np.array([0.0, 1.0, 0.03])
    directions = (children - pivot) / np.linalg.norm(children - pivot, axis=1, keepdims=True)
    directions = directions @ random_rotations(1, seed=4)[0].T  # any frame
    mirrored = pivot + np.array([0.0, 0.0, -0.1])  # same angles on the other side would be wrong
    found = fit_pivot(children, directions, init=pivot + np.array([0.0, 0.05, 0.02]))
    assert np.linalg.norm(found - pivot) < 1e-4 and misfit_deg(children, found, directions) < 1e-2
    assert misfit_deg(children, mirrored, directions) > 1.0


def test_humanml3d_layout_constants_match_fixture(motion: np.ndarray) -> None:
    for joint, constant in ((0, HUMANML3D_PELVIS_DIRS), (9, HUMANML3D_SPINE3_DIRS)):
        measured = triad_directions(motion[0], joint)
        constant = constant / np.linalg.norm(constant, axis=1, keepdims=True)
        angles = np.degrees(np.arccos(np.clip((measured * constant).sum(-1), -1, 1)))
        assert angles.max() < 4.0, (joint, angles)


def _vertical_offset(posed: np.ndarray, expected: np.ndarray) -> float:
    """The single floor shift between two joint sequences that must otherwise agree."""
    difference = posed - expected
    assert np.abs(difference[..., [0, 2]]).max() < 1e-5
    assert np.ptp(difference[..., 1]) < 1e-5
    return float(difference[0, 0, 1])


def test_retarget_onto_the_source_skeleton_reproduces_it(motion: np.ndarray) -> None:
    posed = retarget(Skeleton(motion[0].copy()), motion, adapt=False)
    assert posed.leg_ratio == pytest.approx(1.0, abs=1e-6)
    # frame 0 is the "rest pose" here, so its feet heights decide the floor shift (a few mm)
    assert abs(_vertical_offset(posed.joints, motion)) < 0.01
    assert bone_errors_deg(motion, posed.joints).max() < 1e-2
    adapted = retarget(Skeleton(motion[0].copy()), motion)  # moves the toe joints only slightly
    assert bone_errors_deg(motion, adapted.joints).max() < 1e-2


def test_retarget_is_yaw_equivariant(motion: np.ndarray) -> None:
    c, s = np.cos(1.0), np.sin(1.0)
    yaw = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    avatar = Skeleton(motion[0] * 1.1)
    a = retarget(avatar, motion)
    b = retarget(avatar, motion @ yaw.T)
    assert np.allclose(b.joints, a.joints @ yaw.T, atol=1e-6)
    assert np.allclose(b.global_rotations, yaw @ a.global_rotations, atol=1e-6)


def test_scaled_avatar_scales_root_and_keeps_feet_down(motion: np.ndarray) -> None:
    small = Skeleton(motion[0] * 0.8)
    posed = retarget(small, motion, adapt=False)
    assert posed.leg_ratio == pytest.approx(0.8, rel=1e-6)
    assert abs(_vertical_offset(posed.joints, motion * 0.8)) < 0.01


def test_hinge_twist_follows_the_knee_plane(motion: np.ndarray) -> None:
    rest = motion[0].copy()
    rot = solve_rotations(rest, motion)
    thigh, shin = motion[:, 4] - motion[:, 1], motion[:, 7] - motion[:, 4]
    normal = np.cross(thigh, shin)
    bend = np.degrees(np.arctan2(np.linalg.norm(normal, axis=1), (thigh * shin).sum(1)))
    bent = bend > 35
    assert bent.sum() > 5
    rest_axis = np.cross(rest[4] - rest[1], [0.0, 0.0, -1.0])
    rest_axis /= np.linalg.norm(rest_axis)
    posed_axis = np.einsum("nij,j->ni", rot[bent, 1], rest_axis)
    expected = normal[bent] / np.linalg.norm(normal[bent], axis=1, keepdims=True)
    assert np.allclose(posed_axis, expected, atol=1e-6)


def test_end_joints_copy_their_parent(motion: np.ndarray) -> None:
    rot = solve_rotations(motion[0], motion)
    for leaf, parent in ((10, 7), (11, 8), (15, 12), (20, 18), (21, 19)):
        assert np.allclose(rot[:, leaf], rot[:, parent])


def test_adapting_to_own_layout_changes_nothing(motion: np.ndarray) -> None:
    rest = motion[0].copy()
    adapted = adapt_rest_joints(rest, motion)
    moved = np.linalg.norm(adapted - rest, axis=1)
    assert moved[[1, 2, 4, 5, 7, 8, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21]].max() == 0
    assert moved.max() < 0.02


def test_foot_contacts_follow_humanml3d(motion: np.ndarray) -> None:
    humanml3d = pytest.importorskip("lavimo.motion.humanml3d")
    ours = foot_contacts(motion)
    assert ours.shape == (len(motion), 4) and FOOT_JOINTS == (7, 10, 8, 11)
    assert np.array_equal(ours[:-1], humanml3d.foot_contacts(motion).astype(bool))


def test_flat_foot_pitch_moves_the_toe_joint(motion: np.ndarray) -> None:
    pitch = flat_foot_pitch(motion, 7, 10)
    assert pitch is not None and -30 < pitch < -5
    rest = motion[0].copy()
    rest[:, 1] -= rest[:, 1].min()
    toe = place_foot(rest, 7, 10, -40.0)
    bone = toe - rest[7]
    assert np.degrees(np.arctan2(bone[1], np.linalg.norm(bone[[0, 2]]))) == pytest.approx(-40.0, abs=0.5)
    assert np.allclose(place_foot(rest, 7, 10, 0.0), rest[10])


def test_skinning_is_rigid_per_segment(motion: np.ndarray) -> None:
    rest = motion[0].copy()
    rng = np.random.default_rng(5)
    owners = rng.integers(0, 22, size=300)
    vertices = rest[owners] + rng.normal(scale=0.05, size=(300, 3))

    mesh = Mesh(rest, vertices.astype(np.float32), np.eye(22, dtype=np.float32)[owners])
    posed = retarget(mesh, motion, adapt=False)
    out = skin(mesh, posed, frames=np.array([0, 50, 120]))
    for k, f in enumerate((0, 50, 120)):
        rot, pivot = posed.global_rotations[f, owners], posed.joints[f, owners]
        expected = np.einsum("vij,vj->vi", rot, vertices - posed.rest_joints[owners]) + pivot
        assert np.abs(out[k] - expected).max() < 1e-4


def test_trunk_weights_follow_moved_spine_joints(motion: np.ndarray) -> None:
    rest = motion[0].copy()
    y = np.linspace(rest[0, 1] - 0.1, rest[12, 1], 200)
    vertices = np.stack([np.zeros_like(y), y, np.zeros_like(y)], axis=1)
    weights = np.zeros((200, 22), dtype=np.float32)
    weights[:, list(TRUNK_JOINTS)] = split_trunk(vertices, np.ones(200), rest)
    mesh = Mesh(rest, vertices, weights)
    posed = retarget(mesh, motion, adapt=False)
    assert np.array_equal(skin_weights_for(mesh, posed), weights)
    moved = rest.copy()
    moved[[3, 6, 9], 1] -= 0.05
    posed.rest_joints = moved
    resplit = skin_weights_for(mesh, posed)
    assert np.allclose(resplit.sum(1), 1.0, atol=1e-6)
    for joint in (3, 6, 9):  # the transitions follow the joints: half and half at each new joint height
        at = np.argmin(np.abs(y - moved[joint, 1]))
        below = TRUNK_JOINTS[TRUNK_JOINTS.index(joint) - 1]
        assert resplit[at, joint] == pytest.approx(resplit[at, below], abs=0.1)


def test_retarget_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="expected joints"):
        retarget(Skeleton(np.zeros((22, 3))), np.zeros((10, 21, 3)))


def test_runtime_modules_import_without_torch() -> None:
    code = (
        "import sys; import lavimo.avatars.retarget, lavimo.avatars.skinning, lavimo.avatars.build; "
        "bad = [m for m in ('torch', 'bpy', 'anny', 'smplx', 'scipy') if m in sys.modules]; "
        "sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0
