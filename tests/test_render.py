"""Rendering tests. Everything that imports bpy runs in a subprocess (`python -m lavimo.cli render ...` or a small
runner), so that pytest's process never holds bpy next to torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest

from lavimo.frame_sampling import uniform_frame_indices
from lavimo.io import Rejection, read_rejections, write_rejections
from lavimo.render import antialias, engines, floor, framing, png, readback

ROOT = Path(__file__).resolve().parents[1]
WALK = ROOT / "tests" / "data" / "humanml3d" / "new_joints" / "012314.npy"
SHARD = "0000"
GOOD = {"walk": 0, "walk_b": 5, "short": 2}  # clip id -> avatar
BAD = "bad"


def run_python(
    *args: str, env: dict[str, str] | None = None, check: bool = True, timeout: int = 600
) -> subprocess.CompletedProcess:
    """Run `python ARGS` in a fresh process at the repository root; with ``check``, a failure fails the test."""
    done = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"exit {done.returncode}\n{done.stdout}\n{done.stderr[-4000:]}")
    return done


def lavimo_render(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run `python -m lavimo.cli render ARGS` in a fresh process."""
    return run_python("-m", "lavimo.cli", "render", *args, env=env, check=check, timeout=900)


def run_blender_script(script: str, *args: str) -> subprocess.CompletedProcess:
    """Run a Blender (bpy) script with ARGS as its sys.argv[1:] in a fresh process; it must exit 0."""
    return run_python("-c", script, *args)


def printed_json(done: subprocess.CompletedProcess) -> object:
    """What a runner printed as JSON on its last line of output."""
    return json.loads(done.stdout.strip().splitlines()[-1])


def read_frames(clip_dir: Path) -> np.ndarray:
    """(8, H, W, C) frames of a rendered clip."""
    return np.stack([iio.imread(clip_dir / f"{k:02d}.png") for k in range(8)])


@pytest.fixture(scope="module")
def walk() -> np.ndarray:
    return np.load(WALK).astype(np.float32)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, walk: np.ndarray) -> Path:
    """A one-shard dataset: the walking fixture on two avatars, a 30-frame crop, and a clip with NaN joints."""
    from lavimo.datasets.manifest import shard_path, write_manifest, write_shard

    ds = tmp_path_factory.mktemp("ds")
    bad = walk[:40].copy()
    bad[10, 3] = np.nan
    joints = {"walk": walk, "walk_b": walk, "short": walk[60:90], BAD: bad}
    motions = {c: (j, np.zeros((len(j) - 1, 263), np.float32)) for c, j in joints.items()}
    write_shard(shard_path(ds, SHARD), motions, {"clips": list(joints)})
    avatars = {**GOOD, BAD: 1}
    rows = [
        {
            "clip_id": c,
            "source": "test",
            "split": "test",
            "fps": 20,
            "n_frames": len(j),
            "texts": [{"text": "a person walks", "start": 0.0, "end": 0.0}],
            "avatar": avatars[c],
            "mirrored_from": None,
            "shard": SHARD,
        }
        for c, j in joints.items()
    ]
    write_manifest(ds, pd.DataFrame(rows))
    return ds


def shard_args(dataset: Path, avatars_dir: Path, frames: Path, *extra: str) -> list[str]:
    """Arguments of `lavimo render shard` for the test shard."""
    where = ["--dataset-dir", str(dataset), "--shard", SHARD, "--avatars", str(avatars_dir)]
    return ["shard", *where, "--frames-dir", str(frames), *extra]


@pytest.fixture(scope="module")
def shard_frames(dataset: Path, avatars_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Frames of the test shard (rendered once) and the process stats."""
    frames = tmp_path_factory.mktemp("frames")
    stats = frames.parent / "stats_first.json"
    lavimo_render(*shard_args(dataset, avatars_dir, frames, "--stats", str(stats)))
    return frames, json.loads(stats.read_text())


# ------------------------------------------------------------------------------------------------ no Blender


def test_rendered_frames_are_uniform_segment_centres() -> None:
    assert uniform_frame_indices(170, 8).tolist() == [10, 31, 53, 74, 95, 116, 138, 159]
    assert uniform_frame_indices(3, 8).tolist() == [0, 0, 0, 1, 1, 2, 2, 2]


def test_gaussian_smoothing_keeps_a_straight_walk() -> None:
    line = np.stack([np.linspace(0, 5, 100), np.zeros(100)], axis=1)
    smooth = framing.gaussian_smooth(line, 10.0)
    assert np.allclose(smooth, line, atol=1e-9)  # no lag at the ends either


def test_follow_camera_keeps_every_joint_in_frame(walk: np.ndarray) -> None:
    rig = framing.CameraRig()
    path = framing.camera_path(walk, 20.0, 1.7, rig)
    right, up = framing.camera_basis(path.direction)
    rel = walk - path.locations[:, None]
    depth = -(rel @ path.direction)
    tan_half = np.tan(np.radians(rig.fov_deg) / 2)
    assert np.all(np.abs(rel @ right) / depth < tan_half)
    assert np.all(np.abs(rel @ up) / depth < tan_half)
    assert np.allclose(np.linalg.norm(path.locations - path.targets, axis=1), path.distance)


def test_grid_line_coverage_integrates_to_the_line_width() -> None:
    texel = 0.01
    xs = np.arange(-3, 3, texel) + texel / 2
    assert np.isclose(floor.line_coverage(xs, texel).sum() * texel, 6 * floor.LINE_WIDTH_M, rtol=1e-3)


def test_contact_shadow_is_dark_under_the_feet_and_fades_at_the_border() -> None:
    layout = floor.grid_layout(np.zeros((1, 2)))
    grid = floor.grid_texture(layout)
    window = floor.shadow_window(layout, np.zeros(2))
    patch = floor.shadow_texture(layout, window, np.array([[0.0, 0.02, 0.0], [0.1, 0.05, 0.0]]))
    row0, col0, n = window
    original = grid[row0 : row0 + n, col0 : col0 + n]
    assert patch[n // 2, n // 2, 0] < 0.9 * original[n // 2, n // 2, 0]
    assert np.allclose(patch[0], original[0]) and np.allclose(patch[:, -1], original[:, -1])


def test_a_window_of_the_grid_texture_equals_that_part_of_the_whole() -> None:
    layout = floor.grid_layout(np.array([[0.0, 0.0], [3.2, -1.5]]))
    whole = floor.grid_texture(layout)
    row0, col0, n = floor.shadow_window(layout, np.array([1.0, -0.4]))
    assert np.array_equal(floor.grid_texture(layout, (row0, col0, n)), whole[row0 : row0 + n, col0 : col0 + n])
    assert whole.dtype == np.float32 and whole.shape == (*layout.shape, 4) and np.all(whole[..., 3] == 1)


def test_dropping_high_occluders_changes_the_shadow_by_far_less_than_one_level() -> None:
    layout = floor.grid_layout(np.zeros((1, 2)))
    xs, zs = floor.texel_centres(layout, 0, 0, 200, 200)
    rng = np.random.default_rng(0)
    points = np.column_stack(
        [rng.uniform(xs[0], xs[-1], 320), rng.uniform(0, 1.8, 320), rng.uniform(zs[0], zs[-1], 320)]
    )
    heights = points[:, 1]
    full = 1.0 - np.exp(  # every point, as before the culling
        -sum(
            0.35 * np.exp(-h / 0.1) * np.outer(np.exp(-0.5 * ((zs - z) / s) ** 2), np.exp(-0.5 * ((xs - x) / s) ** 2))
            for (x, h, z), s in zip(points, 0.045 + 0.35 * heights, strict=True)
        )
    )
    fade = np.outer(*(np.clip(np.minimum(c - c[0], c[-1] - c) / floor.SHADOW_FADE_M, 0, 1) for c in (zs, xs)))
    culled = floor.contact_occlusion(xs, zs, points)
    assert np.abs(culled - full * fade).max() * floor.SHADOW_STRENGTH * 255 < 0.25


def test_png_encoder_round_trips_and_is_deterministic() -> None:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    rgb[10:30, 5:40] = (120, 130, 140)  # a flat patch, as in renders
    for image in (rgb, rgb[..., 0], np.dstack([rgb, rgb[..., :1]])):
        data = png.encode_png(image)
        assert data.startswith(png.SIGNATURE) and data == png.encode_png(image)
        assert np.array_equal(iio.imread(data, extension=".png"), image)
    with pytest.raises(ValueError, match="uint8"):
        png.encode_png(rgb.astype(np.float32))


def test_linear_frames_are_encoded_with_the_srgb_curve() -> None:
    linear = np.array([0.0, 0.001, 0.0031308, 0.05, 0.2, 0.5, 0.9, 1.0, 1.5, -0.1], np.float32)
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.abs(linear) ** (1 / 2.4) - 0.055)
    expected = np.clip(np.round(srgb * 255), 0, 255)
    assert np.abs(readback.linear_to_srgb8(linear).astype(int) - expected).max() <= 1
    assert readback.linear_to_srgb8(np.float32(0.5)) == 188 and readback.linear_to_srgb8(np.float32(2.0)) == 255


def test_half_floats_are_encoded_like_their_full_precision_values() -> None:
    linear = np.linspace(-0.1, 1.2, 20001).astype(np.float16)
    from_half = readback.linear_to_srgb8(linear).astype(int)
    from_float = readback.linear_to_srgb8(linear.astype(np.float32)).astype(int)
    assert np.abs(from_half - from_float).max() <= 1 and (from_half != from_float).mean() < 0.01
    assert readback.linear_to_srgb8(np.float16(0.5)) == 188 and readback.linear_to_srgb8(np.float16(np.nan)) == 0
    planes = np.stack([linear[:300].reshape(3, 100)] * 2)  # (H=2, 3, W=100)
    image = readback.encode_srgb(planes)
    assert image.shape == (2, 100, 3) and np.array_equal(image[0, :, 1], from_half[100:200])


def test_exr_reader_refuses_what_it_does_not_read(tmp_path: Path) -> None:
    (tmp_path / "x.exr").write_bytes(b"not an exr at all")
    with pytest.raises(ValueError, match="not an OpenEXR"):
        readback.read_exr_planes(tmp_path / "x.exr")


def test_pick_clips_spreads_over_the_unmirrored_clips() -> None:
    from lavimo.commands.render import pick_clips

    ids = [f"clip{i:02d}" for i in range(10)]
    manifest = pd.DataFrame({"clip_id": ids + [f"M{c}" for c in ids], "mirrored_from": [""] * 10 + ids})
    assert pick_clips(manifest, 1) == ["clip05"]
    assert pick_clips(manifest, 4) == ["clip01", "clip03", "clip06", "clip08"]
    assert pick_clips(manifest, 0) == [] and pick_clips(manifest, 30) == ids


def test_fxaa_leaves_flat_images_and_softens_stairs() -> None:
    flat = np.full((32, 32, 3), 128, np.uint8)
    assert np.array_equal(antialias.fxaa(flat), flat)
    stairs = np.zeros((64, 64, 3), np.uint8)
    for row in range(64):
        stairs[row, : 10 + row // 4] = 255  # a shallow diagonal edge, 4-pixel steps
    smoothed = antialias.fxaa(stairs)
    assert len(np.unique(smoothed)) > 2
    assert np.abs(smoothed.astype(int) - stairs).max() < 200


def test_eevee_needs_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(engines.GPU_ENV, "0")
    with pytest.raises(ValueError, match="EEVEE needs a GPU"):
        engines.check_engine("eevee")
    assert engines.check_engine("eevee", force=True) == "BLENDER_EEVEE"
    assert engines.check_engine("workbench") == "BLENDER_WORKBENCH"


def test_cli_refuses_eevee_without_gpu(tmp_path: Path) -> None:
    done = lavimo_render(
        "clips",
        "--joints",
        str(WALK),
        "--avatars",
        str(tmp_path),
        "--frames-dir",
        str(tmp_path / "frames"),
        "--engine",
        "eevee",
        env={engines.GPU_ENV: "0"},
        check=False,
    )
    assert done.returncode == 2
    assert "EEVEE needs a GPU" in done.stderr
    assert not (tmp_path / "frames").exists()


# ---------------------------------------------------------------------------------------------- with Blender


def test_frames_are_512_rgb_and_not_blank(shard_frames: tuple[Path, dict]) -> None:
    frames_dir, stats = shard_frames
    frames = read_frames(frames_dir / "walk")
    assert frames.shape == (8, 512, 512, 3) and frames.dtype == np.uint8
    for frame in frames:
        colours = frame.reshape(-1, 3).astype(np.int32) @ np.array([1, 256, 65536], np.int32)
        assert frame.std() > 10 and len(np.unique(colours)) > 500
    meta = json.loads((frames_dir / "walk" / "meta.json").read_text())
    assert meta["indices"] == [10, 31, 53, 74, 95, 116, 138, 159]
    assert meta["avatar"] == GOOD["walk"] and meta["engine"] == "workbench" and meta["resolution"] == [512, 512]
    assert stats["torch_loaded"] is False


def test_bad_clip_is_rejected_and_the_shard_goes_on(shard_frames: tuple[Path, dict]) -> None:
    frames_dir, stats = shard_frames
    assert stats["rendered"] == len(GOOD) and stats["rejected"] == 1
    assert all((frames_dir / c / "meta.json").exists() for c in GOOD)
    assert not (frames_dir / BAD).exists()
    rejected = read_rejections(frames_dir / f"{SHARD}.rejected.csv")
    assert [(r.item, r.stage) for r in rejected] == [(BAD, "render")]
    assert "NaN" in rejected[0].reason
    done = json.loads((frames_dir / f"{SHARD}.done").read_text())
    assert done["rendered"] == len(GOOD) and done["rejected"] == 1
    assert not list(frames_dir.glob(".*.tmp-*"))


def test_merged_rejections_land_in_the_dataset_list_next_to_other_stages(
    shard_frames: tuple[Path, dict], dataset: Path, tmp_path: Path
) -> None:
    frames_dir, _ = shard_frames
    rejected_csv = dataset / "rejected.csv"  # the dataset's log: prepare recorded a clip there
    write_rejections(rejected_csv, [Rejection("too_short", "prepare", "raw.bvh", "too short")], "prepare")
    merged = tmp_path / "merged.csv"
    args = ["merge-rejects", "--dataset-dir", str(dataset), "--frames-dir", str(frames_dir), "--out", str(merged)]
    lavimo_render(*args)
    first = rejected_csv.read_bytes()
    lavimo_render(*args)  # idempotent
    assert rejected_csv.read_bytes() == first
    rows = {(r.item, r.stage) for r in read_rejections(rejected_csv)}
    assert rows == {("too_short", "prepare"), (BAD, "render")}
    assert [(r.item, r.stage, r.source) for r in read_rejections(merged)] == [(BAD, "render", f"shard {SHARD}")]
    missing = lavimo_render(*args, "--shards", SHARD, "9999", check=False)
    assert missing.returncode == 2 and "9999.rejected.csv" in missing.stderr
    rejected_csv.unlink()


def test_two_avatars_give_different_images(shard_frames: tuple[Path, dict]) -> None:
    frames_dir, _ = shard_frames
    a = read_frames(frames_dir / "walk").astype(int)
    b = read_frames(frames_dir / "walk_b").astype(int)
    differs = (np.abs(a - b).max(axis=-1) > 30).mean(axis=(1, 2))
    assert np.all(differs > 0.005)


def test_same_clip_renders_identically_twice(
    shard_frames: tuple[Path, dict], avatars_dir: Path, tmp_path: Path
) -> None:
    frames_dir, _ = shard_frames
    joints = tmp_path / "walk.npy"
    joints.write_bytes(WALK.read_bytes())
    again = tmp_path / "again"
    lavimo_render(
        "clips",
        "--joints",
        str(joints),
        "--avatar",
        str(GOOD["walk"]),
        "--avatars",
        str(avatars_dir),
        "--frames-dir",
        str(again),
    )
    assert np.array_equal(read_frames(again / "walk"), read_frames(frames_dir / "walk"))


def test_full_avatar_mesh_renders_almost_the_same_frames(
    shard_frames: tuple[Path, dict], avatars_dir: Path, tmp_path: Path
) -> None:
    frames_dir, _ = shard_frames  # rendered at the default mesh detail, 0.5
    joints = tmp_path / "walk.npy"
    joints.write_bytes(WALK.read_bytes())
    full = tmp_path / "full"
    lavimo_render(
        "clips", "--joints", str(joints), "--avatar", str(GOOD["walk"]), "--avatars", str(avatars_dir),
        "--frames-dir", str(full), "--mesh-detail", "1",
    )  # fmt: skip
    light_meta = json.loads((frames_dir / "walk" / "meta.json").read_text())
    full_meta = json.loads((full / "walk" / "meta.json").read_text())
    assert 0.45 < light_meta["avatar_triangles"] / full_meta["avatar_triangles"] < 0.55
    assert light_meta["indices"] == full_meta["indices"]
    a, b = read_frames(full / "walk").astype(int), read_frames(frames_dir / "walk").astype(int)
    assert not np.array_equal(a, b)
    differs = (np.abs(a - b).max(axis=-1) > 32).mean(axis=(1, 2))
    assert differs.max() < 0.01, differs  # a few pixels along the outline and the clothing edges


def test_rerun_renders_only_what_is_missing(
    shard_frames: tuple[Path, dict], dataset: Path, avatars_dir: Path, tmp_path: Path
) -> None:
    frames_dir, _ = shard_frames
    before = {c: (frames_dir / c / "00.png").stat().st_mtime_ns for c in GOOD}
    stats = tmp_path / "rerun.json"
    lavimo_render(*shard_args(dataset, avatars_dir, frames_dir, "--stats", str(stats)))
    rerun = json.loads(stats.read_text())
    assert rerun["rendered"] == 0 and rerun["skipped"] == len(GOOD) and rerun["rejected"] == 1
    assert before == {c: (frames_dir / c / "00.png").stat().st_mtime_ns for c in GOOD}

    import shutil

    reference = read_frames(frames_dir / "short")
    shutil.rmtree(frames_dir / "short")  # as if the process had been killed before this clip
    (frames_dir / ".short.tmp-99999").mkdir()  # and had left a partial folder behind
    lavimo_render(*shard_args(dataset, avatars_dir, frames_dir, "--stats", str(stats)))
    resumed = json.loads(stats.read_text())
    assert resumed["rendered"] == 1 and resumed["skipped"] == len(GOOD) - 1
    assert np.array_equal(read_frames(frames_dir / "short"), reference)
    assert not (frames_dir / ".short.tmp-99999").exists()


def test_rerun_with_other_settings_or_joints_renders_again(walk: np.ndarray, avatars_dir: Path, tmp_path: Path) -> None:
    joints, out, stats = tmp_path / "clip.npy", tmp_path / "frames", tmp_path / "stats.json"
    np.save(joints, walk[60:90])

    def render(*extra: str) -> dict:
        lavimo_render(
            "clips", "--joints", str(joints), "--avatar", "4", "--avatars", str(avatars_dir),
            "--frames-dir", str(out), "--resolution", "128", "--stats", str(stats), *extra,
        )  # fmt: skip
        return json.loads(stats.read_text())

    assert render()["rendered"] == 1
    signature = json.loads((out / "clip" / "meta.json").read_text())["signature"]
    assert isinstance(signature, str) and len(signature) == 20
    assert render()["skipped"] == 1  # same joints, avatar and settings: done
    assert render("--threads", "1")["skipped"] == 1  # the thread count changes nothing in the pictures
    assert render("--num-frames", "4")["rendered"] == 1
    assert len(list((out / "clip").glob("*.png"))) == 4
    np.save(joints, walk[100:130])  # same clip id, other motion
    assert render("--num-frames", "4")["rendered"] == 1
    assert json.loads((out / "clip" / "meta.json").read_text())["signature"] != signature


def test_video_mode_writes_an_mp4_and_the_same_sampled_frames(
    shard_frames: tuple[Path, dict], avatars_dir: Path, walk: np.ndarray, tmp_path: Path
) -> None:
    frames_dir, _ = shard_frames
    joints = tmp_path / "short.npy"
    np.save(joints, walk[60:90])
    out = tmp_path / "video" / "frames"
    lavimo_render(
        "clips",
        "--joints",
        str(joints),
        "--avatar",
        str(GOOD["short"]),
        "--avatars",
        str(avatars_dir),
        "--frames-dir",
        str(out),
        "--mode",
        "video",
        "--video",
    )
    video = iio.imread(tmp_path / "video" / "renders" / "short.mp4", index=None)
    assert video.shape == (30, 512, 512, 3)
    meta = json.loads((out / "short" / "meta.json").read_text())
    assert meta["mode"] == "video" and meta["video"].endswith("short.mp4")
    assert np.array_equal(read_frames(out / "short"), read_frames(frames_dir / "short"))
    sampled = video[meta["indices"]].astype(int)  # lossy H.264, but the same pictures
    assert np.abs(sampled - read_frames(out / "short").astype(int)).mean() < 6


SILHOUETTE_RUNNER = """
import json, sys
import numpy as np
from lavimo.render.clip import AvatarBank, ClipJob, ClipOptions, clip_images
from lavimo.render.scene import Studio, StudioSettings

avatars, joints, avatar = sys.argv[1], sys.argv[2], int(sys.argv[3])
studio = Studio(StudioSettings(shadows=False, fxaa=False))
bank = AvatarBank(avatars, studio)
job = ClipJob("walk", avatar, 20.0, np.load(joints))
_, person, _ = clip_images(studio, bank, job, ClipOptions())
studio.show = lambda key: [setattr(o, "hide_render", True) for o in studio.avatars.values()]
_, plate, _ = clip_images(studio, bank, job, ClipOptions())
result = []
for a, b in zip(person, plate):
    mask = np.abs(a.astype(int) - b.astype(int)).max(axis=-1) > 6
    border = mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()
    rows, cols = np.nonzero(mask)
    result.append({"pixels": int(mask.sum()), "border": bool(border),
                   "box": [int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())]})
print(json.dumps(result))
"""


@pytest.mark.parametrize("avatar", [0, 9])
def test_walking_silhouette_stays_inside_every_sampled_frame(avatars_dir: Path, avatar: int) -> None:
    done = run_blender_script(SILHOUETTE_RUNNER, str(avatars_dir), str(WALK), str(avatar))
    frames = printed_json(done)
    assert len(frames) == 8
    for frame in frames:
        assert not frame["border"], frame
        assert frame["pixels"] > 0.02 * 512 * 512, frame  # clearly visible
        top, bottom, _, _ = frame["box"]
        assert bottom - top > 0.2 * 512, frame  # a person, not a speck


DEMO_BUNDLE = ROOT / "resources" / "demo" / "dataset-1.tar.xz"
WALK_BACK, DASH, BOW = "dataset-1_walk-back_active_001", "dataset-1_dash_active_001", "dataset-1_bow_active_001"


@pytest.fixture(scope="module")
def demo_clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real demo clips from the bundle as joint files: walk-back (and its mirror, as the demo has it), dash, bow."""
    import tarfile

    from lavimo.datasets.clips import mirrored
    from lavimo.motion.pipeline import bvh_to_clip

    if not DEMO_BUNDLE.exists():
        pytest.skip("no demo bundle")
    out = tmp_path_factory.mktemp("demo_clips")
    wanted = {f"data/{name}.bvh": name for name in (WALK_BACK, DASH, BOW)}
    with tarfile.open(DEMO_BUNDLE, "r:xz") as tar:
        for member in tar:
            if member.name in wanted:
                (out / Path(member.name).name).write_bytes(tar.extractfile(member).read())
    files = {}
    for name in wanted.values():
        bvh = out / f"{name}.bvh"
        joints = bvh_to_clip(bvh).joints
        files[name] = out / f"{name}.npy"
        np.save(files[name], joints.astype(np.float32))
        if name == WALK_BACK:
            files["M" + name] = out / f"M{name}.npy"
            np.save(files["M" + name], mirrored(joints, str(bvh))[0].astype(np.float32))
    return files


LOCOMOTION_RUNNER = """
import json, sys
import numpy as np
from lavimo.render.check import has_body
from lavimo.render.clip import AvatarBank, ClipJob, ClipOptions, clip_images
from lavimo.render.scene import Studio, StudioSettings

studio = Studio(StudioSettings())
bank = AvatarBank(sys.argv[1], studio)
show = studio.show
result = {}
for item in sys.argv[2:]:  # joints.npy:avatar, each avatar once: its mesh is posed here for the first time
    path, avatar = item.rsplit(":", 1)
    job = ClipJob(path, int(avatar), 20.0, np.load(path))
    studio.show = show
    _, person, _ = clip_images(studio, bank, job, ClipOptions())
    studio.show = lambda key: [setattr(o, "hide_render", True) for o in studio.avatars.values()]
    _, plate, _ = clip_images(studio, bank, job, ClipOptions())  # the same frames without the body
    frames = []
    for a, b in zip(person, plate):
        mask = np.abs(a.astype(int) - b.astype(int)).max(axis=-1) > 6
        border = mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()
        frames.append({"pixels": int(mask.sum()), "border": bool(border), "key": has_body(a), "plate_key": has_body(b)})
    result[item] = frames
print(json.dumps(result))
"""


def test_locomotion_body_is_in_every_frame_on_several_avatars(demo_clips: dict[str, Path], avatars_dir: Path) -> None:
    """The demo's walk-back and dash clips: the body (silhouette against the same frame rendered without it) is in
    every sampled frame, whole, on four avatars; the stage's colour key agrees."""
    items = [
        f"{demo_clips['M' + WALK_BACK]}:0",
        f"{demo_clips[WALK_BACK]}:7",
        f"{demo_clips[DASH]}:12",
        f"{demo_clips[DASH]}:4",
    ]
    done = run_blender_script(LOCOMOTION_RUNNER, str(avatars_dir), *items)
    assert done.returncode == 0, done.stderr[-3000:]
    result = printed_json(done)
    for item, frames in result.items():
        assert len(frames) == 8
        empty = [k for k, frame in enumerate(frames) if frame["pixels"] < 0.02 * 512 * 512]
        assert not empty, f"{item}: no body in sampled frames {empty}"
        assert not any(frame["border"] for frame in frames), item  # the whole body, not cut by the frame
        assert all(frame["key"] and not frame["plate_key"] for frame in frames), item


STALE_BOUNDS_RUNNER = """
import sys
import lavimo.render.scene as scene
from lavimo.cli import main

def stale(mesh, vertices):  # how poses were written before: the mesh keeps the bounds of its first pose
    mesh.attributes["position"].data.foreach_set("vector", scene.to_blender(vertices).ravel())
    mesh.update()

scene.set_positions = stale
sys.exit(main(["render", "clips", *sys.argv[1:]]))
"""


def test_frames_without_the_body_are_rejected_and_the_batch_goes_on(
    demo_clips: dict[str, Path], avatars_dir: Path, tmp_path: Path
) -> None:
    """With the old pose writing (stale bounds: Workbench culls the walking body), the render stage refuses the
    walk-back clip with its reason instead of writing frames without the body; the in-place clip is written."""
    frames = tmp_path / "frames"
    where = [
        "--avatars",
        str(avatars_dir),
        "--avatar",
        "0",
        "--frames-dir",
        str(frames),
        "--stats",
        str(tmp_path / "s"),
    ]
    joints = [str(demo_clips["M" + WALK_BACK]), str(demo_clips[BOW])]
    done = run_blender_script(STALE_BOUNDS_RUNNER, *where, "--joints", *joints)
    assert done.returncode == 0, done.stderr[-3000:]
    rejected = read_rejections(frames / "clips.rejected.csv")
    assert [r.item for r in rejected] == ["M" + WALK_BACK]
    assert "NoBodyError" in rejected[0].reason and "no body pixels" in rejected[0].reason
    assert not (frames / ("M" + WALK_BACK)).exists()
    assert (frames / BOW / "meta.json").exists()
    assert json.loads((frames / BOW / "meta.json").read_text())["body_share_min"] > 0.01


def test_contact_sheets(shard_frames: tuple[Path, dict], dataset: Path, avatars_dir: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "avatars.png"
    lavimo_render("avatar-sheet", "--avatars", str(avatars_dir), "--out", str(sheet), "--tile", "96")
    image = iio.imread(sheet)
    assert image.shape[2] == 3 and image.shape[1] > 5 * 96 and image.shape[0] > 3 * 96
    clips = tmp_path / "clips.png"
    lavimo_render(
        "clip-sheet",
        "--avatars",
        str(avatars_dir),
        "--out",
        str(clips),
        "--joints",
        str(WALK),
        "--layout",
        "frames",
        "--num-frames",
        "4",
        "--tile",
        "96",
    )
    assert iio.imread(clips).shape[1] > 4 * 96
    one_on_all = tmp_path / "one_on_all.png"
    lavimo_render(
        "clip-sheet", "--avatars", str(avatars_dir), "--out", str(one_on_all), "--layout", "avatars",
        "--dataset-dir", str(dataset), "--pick", "1", "--tile", "64", "--resolution", "128",
    )  # fmt: skip
    assert iio.imread(one_on_all).shape[1] == 5 * (64 + 4) + 4  # 13 avatars, 5 per row


SRGB_RUNNER = """
import json
import sys
import bpy
import imageio.v3 as iio
import numpy as np
from lavimo.render.clip import AvatarBank, ClipJob, ClipOptions, plan_clip
from lavimo.render.readback import encode_srgb
from lavimo.render.scene import Studio, StudioSettings

studio = Studio(StudioSettings(fxaa=False))
bank = AvatarBank(sys.argv[1], studio)
job = ClipJob("walk", 3, 20.0, np.load(sys.argv[2]))
plan = plan_clip(job, bank.get(3), ClipOptions(), shadows=True)
studio.lay_grid(plan.layout)
studio.show(3)
frame = int(plan.frames[3])
studio.pose(plan.sampled_vertices[3], plan.shadows[3])
studio.aim(plan.camera.locations[frame], plan.camera.targets[frame], plan.camera.fov_deg)
planes = studio.render_raw()
ours = encode_srgb(planes)
settings = studio.scene.render.image_settings
settings.file_format, settings.color_mode, settings.color_depth = "PNG", "RGB", "8"
studio.scene.render.filepath = sys.argv[3]
bpy.ops.render.render(write_still=True)
blender = iio.imread(sys.argv[3])
difference = np.abs(ours.astype(int) - blender.astype(int))
print(json.dumps({"dtype": str(planes.dtype), "shapes": [ours.shape, blender.shape],
                  "largest": int(difference.max()), "share": float((difference > 0).mean())}))
"""


def test_frames_match_blenders_own_8_bit_output(avatars_dir: Path, tmp_path: Path) -> None:
    done = run_blender_script(SRGB_RUNNER, str(avatars_dir), str(WALK), str(tmp_path / "blender.png"))
    assert done.returncode == 0, done.stderr[-3000:]
    result = printed_json(done)
    assert result["dtype"] == "float16"  # Blender writes half floats, encoded through the half-float lookup
    assert result["shapes"] == [[512, 512, 3], [512, 512, 3]]
    assert result["largest"] <= 1 and result["share"] < 0.001  # the same picture, at most one level apart


REGIONS_RUNNER = """
import json
import sys
import numpy as np
from lavimo.avatars.build import load_avatar
from lavimo.render.scene import Studio, StudioSettings, region_of_faces

studio = Studio(StudioSettings())
studio.add_avatar(0, load_avatar(sys.argv[1]))
mesh = studio.avatars[0].data
indices = np.zeros(len(mesh.polygons), np.int32)
mesh.polygons.foreach_get("material_index", indices)
np.save(sys.argv[2], indices)
regions = np.array([5, 5, 5, 7, 9])
faces = np.array([[0, 1, 2], [0, 1, 3], [3, 0, 1], [0, 3, 1], [3, 4, 0], [4, 3, 0]])
print(json.dumps({"materials": len(mesh.materials), "made_up": region_of_faces(faces, regions).tolist()}))
"""


def test_each_face_gets_the_region_most_of_its_corners_share(avatars_dir: Path, tmp_path: Path) -> None:
    """region_of_faces on made-up triangles, and the material index of every face of a real avatar mesh in Blender."""
    from lavimo.avatars.build import load_avatar

    done = run_blender_script(REGIONS_RUNNER, str(avatars_dir / "00.npz"), str(tmp_path / "indices.npy"))
    assert done.returncode == 0, done.stderr[-3000:]
    result = printed_json(done)
    # all three corners agree; two agree (each pair of corners); all differ: the first corner's region
    assert result["made_up"] == [5, 5, 5, 5, 7, 9]
    avatar = load_avatar(avatars_dir / "00.npz")
    corners = avatar.vertex_region[avatar.faces]
    votes = (corners[:, :, None] == corners[:, None, :]).sum(2)  # how many corners share each corner's region
    expected = corners[np.arange(len(corners)), votes.argmax(1)]  # the first corner wins a three-way tie
    assert (votes.max(1) == 2).any()  # the avatar has faces on region borders
    assert result["materials"] == len(avatar.region_colors)
    np.testing.assert_array_equal(np.load(tmp_path / "indices.npy"), expected)


POOL_RUNNER = """
import sys
from concurrent.futures import ThreadPoolExecutor
import numpy as np
from lavimo.render.clip import AvatarBank, ClipJob, ClipOptions, clip_frames
from lavimo.render.scene import Studio, StudioSettings

studio = Studio(StudioSettings())
bank = AvatarBank(sys.argv[1], studio)
job = ClipJob("short", 2, 20.0, np.load(sys.argv[2])[60:90])
_, plain, _ = clip_frames(studio, bank, job, ClipOptions(), encode=True)
with ThreadPoolExecutor(1) as pool:
    _, pooled, _ = clip_frames(studio, bank, job, ClipOptions(), pool=pool, encode=True)
assert all(np.array_equal(a.image, b.image) and a.png == b.png for a, b in zip(plain, pooled, strict=True))
print("same")
"""


def test_frames_are_the_same_with_and_without_the_helper_thread(avatars_dir: Path) -> None:
    done = run_blender_script(POOL_RUNNER, str(avatars_dir), str(WALK))
    assert done.returncode == 0 and done.stdout.strip().endswith("same"), done.stderr[-3000:]


def test_audit_counts_frames_without_the_body(shard_frames: tuple[Path, dict], tmp_path: Path) -> None:
    """`lavimo render audit` passes real rendered frames and finds a frame whose body was painted over."""
    import shutil

    import imageio.v3 as iio

    frames = tmp_path / "frames"
    shutil.copytree(shard_frames[0], frames)
    report = tmp_path / "audit.json"
    assert lavimo_render("audit", "--frames-dir", str(frames), "--json", str(report)).returncode == 0
    clean = json.loads(report.read_text())
    assert clean["ok"] and clean["frames"] == 8 * clean["clips"] > 0
    victim = sorted(frames.rglob("03.png"))[0]
    image = iio.imread(victim)
    image[...] = image[0, 0]  # only the studio's background colour: no body
    image[:, :, :3] = np.clip(image[:, :, :3].astype(int) + np.arange(512)[:, None, None] // 64, 0, 255)
    iio.imwrite(victim, image)
    done = lavimo_render("audit", "--frames-dir", str(frames), "--json", str(report), check=False)
    assert done.returncode == 1, done.stdout
    found = json.loads(report.read_text())
    assert found["without_body"] == [f"{victim.parent.name}/03.png"] and not found["blank"]
