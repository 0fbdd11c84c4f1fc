"""Source skeleton mapping, resampling and BVH -> canonical clip on real Bandai-Namco and CMU-style files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lavimo.cli import main
from lavimo.io import LavimoInputError
from lavimo.motion.bvh import forward_kinematics, read_bvh
from lavimo.motion.pipeline import bvh_to_clip, bvh_world_joints
from lavimo.motion.resample import nominal_fps, resample, resampled_length
from lavimo.motion.source_skeletons import (
    UNIT_SCALES,
    bvh_to_t2m,
    detect_skeleton,
    facing_agreement,
    to_t2m,
)

BVH = Path(__file__).parent / "data" / "bvh"
RAISE = BVH / "bandai-namco_dataset-2_raise-up-left-hand_normal_001.bvh"
WALK = BVH / "bandai-namco_dataset-1_walk_normal_001_frames0-44.bvh"
DASH = BVH / "bandai-namco_dataset-1_dash_normal_001.bvh"
CMU = BVH / "cmu_style.bvh"
PELVIS, L_HIP, R_HIP, L_ANKLE, R_ANKLE, L_FOOT, R_FOOT, HEAD, L_WRIST, R_WRIST = 0, 1, 2, 7, 8, 10, 11, 15, 20, 21
FEET = [L_ANKLE, R_ANKLE, L_FOOT, R_FOOT]


@pytest.fixture(scope="module")
def clips() -> dict[str, object]:
    return {path.name: bvh_to_clip(path) for path in (RAISE, WALK, CMU)}


# ----------------------------------------------------------------------------- skeletons, units, axes


@pytest.mark.parametrize(("path", "name", "unit"), [(RAISE, "bandai_namco", "cm"), (CMU, "cmu", "cmu")])
def test_detects_skeleton_and_units(path: Path, name: str, unit: str) -> None:
    motion = read_bvh(path)
    assert detect_skeleton(motion).name == name
    explicit = bvh_to_t2m(motion, name, unit_scale=UNIT_SCALES[unit])
    np.testing.assert_allclose(bvh_to_t2m(motion), explicit)
    assert explicit.shape == (motion.n_frames, 22, 3) and explicit.dtype == np.float64
    height = explicit[:, HEAD, 1] - explicit[:, FEET, 1].min(axis=1)
    assert 1.1 < np.median(height) < 1.9  # metres


def test_unknown_skeleton_lists_file_and_joints(tmp_path: Path) -> None:
    path = tmp_path / "robot.bvh"
    path.write_text(RAISE.read_text().replace("Chest", "Torso"))
    with pytest.raises(LavimoInputError) as info:
        bvh_world_joints(path)
    assert info.value.path == str(path)
    assert "unknown skeleton" in info.value.problem and "Torso" in info.value.problem and "Hips" in info.value.problem


def test_mirrored_skeleton_is_rejected(tmp_path: Path) -> None:
    text = RAISE.read_text().replace("_L\n", "_TMP\n").replace("_R\n", "_L\n").replace("_TMP\n", "_R\n")
    path = tmp_path / "mirrored.bvh"
    path.write_text(text)
    with pytest.raises(LavimoInputError, match="mirrored"):
        bvh_world_joints(path)


def test_bandai_namco_world_frame_is_y_up_right_handed() -> None:
    world, fps, _ = bvh_world_joints(WALK)
    assert fps == 30.0
    assert np.all(world[:, HEAD, 1] > world[:, PELVIS, 1] + 0.3)
    assert world[:, FEET, 1].min() > -0.02 and world[:, FEET, 1].min() < 0.1  # on the floor, metres
    assert facing_agreement(world) > 0.9


def test_z_up_source_is_rotated_to_y_up() -> None:
    motion = read_bvh(WALK)
    world = forward_kinematics(motion)
    skeleton = detect_skeleton(motion)
    z_up = world @ np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]).T  # (x, y, z) -> (x, -z, y): Y up -> Z up
    np.testing.assert_allclose(
        to_t2m(z_up, motion.joint_names, skeleton), to_t2m(world, motion.joint_names, skeleton), atol=1e-9
    )


# ----------------------------------------------------------------------------- resampling


@pytest.mark.parametrize(
    ("n", "fps", "expected"), [(45, 30, 30), (31, 30, 21), (72, 60, 24), (121, 120, 21), (7, 20, 7)]
)
def test_resample_frame_counts(n: int, fps: float, expected: int) -> None:
    assert resampled_length(n, fps, 20.0) == expected
    assert resample(np.zeros((n, 22, 3)), fps, 20.0).shape == (expected, 22, 3)


def test_resample_values() -> None:
    ramp = np.arange(121, dtype=np.float64)[:, None, None] * np.ones((1, 22, 3))
    np.testing.assert_array_equal(resample(ramp, 120, 20)[:, 0, 0], np.arange(0, 121, 6))
    np.testing.assert_array_equal(resample(ramp[:61], 60, 20)[:, 0, 0], np.arange(0, 61, 3))
    np.testing.assert_allclose(resample(ramp[:31], 30, 20)[:, 0, 0], np.arange(21) * 1.5)
    np.testing.assert_array_equal(resample(ramp[:10], 20, 20), ramp[:10])


def test_nominal_fps() -> None:
    assert nominal_fps(0.0333333) == 30.0 and nominal_fps(0.008333) == 120.0 and nominal_fps(1 / 24) == 24.0
    assert nominal_fps(0.07) == pytest.approx(1 / 0.07)


# ----------------------------------------------------------------------------- BVH -> canonical clip


def test_clip_shapes(clips: dict) -> None:
    raise_clip = clips[RAISE.name]
    n = resampled_length(55, 30, 20) - 1
    assert raise_clip.joints.shape == (n, 22, 3) and raise_clip.features.shape == (n, 263)
    assert raise_clip.source_fps == 30.0 and raise_clip.skeleton == "bandai_namco"
    assert raise_clip.source == str(RAISE) and raise_clip.source_frames == 55
    cmu = clips[CMU.name]
    assert cmu.source_fps == 60.0 and cmu.skeleton == "cmu" and cmu.joints.shape == (23, 22, 3)


@pytest.mark.parametrize("name", [RAISE.name, WALK.name, CMU.name])
def test_canonical_clip_upright_left_is_plus_x(clips: dict, name: str) -> None:
    joints = clips[name].joints
    assert np.all(np.isfinite(joints)) and np.all(np.isfinite(clips[name].features))
    # first frame faces +Z, so the body's left (l_hip) is at larger x than its right
    assert joints[0, L_HIP, 0] > joints[0, R_HIP, 0] + 0.1
    assert abs(joints[0, L_HIP, 2] - joints[0, R_HIP, 2]) < 0.05
    assert np.all(joints[:, HEAD, 1] > joints[:, PELVIS, 1] + 0.3)
    lowest_foot = joints[:, FEET, 1].min(axis=1)
    assert abs(lowest_foot.min()) < 1e-4  # floor at 0
    assert np.median(lowest_foot) < 0.08
    np.testing.assert_allclose(joints[0, PELVIS, [0, 2]], 0.0, atol=1e-5)


def test_raise_left_hand_raises_the_left_hand(clips: dict) -> None:
    for name in (RAISE.name, CMU.name):
        joints = clips[name].joints
        assert (joints[:, L_WRIST, 1] - joints[:, R_WRIST, 1]).max() > 0.5
        assert joints[:, L_WRIST, 1].max() > joints[:, HEAD, 1].max()
        assert (joints[:, R_WRIST, 1] - joints[:, L_WRIST, 1]).max() < 0.1


def test_walk_goes_forward(clips: dict) -> None:
    for name in (WALK.name, CMU.name):
        root = clips[name].joints[:, PELVIS]
        assert root[-1, 2] > 0.5 and abs(root[-1, 0]) < 0.3 * root[-1, 2]


def test_too_short_clip_is_rejected() -> None:
    with pytest.raises(LavimoInputError, match="too short") as info:
        bvh_to_clip(DASH)
    assert info.value.path == str(DASH)
    assert bvh_to_clip(DASH, min_seconds=0.5).source_frames == 20


def test_cli_from_bvh(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "clip.npz"
    assert main(["motion", "from-bvh", str(RAISE), str(out)]) == 0
    with np.load(out) as data:
        assert data["joints"].shape == (36, 22, 3) and data["features"].shape == (36, 263)
    assert "20 fps" in capsys.readouterr().out
    assert main(["motion", "from-bvh", str(tmp_path / "missing.bvh"), str(out)]) == 2
    assert "missing.bvh" in capsys.readouterr().err
