"""Raw AMASS -> HumanML3D layout, run end to end with a synthetic SMPL-H model and synthetic AMASS files.

The real SMPL-H model is license-gated, so the test writes a small but valid one in the AMASS
``model.npz`` format that smplx loads (6890 vertices clustered on a T-posed 52-joint skeleton).
"""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np
import pytest

from lavimo.datasets.amass import (
    Z_UP_TO_Y_UP,
    IndexRow,
    amass_file,
    amass_joints,
    amass_to_humanml3d,
    crop_row,
    load_amass,
    read_index,
    to_20fps_frames,
)
from lavimo.io import LavimoInputError, read_rejections
from lavimo.motion.humanml3d import features_to_joints

N_VERTS = 6890
# SMPL-H parents: 22 body joints, then 15 left-hand joints (on 20), 15 right-hand joints (on 21)
BODY_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19]
HAND = [0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]  # finger chains of 3, relative to the hand's first joint
PARENTS = BODY_PARENTS + [20 if h == 0 else 22 + h - 1 for h in HAND] + [21 if h == 0 else 37 + h - 1 for h in HAND]
# T pose in SMPL model space: Y up, facing +Z, +X = the body's left (metres)
BODY_REST = [
    (0, 0, 0), (0.06, -0.09, 0), (-0.06, -0.09, 0), (0, 0.11, 0), (0.1, -0.47, 0), (-0.1, -0.47, 0), (0, 0.25, 0),
    (0.09, -0.87, -0.03), (-0.09, -0.87, -0.03), (0, 0.31, 0.02), (0.11, -0.93, 0.09), (-0.11, -0.93, 0.09),
    (0, 0.52, 0), (0.08, 0.43, 0), (-0.08, 0.43, 0), (0, 0.6, 0.05), (0.18, 0.45, 0), (-0.18, 0.45, 0),
    (0.43, 0.45, 0), (-0.43, 0.45, 0), (0.68, 0.45, 0), (-0.68, 0.45, 0),
]  # fmt: skip


def _rest_joints() -> np.ndarray:
    joints = np.array(BODY_REST, dtype=np.float64)
    hands = []
    for side, wrist in ((1, 20), (-1, 21)):
        for finger in range(5):
            for k in range(3):
                hands.append(joints[wrist] + (side * 0.03 * (k + 1), 0.0, 0.02 * (finger - 2)))
    return np.concatenate([joints, np.array(hands)])


def write_smplh_model(path: Path, seed: int = 0) -> None:
    """A valid SMPL-H model.npz: vertices clustered around each joint, one-hot skinning, small shape space."""
    rng = np.random.default_rng(seed)
    rest = _rest_joints()
    owner = np.arange(N_VERTS) % len(rest)
    offsets = rng.normal(scale=0.02, size=(N_VERTS, 3))
    for j in range(len(rest)):  # zero-mean offsets per cluster: the regressed joint is exactly the rest joint
        offsets[owner == j] -= offsets[owner == j].mean(axis=0)
    regressor = np.zeros((len(rest), N_VERTS))
    regressor[owner, np.arange(N_VERTS)] = 1.0
    regressor /= regressor.sum(axis=1, keepdims=True)
    kintree = np.array([[p if p >= 0 else 4294967295 for p in PARENTS], list(range(len(rest)))], dtype=np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        v_template=rest[owner] + offsets,
        shapedirs=rng.normal(scale=1e-3, size=(N_VERTS, 3, 16)),
        posedirs=np.zeros((N_VERTS, 3, (len(rest) - 1) * 9), dtype=np.float32),
        J_regressor=regressor,
        weights=np.eye(len(rest))[owner],
        kintree_table=kintree,
        f=np.stack([np.arange(N_VERTS - 2), np.arange(1, N_VERTS - 1), np.arange(2, N_VERTS)], axis=1),
        hands_componentsl=np.eye(45),
        hands_componentsr=np.eye(45),
        hands_meanl=np.zeros(45),
        hands_meanr=np.zeros(45),
    )


def write_amass_walk(path: Path, fps: float = 60.0, seconds: float = 3.0, gender: str = "male") -> None:
    """An AMASS-style npz: Z-up world (root turned +90 deg about X), walking forward (world -Y), knees swinging."""
    n = int(fps * seconds)
    t = np.arange(n) / fps
    poses = np.zeros((n, 156))
    poses[:, 0] = np.pi / 2  # SMPL's Y-up body stands up in AMASS's Z-up world
    poses[:, 3 + 3 * 3] = 0.6 * np.sin(2 * np.pi * t)  # l_knee (joint 4) about X
    poses[:, 3 + 4 * 3] = 0.6 * np.sin(2 * np.pi * t + np.pi)  # r_knee (joint 5)
    trans = np.stack([np.zeros(n), -1.2 * t, np.full(n, 0.95)], axis=1)  # the body faces world -Y
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, poses=poses, trans=trans, betas=np.zeros(16), gender=np.array(gender), mocap_framerate=fps)


def write_index(path: Path, rows: list[tuple[str, int, int, str]]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source_path", "start_frame", "end_frame", "new_name"])
        writer.writerows(rows)


@pytest.fixture(scope="module")
def smplh_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("smplh")
    write_smplh_model(root / "male" / "model.npz", seed=0)
    write_smplh_model(root / "female" / "model.npz", seed=1)
    return root


def test_real_index_csv_fixture_reads(humanml3d_fixture: Path) -> None:
    rows = read_index(humanml3d_fixture / "index.csv")
    assert len(rows) == 14616
    assert rows[0] == IndexRow("./pose_data/KIT/3/kick_high_left02_poses.npy", 0, 117, "000000")
    assert amass_file(Path("/a"), rows[0].source_path) == Path("/a/KIT/3/kick_high_left02_poses.npz")
    act = next(r for r in rows if "humanact12" in r.source_path)
    assert amass_file(Path("/a"), act.source_path).suffix == ".npy"


def test_axes_and_crop_follow_humanml3d() -> None:
    assert np.isclose(np.linalg.det(Z_UP_TO_Y_UP), 1.0)  # a rotation, not a reflection
    np.testing.assert_array_equal(Z_UP_TO_Y_UP @ [0, 0, 1], [0, 1, 0])  # AMASS up -> Y
    joints = np.arange(200.0)[:, None, None] * np.ones((1, 22, 3))
    assert crop_row(joints, IndexRow("./pose_data/KIT/x.npy", 5, 15, "a")).shape[0] == 10
    assert crop_row(joints, IndexRow("./pose_data/KIT/x.npy", 0, -1, "a")).shape[0] == 199  # HumanML3D's slice
    eyes = crop_row(joints, IndexRow("./pose_data/Eyes_Japan_Dataset/x.npy", 0, 10, "a"))
    assert eyes[0, 0, 0] == 60  # 3 s dropped first
    np.testing.assert_array_equal(to_20fps_frames(12, 60.0), [0, 3, 6, 9])
    assert to_20fps_frames(12, 50.0) is None


def test_amass_to_humanml3d_synthetic(tmp_path: Path, smplh_dir: Path) -> None:
    amass = tmp_path / "amass"
    write_amass_walk(amass / "KIT" / "3" / "walk01_poses.npz", fps=60.0, gender="male")
    write_amass_walk(amass / "CMU" / "01" / "01_01_poses.npz", fps=50.0, gender="female")
    index = tmp_path / "index.csv"
    write_index(
        index,
        [
            ("./pose_data/KIT/3/walk01_poses.npy", 0, 50, "000000.npy"),
            ("./pose_data/KIT/3/walk01_poses.npy", 10, -1, "000001.npy"),
            ("./pose_data/CMU/01/01_01_poses.npy", 0, 40, "000002.npy"),
            ("./pose_data/KIT/3/missing_poses.npy", 0, 40, "000003.npy"),
            ("./pose_data/KIT/3/walk01_poses.npy", 70, 80, "000004.npy"),  # past the end: empty
        ],
    )
    out = tmp_path / "HumanML3D"
    summary = amass_to_humanml3d(amass, smplh_dir, index, out)
    assert (summary.rows, summary.written, len(summary.rejected)) == (5, 3, 2)
    assert {r.item for r in read_rejections(out / "rejected.csv")} == {"000003", "000004"}

    joints = np.load(out / "new_joints" / "000000.npy")
    features = np.load(out / "new_joint_vecs" / "000000.npy")
    assert joints.shape == (49, 22, 3) and features.shape == (49, 263)  # 50 frames -> 49 (HumanML3D)
    assert np.load(out / "new_joints" / "000001.npy").shape[0] == 60 - 10 - 1 - 1
    assert np.load(out / "new_joints" / "000002.npy").shape[0] == 39  # 50 fps resampled to 20
    # upright, on the floor, starting at the origin, walking forward (+Z) after canonicalisation
    assert (joints[:, 15, 1] > joints[:, 0, 1]).all() and (joints[:, 0, 1] > joints[:, 7, 1]).all()
    assert abs(joints[..., 1].min()) < 1e-5
    np.testing.assert_allclose(joints[0, 0, [0, 2]], 0.0, atol=1e-6)
    assert joints[-1, 0, 2] > 1.5 and abs(joints[-1, 0, 0]) < 0.1  # 2.4 s at 1.2 m/s (target scale)
    np.testing.assert_allclose(features_to_joints(features), joints, atol=1e-4)
    mirrored = np.load(out / "new_joints" / "M000000.npy")
    assert mirrored.shape == joints.shape
    assert np.load(out / "new_joint_vecs" / "M000000.npy").shape == (49, 263)

    stamp = (out / "new_joints" / "000000.npy").stat().st_mtime_ns
    again = amass_to_humanml3d(amass, smplh_dir, index, out)
    assert (again.written, again.skipped) == (0, 3)
    assert (out / "new_joints" / "000000.npy").stat().st_mtime_ns == stamp


def test_amass_rejects_non_amass_and_missing_inputs(tmp_path: Path, smplh_dir: Path) -> None:
    amass = tmp_path / "amass"
    bad = amass / "KIT" / "1" / "bad_poses.npz"
    bad.parent.mkdir(parents=True)
    np.savez(bad, something=np.zeros(3))
    nan = amass / "KIT" / "1" / "nan_poses.npz"
    write_amass_walk(nan)
    data = dict(np.load(nan))
    data["trans"][3, 1] = np.nan
    np.savez(nan, **data)
    index = tmp_path / "index.csv"
    write_index(
        index, [("./pose_data/KIT/1/bad_poses.npy", 0, 40, "a.npy"), ("./pose_data/KIT/1/nan_poses.npy", 0, 40, "b")]
    )
    summary = amass_to_humanml3d(amass, smplh_dir, index, tmp_path / "out", rejected_csv=tmp_path / "rejected.csv")
    reasons = {r.item: r.reason for r in summary.rejected}
    assert "not an AMASS pose file" in reasons["a"] and "NaN" in reasons["b"]
    assert not (tmp_path / "out" / "new_joints").exists()
    with pytest.raises(LavimoInputError, match=r"datasets\.amass\.root"):
        amass_to_humanml3d(tmp_path / "nowhere", smplh_dir, index, tmp_path / "out")
    with pytest.raises(LavimoInputError, match="SMPL-H"):
        from lavimo.datasets.amass import model_file

        model_file(tmp_path, "male")


class _TouchOnUnpickle:
    """A pickled object that creates ``marker`` when unpickled: what a crafted AMASS file's entry can do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("entry", ["gender", "poses"])
def test_an_amass_file_with_pickled_objects_is_refused_unread(tmp_path: Path, entry: str) -> None:
    good = tmp_path / "walk_poses.npz"
    write_amass_walk(good)
    marker = tmp_path / "unpickled"
    crafted = dict(np.load(good))
    crafted[entry] = np.array([_TouchOnUnpickle(marker)], dtype=object)
    bad = tmp_path / "crafted_poses.npz"
    np.savez(bad, **crafted)
    with pytest.raises(LavimoInputError) as info:
        load_amass(bad)
    assert info.value.path == str(bad) and "pickled Python objects" in info.value.problem
    assert not marker.exists()  # nothing was unpickled
    pickled = tmp_path / "pickled_poses.npz"  # a bare pickle named .npz
    pickled.write_bytes(pickle.dumps(_TouchOnUnpickle(marker)))
    with pytest.raises(LavimoInputError, match=r"not an \.npz archive"):
        load_amass(pickled)
    assert not marker.exists()


def test_amass_gender_may_be_a_str_or_bytes_array(tmp_path: Path) -> None:
    walk = tmp_path / "walk_poses.npz"
    write_amass_walk(walk, gender="male")
    assert load_amass(walk)["gender"] == "male"
    np.savez(walk, **{**dict(np.load(walk)), "gender": np.array(b"female")})
    assert load_amass(walk)["gender"] == "female"
    np.savez(walk, **{**dict(np.load(walk)), "gender": np.array(1)})
    with pytest.raises(LavimoInputError, match="gender is not one string"):
        load_amass(walk)


def test_a_smplh_model_with_pickled_objects_is_read_without_them(tmp_path: Path, smplh_dir: Path) -> None:
    """smplx reads .npz models with allow_pickle=True; lavimo reads the arrays itself and leaves objects unread."""
    marker = tmp_path / "unpickled"
    crafted = tmp_path / "crafted"
    write_smplh_model(crafted / "male" / "model.npz", seed=0)
    model = dict(np.load(crafted / "male" / "model.npz"))
    model["pose_training_info"] = np.array([_TouchOnUnpickle(marker)], dtype=object)
    np.savez(crafted / "male" / "model.npz", **model)
    walk = tmp_path / "walk_poses.npz"
    write_amass_walk(walk, gender="male")
    joints = amass_joints(walk, crafted)
    assert not marker.exists()  # nothing was unpickled
    np.testing.assert_array_equal(joints, amass_joints(walk, smplh_dir))  # the same body as the plain model's
