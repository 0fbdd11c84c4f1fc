"""BVH reading and forward kinematics on real Bandai-Namco clips, a CMU-style file and broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from lavimo.io import LavimoInputError
from lavimo.motion.bvh import euler_to_matrix, forward_kinematics, read_bvh

BVH = Path(__file__).parent / "data" / "bvh"
RAISE = BVH / "bandai-namco_dataset-2_raise-up-left-hand_normal_001.bvh"
WALK = BVH / "bandai-namco_dataset-1_walk_normal_001_frames0-44.bvh"
CMU = BVH / "cmu_style.bvh"

TINY = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Spine
  {
    OFFSET 0 10 0
    CHANNELS 3 Xrotation Yrotation Zrotation
    End Site
    {
      OFFSET 0 5 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.05
1 2 3 0 0 0 0 0 0
1 2 3 90 0 0 0 0 90
"""


def write(tmp_path: Path, text: str, name: str = "clip.bvh") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def bone_lengths(world: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """Lengths of every bone below the root's children (Bandai-Namco's Hips is translated under joint_Root)."""
    child = np.flatnonzero(parents > 0)
    return np.linalg.norm(world[:, child] - world[:, parents[child]], axis=-1)


@pytest.mark.parametrize(("path", "frames", "tabs"), [(RAISE, 55, True), (WALK, 45, False)])
def test_reads_real_bandai_namco_clips(path: Path, frames: int, tabs: bool) -> None:
    assert ("\t\tOFFSET" in path.read_text()) == tabs  # dataset-2 uses tabs, dataset-1 spaces
    motion = read_bvh(path)
    assert motion.n_frames == frames
    assert motion.fps == pytest.approx(30.0, rel=1e-4)
    assert len(motion.joint_names) == 22 and motion.joint_names[:3] == ("joint_Root", "Hips", "Spine")
    assert all(len(c) == 6 for c in motion.channels)
    assert set(motion.rotation_orders) == {"ZXY"}
    assert motion.positions.shape == motion.rotations.shape == (frames, 22, 3)
    assert len(motion.end_sites) == 5  # head, hands, toes
    # the hips' position channels replace the (odd) offset; other joints' channels equal their offsets
    assert not np.allclose(motion.positions[:, 1], motion.offsets[1])
    np.testing.assert_allclose(motion.positions[:, 2:], np.broadcast_to(motion.offsets[2:], (frames, 20, 3)), atol=1e-4)


@pytest.mark.parametrize("path", [RAISE, WALK, CMU])
def test_fk_bone_lengths_constant_over_time(path: Path) -> None:
    motion = read_bvh(path)
    world = forward_kinematics(motion)
    assert world.shape == (motion.n_frames, len(motion.joint_names), 3)
    lengths = bone_lengths(world, motion.parents)
    np.testing.assert_allclose(lengths, np.broadcast_to(lengths[0], lengths.shape), atol=1e-6)
    assert lengths.max() > 1.0  # file units (cm or CMU units), not metres


def test_cmu_style_three_channel_joints_and_end_sites() -> None:
    motion = read_bvh(CMU)
    assert len(motion.joint_names) == 31 and motion.fps == pytest.approx(60.0, rel=1e-4)
    assert len(motion.channels[0]) == 6 and all(len(c) == 3 for c in motion.channels[1:])
    assert set(motion.rotation_orders) == {"ZYX"}
    # joints without position channels are translated by their offsets
    np.testing.assert_array_equal(motion.positions[:, 2], np.broadcast_to(motion.offsets[2], (72, 3)))
    with_sites = forward_kinematics(motion, end_sites=True)
    assert with_sites.shape == (72, 31 + len(motion.end_sites), 3)
    np.testing.assert_allclose(with_sites[:, :31], forward_kinematics(motion))


def test_tiny_file_fk_by_hand(tmp_path: Path) -> None:
    motion = read_bvh(write(tmp_path, TINY))
    assert motion.frame_time == 0.05 and motion.rotation_orders == ("ZXY", "XYZ")
    world = forward_kinematics(motion, end_sites=True)
    np.testing.assert_allclose(world[0], [[1, 2, 3], [1, 12, 3], [1, 17, 3]], atol=1e-12)
    # frame 2: root Zrotation 90 turns +Y into -X; Spine's Zrotation 90 turns its End Site's +Y into -X,
    # then the root turns that -X into -Y
    np.testing.assert_allclose(world[1], [[1, 2, 3], [-9, 2, 3], [-9, -3, 3]], atol=1e-12)


@pytest.mark.parametrize("order", ["XYZ", "ZXY", "ZYX", "YZX", "XZY", "YXZ"])
def test_euler_orders_match_scipy_intrinsic(order: str) -> None:
    angles = np.random.default_rng(0).uniform(-180, 180, size=(50, 3))
    expected = Rotation.from_euler(order, angles, degrees=True).as_matrix()
    np.testing.assert_allclose(euler_to_matrix(angles, order), expected, atol=1e-12)


BAD_CASES = {
    "missing": None,
    "not_bvh": "this is not a motion file\n1 2 3\n",
    "fewer_rows": TINY.replace("Frames: 2", "Frames: 3"),
    "more_rows": TINY.replace("Frames: 2", "Frames: 1"),
    "cut_mid_row": TINY[: TINY.rindex("0 0 90")],
    "ragged_row": TINY.replace("1 2 3 0 0 0 0 0 0", "1 2 3 0 0 0 0 0"),
    "wrong_channel_count": TINY.replace(
        "CHANNELS 3 Xrotation Yrotation Zrotation", "CHANNELS 4 Xrotation Yrotation Zrotation"
    ),
    "rows_vs_channels": TINY.replace("CHANNELS 3 Xrotation Yrotation Zrotation", "CHANNELS 2 Xrotation Yrotation"),
    "nan": TINY.replace("90 0 0 0 0 90", "90 0 nan 0 0 90"),
    "inf": TINY.replace("90 0 0 0 0 90", "90 0 0 inf 0 90"),
    "non_numeric": TINY.replace("90 0 0 0 0 90", "90 0 abc 0 0 90"),
    "no_frames_line": TINY.replace("Frames: 2\n", ""),
    "unbalanced": TINY.replace("  }\n}\nMOTION", "  }\nMOTION"),
    "binary": "\x00\xff",
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_inputs_raise_naming_the_file(tmp_path: Path, case: str) -> None:
    path = tmp_path / f"{case}.bvh"
    text = BAD_CASES[case]
    if case == "binary":
        path.write_bytes(b"\x00\xff\xfe HIERARCHY")
    elif text is not None:
        path.write_text(text)
    with pytest.raises(LavimoInputError) as info:
        read_bvh(path)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("missing", "does not exist"),
        ("not_bvh", "not a BVH"),
        ("fewer_rows", "truncated"),
        ("cut_mid_row", "truncated"),
        ("ragged_row", "ragged"),
        ("wrong_channel_count", "CHANNELS 4"),
        ("rows_vs_channels", "channels"),
        ("nan", "NaN"),
        ("inf", "Inf"),
    ],
)
def test_bad_input_messages_say_what_is_wrong(tmp_path: Path, case: str, words: str) -> None:
    path = tmp_path / f"{case}.bvh"
    if BAD_CASES[case] is not None:
        path.write_text(BAD_CASES[case])
    with pytest.raises(LavimoInputError, match=words):
        read_bvh(path)


def test_crlf_line_endings(tmp_path: Path) -> None:
    motion = read_bvh(write(tmp_path, TINY.replace("\n", "\r\n")))
    assert motion.n_frames == 2 and motion.joint_names == ("Hips", "Spine")


LONG = TINY.replace("Frames: 2\nFrame Time: 0.05", "Frames: 4002\nFrame Time: 0.9") + "1 2 3 0 0 0 0 0 0\n" * 4000


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            TINY.replace("0 0 90\n", "0 0 1e300\n"),
            "implausible motion: a rotation of 1e+300 degrees (joint 'Spine', frame 2)",
        ),
        (
            TINY.replace("1 2 3 90", "1 2 3 -2e5"),
            "implausible motion: a rotation of 2e+05 degrees (joint 'Hips', frame 2)",
        ),
        (TINY.replace("Frame Time: 0.05", "Frame Time: 1000000"), "implausible Frame Time: 1e+06 s per frame"),
        (TINY.replace("Frame Time: 0.05", "Frame Time: 2"), "implausible Frame Time: 2 s per frame"),
        (TINY.replace("Frame Time: 0.05", "Frame Time: 0"), "are not positive"),
        (TINY.replace("Frame Time: 0.05", "Frame Time: nan"), "are not positive"),
        (LONG, "implausible length: 4002 frames of 0.9 s = 1 h"),
    ],
)
def test_implausible_angles_and_timing_are_refused(tmp_path: Path, text: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(LavimoInputError) as info:
        read_bvh(path)
    assert info.value.path == str(path) and words in info.value.problem, info.value.problem


def test_whole_turns_and_hour_long_clips_are_plausible(tmp_path: Path) -> None:
    turned = read_bvh(write(tmp_path, TINY.replace("1 2 3 90", "1 2 3 3690"), "turned.bvh"))  # ten turns more
    np.testing.assert_allclose(forward_kinematics(turned), forward_kinematics(read_bvh(write(tmp_path, TINY))))
    hour = LONG.replace("Frames: 4002", "Frames: 4001").replace("1 2 3 0 0 0 0 0 0\n", "", 1)
    assert read_bvh(write(tmp_path, hour, "hour.bvh")).n_frames == 4001  # exactly one hour
