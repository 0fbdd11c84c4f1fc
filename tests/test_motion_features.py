"""HumanML3D features <-> joints, checked against the released sample clip 012314."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from lavimo import cli
from lavimo.io import LavimoInputError
from lavimo.motion import skeleton
from lavimo.motion.humanml3d import (
    canonicalize,
    feature_dim,
    features_to_joints,
    joints_to_features,
    n_joints_of,
    process_joints,
)
from lavimo.motion.kit import KIT_FEATURE_DIM, KIT_NUM_JOINTS, kit_features_to_joints
from lavimo.motion.mirror import mirror_joints
from lavimo.motion.quaternion import (
    cont6d_to_matrix,
    cont6d_to_quat,
    qbetween,
    qinv,
    qmul,
    qnormalize,
    qrot,
    quat_to_cont6d,
    quat_to_matrix,
    yaw_quat,
)

DATA = Path(__file__).parent / "data" / "humanml3d"
JOINTS_FILE = DATA / "new_joints" / "012314.npy"
FEATURES_FILE = DATA / "new_joint_vecs" / "012314.npy"

SLICES = {
    "root_rot_vel": slice(0, 1),
    "root_lin_vel": slice(1, 3),
    "root_y": slice(3, 4),
    "ric": slice(4, 67),
    "rot": slice(67, 193),
    "vel": slice(193, 259),
    "contacts": slice(259, 263),
}
# the feature IK smooths the facing over +-80 frames, so the last frames of a clip that lost its
# final frame differ slightly; frames well before the end must agree to float32 precision
SETTLED = 100


@pytest.fixture(scope="module")
def ref_joints() -> np.ndarray:
    return np.load(JOINTS_FILE)


@pytest.fixture(scope="module")
def ref_features() -> np.ndarray:
    return np.load(FEATURES_FILE)


def slice_errors(a: np.ndarray, b: np.ndarray, frames: slice = slice(None)) -> dict[str, tuple[float, float]]:
    """(mean, max) absolute error per layout slice."""
    err = np.abs(a[frames].astype(np.float64) - b[frames].astype(np.float64))
    return {name: (float(err[:, s].mean()), float(err[:, s].max())) for name, s in SLICES.items()}


# ----------------------------------------------------------------------------- reference fixture


def test_recover_reproduces_released_joints(ref_joints: np.ndarray, ref_features: np.ndarray) -> None:
    joints = features_to_joints(ref_features)
    assert joints.shape == (170, 22, 3) and joints.dtype == np.float32
    assert np.abs(joints - ref_joints).max() <= 1e-4


def test_features_match_released_features(ref_joints: np.ndarray, ref_features: np.ndarray) -> None:
    features = joints_to_features(ref_joints)
    assert features.shape == (169, 263) and features.dtype == np.float32
    errors = slice_errors(features, ref_features[:169])
    for name, (mean, _) in errors.items():
        assert mean <= 1e-3, f"{name}: mean abs error {mean:.2e}"
    np.testing.assert_array_equal(features[:, 259:], ref_features[:169, 259:])
    settled = slice_errors(features, ref_features[:169], slice(0, SETTLED))
    for name, (_, worst) in settled.items():
        assert worst <= 5e-4, f"{name}: max abs error {worst:.2e} in the first {SETTLED} frames"


def test_layout_sizes() -> None:
    assert feature_dim(22) == 263 == skeleton.FEATURE_DIM
    assert feature_dim(21) == 251 == KIT_FEATURE_DIM
    assert n_joints_of(263) == 22 and n_joints_of(251) == 21


# ----------------------------------------------------------------------------- round trips


def assert_stable(joints: np.ndarray) -> None:
    """features -> recovered joints -> features reproduces the features."""
    recovered, features = process_joints(joints)
    assert recovered.shape == (len(joints) - 1, 22, 3)
    assert features.shape == (len(joints) - 1, 263)
    np.testing.assert_allclose(features_to_joints(features), recovered, atol=1e-6)
    again = joints_to_features(recovered)
    for name, (mean, _) in slice_errors(again, features[:-1]).items():
        assert mean <= 1e-3, f"{name}: mean abs error {mean:.2e}"
    for name, (_, worst) in slice_errors(again, features[:-1], slice(0, SETTLED)).items():
        assert worst <= 1e-4, f"{name}: max abs error {worst:.2e}"
    np.testing.assert_array_equal(again[:, 259:], features[:-1, 259:])


def test_round_trip_is_stable(ref_joints: np.ndarray) -> None:
    assert_stable(ref_joints)


def test_round_trip_is_stable_on_mirrored_clip(ref_joints: np.ndarray) -> None:
    mirrored = mirror_joints(ref_joints)
    np.testing.assert_array_equal(mirror_joints(mirrored), ref_joints)
    assert_stable(mirrored)


def test_process_joints_returns_recovered_joints(ref_joints: np.ndarray) -> None:
    joints, features = process_joints(ref_joints)
    # the sample's joints are already canonical, so processing keeps them (minus the last frame)
    assert np.abs(joints - ref_joints[:-1]).max() <= 1e-4
    assert joints.dtype == np.float32 and features.dtype == np.float32


def test_features_ignore_rigid_motion_and_scale(ref_joints: np.ndarray) -> None:
    """Yaw, translation and body size are normalised away by canonicalisation."""
    base = joints_to_features(ref_joints)
    moved = qrot(yaw_quat(np.array(2.3)), ref_joints.astype(np.float64)) * 1.15 + np.array([3.0, 0.4, -7.0])
    np.testing.assert_allclose(joints_to_features(moved), base, atol=2e-5)


def test_canonical_pose_conventions(ref_joints: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    world = qrot(yaw_quat(np.array(-1.1)), ref_joints.astype(np.float64)) + np.array([1.0, 0.3, 2.0])
    world = world + rng.normal(scale=0.003, size=world.shape)  # off-target bone lengths
    canon = canonicalize(world)
    assert canon.shape == world.shape
    assert canon[..., 1].min() == pytest.approx(0.0, abs=1e-9)
    assert canon[0, 0, [0, 2]] == pytest.approx([0.0, 0.0], abs=1e-9)
    parents = np.array(skeleton.T2M_PARENTS)
    lengths = np.linalg.norm(canon[:, 1:] - canon[:, parents[1:]], axis=-1)
    np.testing.assert_allclose(lengths, np.broadcast_to(skeleton.T2M_TARGET_BONE_LENGTHS[1:], lengths.shape), atol=1e-9)
    r_hip, l_hip, r_sh, l_sh = skeleton.FACE_JOINTS
    across = canon[0, r_hip] - canon[0, l_hip] + canon[0, r_sh] - canon[0, l_sh]
    facing = np.cross([0.0, 1.0, 0.0], across)
    assert facing / np.linalg.norm(facing) == pytest.approx([0.0, 0.0, 1.0], abs=1e-9)


def test_kit_recovery_reuses_generic_code(ref_features: np.ndarray) -> None:
    # a 251-dim vector laid out as HumanML3D's with the 22nd joint dropped
    n = 21
    kit = np.concatenate(
        [
            ref_features[:, :4],
            ref_features[:, 4 : 4 + 3 * (n - 1)],
            ref_features[:, 67 : 67 + 6 * (n - 1)],
            ref_features[:, 193 : 193 + 3 * n],
            ref_features[:, 259:],
        ],
        axis=1,
    )
    assert kit.shape[1] == KIT_FEATURE_DIM
    joints = kit_features_to_joints(kit)
    assert joints.shape == (len(kit), KIT_NUM_JOINTS, 3)
    np.testing.assert_allclose(joints, features_to_joints(ref_features)[:, :n], atol=1e-6)
    with pytest.raises(LavimoInputError):
        kit_features_to_joints(ref_features, source="kit.npy")


# ----------------------------------------------------------------------------- quaternions


def test_quaternion_helpers() -> None:
    rng = np.random.default_rng(1)
    q = qnormalize(rng.normal(size=(50, 4)))
    r = qnormalize(rng.normal(size=(50, 4)))
    v = rng.normal(size=(50, 3))
    np.testing.assert_allclose(qrot(qmul(q, r), v), qrot(q, qrot(r, v)), atol=1e-12)
    np.testing.assert_allclose(qrot(qinv(q), qrot(q, v)), v, atol=1e-12)
    np.testing.assert_allclose(quat_to_matrix(q) @ v[..., None], qrot(q, v)[..., None], atol=1e-12)
    np.testing.assert_allclose(cont6d_to_matrix(quat_to_cont6d(q)), quat_to_matrix(q), atol=1e-12)
    back = cont6d_to_quat(quat_to_cont6d(q))
    np.testing.assert_allclose(np.abs((back * q).sum(-1)), 1.0, atol=1e-12)
    a, b = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    turned = qrot(qbetween(a, b), a)
    np.testing.assert_allclose(turned / np.linalg.norm(turned, axis=-1, keepdims=True),
                               b / np.linalg.norm(b, axis=-1, keepdims=True), atol=1e-12)  # fmt: skip
    flipped = qbetween(np.array([0.0, -1.0, 0.0]), np.array([0.0, 1.0, 0.0]))
    assert qrot(flipped, np.array([0.0, -1.0, 0.0])) == pytest.approx([0.0, 1.0, 0.0], abs=1e-12)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("joints", "problem"),
    [
        (np.full((10, 22, 3), np.nan), "NaN"),
        (np.zeros((10, 21, 3)), "shape"),
        (np.zeros((10, 66)), "shape"),
        (np.ones((1, 22, 3)), "frames"),
    ],
)
def test_bad_joints_are_rejected(joints: np.ndarray, problem: str) -> None:
    with pytest.raises(LavimoInputError, match=problem) as info:
        joints_to_features(joints, source="clip_42.npy")
    assert "clip_42.npy" in str(info.value)


def test_inf_and_degenerate_joints_are_rejected(ref_joints: np.ndarray) -> None:
    bad = ref_joints.copy()
    bad[3, 4, 1] = np.inf
    with pytest.raises(LavimoInputError, match=r"clip\.npy.*NaN or Inf"):
        process_joints(bad, source="clip.npy")
    with pytest.raises(LavimoInputError, match="degenerate"):
        joints_to_features(np.zeros((5, 22, 3)), source="flat.npy")


@pytest.mark.parametrize(
    ("features", "problem"),
    [
        (np.full((10, 263), np.nan), "NaN"),
        (np.zeros((10, 262)), "shape"),
        (np.zeros((10, 22, 3)), "shape"),
        (np.zeros((0, 263)), "no frames"),
    ],
)
def test_bad_features_are_rejected(features: np.ndarray, problem: str) -> None:
    with pytest.raises(LavimoInputError, match=problem) as info:
        features_to_joints(features, source="vecs_7.npy")
    assert "vecs_7.npy" in str(info.value)


# ----------------------------------------------------------------------------- CLI


@pytest.fixture
def motion_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep only the command groups whose modules exist (others are built in parallel)."""
    groups = {
        name: entry
        for name, entry in cli.COMMAND_GROUPS.items()
        if importlib.util.find_spec(f"lavimo.commands.{entry[0]}") is not None
    }
    monkeypatch.setattr(cli, "COMMAND_GROUPS", groups)


@pytest.mark.usefixtures("motion_cli")
def test_cli_recover_and_features(tmp_path: Path, ref_joints: np.ndarray, ref_features: np.ndarray) -> None:
    joints_out = tmp_path / "joints.npy"
    assert cli.main(["motion", "recover", str(FEATURES_FILE), str(joints_out)]) == 0
    assert np.abs(np.load(joints_out) - ref_joints).max() <= 1e-4

    features_out = tmp_path / "features.npy"
    assert cli.main(["motion", "features", str(JOINTS_FILE), str(features_out)]) == 0
    features = np.load(features_out)
    assert features.shape == (169, 263)
    np.testing.assert_array_equal(features, joints_to_features(ref_joints))


@pytest.mark.usefixtures("motion_cli")
def test_cli_reports_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.npy"
    np.save(bad, np.full((5, 22, 3), np.nan))
    assert cli.main(["motion", "features", str(bad), str(tmp_path / "out.npy")]) == 2
    assert str(bad) in capsys.readouterr().err
    assert not (tmp_path / "out.npy").exists()
