"""The bundled Bandai-Namco demo set: bundle, labels, captions, prepare (manifest, shards, splits), bad inputs."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lavimo.avatars.assign import avatar_for_clip
from lavimo.commands import prepare as prepare_command
from lavimo.datasets.build import PrepareOptions, Unit
from lavimo.datasets.bundle import NOTICE, build_demo_bundle, read_bundle_index, unpack_bundle
from lavimo.datasets.captions import CONTENT_PHRASES, STYLE_PHRASES
from lavimo.datasets.demo import (
    demo_splits,
    demo_units,
    limit_units,
    prepare_demo,
    process_demo_clip,
    read_label_list,
)
from lavimo.datasets.manifest import MANIFEST_COLUMNS, iter_shard, load_manifest, load_motion, shard_path
from lavimo.datasets.splits import read_split
from lavimo.io import read_rejections

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "resources" / "demo"
SHARED_README = REPO.parent / "shared" / "README.md"


@pytest.fixture(scope="module")
def demo_raw(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The bundle unpacked once for this module."""
    return unpack_bundle(BUNDLE, tmp_path_factory.mktemp("demo") / "raw")


def _clip_files(raw: dict[str, Path], stems: list[str]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for stem in stems:
        name = stem.split("_")[0]
        out.setdefault(name, []).extend(raw[name] / "data" / f"{stem}.{ext}" for ext in ("bvh", "json"))
    return out


def make_source(root: Path, raw: dict[str, Path], stems: list[str]) -> Path:
    """A Bandai-Namco-style source tree (LICENSE, cfg/, data/) holding only ``stems``."""
    for name, files in _clip_files(raw, stems).items():
        (root / name / "data").mkdir(parents=True)
        shutil.copytree(raw[name] / "cfg", root / name / "cfg")
        shutil.copyfile(BUNDLE / f"LICENSE-{name}", root / name / "LICENSE")
        for path in files:
            shutil.copyfile(path, root / name / "data" / path.name)
    return root


def test_bundle_is_small_complete_and_attributed() -> None:
    index = read_bundle_index(BUNDLE)
    archives = index["archives"]
    assert {n: (a["bvh"], a["labels"]) for n, a in archives.items()} == {
        "dataset-1": (174, 174),
        "dataset-2": (280, 280),
    }
    total = sum(p.stat().st_size for p in BUNDLE.iterdir())
    assert total <= 20 * 1024 * 1024
    for name in archives:
        assert "Attribution-NonCommercial 4.0" in (BUNDLE / f"LICENSE-{name}").read_text()
    attribution = (BUNDLE / "ATTRIBUTION.md").read_text()
    assert NOTICE in attribution
    if SHARED_README.exists():  # the notice is the one the data README requires, verbatim
        assert NOTICE in SHARED_README.read_text()


def test_label_indices_are_zero_based_and_match_file_names(demo_raw: dict[str, Path]) -> None:
    units, rejected = demo_units(demo_raw)
    assert len(units) == 454 and rejected == []
    contents = read_label_list(demo_raw["dataset-1"] / "cfg" / "content_label.txt", "dataset-1")
    raw_labels = json.loads((demo_raw["dataset-1"] / "data" / "dataset-1_bow_active_001.json").read_text())
    assert raw_labels["content"] == 6 and contents[6] == "bow"  # 0-based: index 6 is the 7th line
    for unit in units:
        _, content, style, _ = unit.key.split("_")
        assert (unit.payload["content"], unit.payload["style"]) == (content, style)
        assert content in CONTENT_PHRASES and style in STYLE_PHRASES


def test_every_bundled_label_has_phrases(demo_raw: dict[str, Path]) -> None:
    for name, folder in demo_raw.items():
        assert set(read_label_list(folder / "cfg" / "content_label.txt", name)) <= CONTENT_PHRASES.keys()
        assert set(read_label_list(folder / "cfg" / "style_label.txt", name)) <= STYLE_PHRASES.keys()


def test_bundle_build_is_deterministic(tmp_path: Path, demo_raw: dict[str, Path]) -> None:
    src = make_source(tmp_path / "src", demo_raw, ["dataset-1_bow_normal_001", "dataset-2_run_normal_001"])
    first = build_demo_bundle(src, tmp_path / "a")
    second = build_demo_bundle(src, tmp_path / "b")
    assert first == second
    for name in ("dataset-1.tar.xz", "dataset-2.tar.xz", "ATTRIBUTION.md", "bundle.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    raw = unpack_bundle(tmp_path / "a", tmp_path / "raw")
    bvh = raw["dataset-1"] / "data" / "dataset-1_bow_normal_001.bvh"
    assert bvh.read_bytes() == (src / "dataset-1" / "data" / bvh.name).read_bytes()


def test_limit_takes_clips_round_robin_over_contents(demo_raw: dict[str, Path]) -> None:
    units, _ = demo_units(demo_raw)
    picked = limit_units(units, 12)
    assert len(picked) == 12 and len({u.payload["content"] for u in picked}) == 12


def test_a_limited_demo_is_split_by_dataset_and_keeps_test_clips(demo_raw: dict[str, Path]) -> None:
    """Four clips of four contents: stratified by content every group of one stays in train; by dataset, one of the
    four goes to test. The whole demo is still stratified by content: every content of 15 or more has test clips."""
    units, _ = demo_units(demo_raw)
    picked = limit_units(units, 4)
    assert set(demo_splits(picked, 0).values()) == {"train"}
    limited = demo_splits(picked, 0, limited=True)
    assert sorted(limited) == sorted(u.key for u in picked)
    assert sorted(limited.values()) == ["test", "train", "train", "train"]
    full = demo_splits(units, 0)
    contents: dict[tuple[str, str], list[str]] = {}
    for unit in units:
        contents.setdefault((unit.payload["dataset"], unit.payload["content"]), []).append(full[unit.key])
    large = [splits for splits in contents.values() if len(splits) >= 15]
    assert len(large) == 20 and all("test" in splits for splits in large)


def test_mirrored_walk_left_clip_gets_right_captions(demo_raw: dict[str, Path]) -> None:
    units, _ = demo_units(demo_raw)
    unit = next(u for u in units if u.key == "dataset-1_walk-left_happy_001")
    result = process_demo_clip(unit, PrepareOptions(n_captions=4))
    source, mirror = result.clips
    assert mirror.clip_id == "M" + source.clip_id and mirror.mirrored_from == source.clip_id
    texts = [t["text"] for t in source.texts]
    assert len(set(texts)) == 4 and all("left" in t and "right" not in t for t in texts)
    assert [t["text"] for t in mirror.texts] == [t.replace("left", "right") for t in texts]
    assert source.joints.shape[0] == source.features.shape[0] + 1 == mirror.joints.shape[0]
    # the mirror's body walks the other way: x of the root displacement flips sign
    assert np.sign(source.joints[-1, 0, 0]) == -np.sign(mirror.joints[-1, 0, 0])
    again = process_demo_clip(unit, PrepareOptions(n_captions=4))
    assert [t["text"] for t in again.clips[0].texts] == texts


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lavimo prepare")
    prepare_command.register(parser)
    return parser


def test_prepare_demo_cli_manifest_shards_splits_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--bundle", str(BUNDLE), "--limit", "16", "--shard-size", "16"]
    args = _parser().parse_args([*argv, "--workers", "2"])
    assert args.func(args) == 0
    assert "32 clips, 96 captions, 0 rejected" in capsys.readouterr().out

    manifest = load_manifest(out)
    assert list(manifest.columns) == list(MANIFEST_COLUMNS) and len(manifest) == 32
    assert manifest["fps"].eq(20).all() and manifest["avatar"].between(0, 12).all()
    assert set(manifest["split"]) <= {"train", "val", "test"}
    assert sorted(manifest["shard"].unique()) == ["0000", "0001"]  # 8 sources + 8 mirrors per shard
    rows = manifest.set_index("clip_id")
    for clip_id, row in rows.iterrows():
        joints, features = load_motion(out, clip_id)
        assert joints.shape == (row["n_frames"], 22, 3) and features.shape == (row["n_frames"] - 1, 263)
        assert joints.dtype == features.dtype == np.float32
        texts = list(row["texts"])
        assert len(texts) >= 3 and len({t["text"] for t in texts}) == len(texts)
        assert all(t["start"] == 0.0 and t["end"] == pytest.approx((row["n_frames"] - 1) / 20) for t in texts)
        assert Path(row["source"]).name == f"{clip_id.removeprefix('M')}.bvh"
        if clip_id.startswith("M"):
            source = rows.loc[row["mirrored_from"]]
            assert row["mirrored_from"] == clip_id[1:]
            assert (row["split"], row["avatar"], row["shard"]) == (source["split"], source["avatar"], source["shard"])
        else:
            assert row["mirrored_from"] == "" and row["avatar"] == avatar_for_clip(clip_id, 0)
    assert [c for c, _, _ in iter_shard(out, "0000")] == list(manifest.loc[manifest["shard"] == "0000", "clip_id"])

    lists = {name: read_split(out / "splits" / f"{name}.txt") for name in ("train", "val", "test", "all")}
    assert sorted(lists["train"] + lists["val"] + lists["test"]) == sorted(lists["all"]) == sorted(manifest["clip_id"])
    assert lists["test"]  # a limited demo keeps test clips
    nsim = read_split(out / "splits" / "nsim_test.txt")
    assert set(nsim) <= set(lists["test"]) and not any(c.startswith("M") for c in nsim)
    assert len({tuple(c.split("_")[1:3]) for c in nsim}) == len(nsim)

    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "motions").iterdir()}
    stamps["manifest"] = (out / "manifest.parquet").stat().st_mtime_ns
    args = _parser().parse_args([*argv, "--workers", "1"])
    assert args.func(args) == 0
    assert "shards built 0, reused 2" in capsys.readouterr().out
    after = {p.name: p.stat().st_mtime_ns for p in (out / "motions").iterdir()}
    after["manifest"] = (out / "manifest.parquet").stat().st_mtime_ns
    assert after == stamps
    pd.testing.assert_frame_equal(load_manifest(out), manifest)

    args = _parser().parse_args([*argv, "--workers", "1", "--limit", "8", "--captions", "4"])
    assert args.func(args) == 0
    assert "16 clips, 64 captions" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "motions").iterdir()) == ["0000.npz"]  # stale shards removed


def _bvh_lines(raw: dict[str, Path], stem: str) -> list[str]:
    return (raw[stem.split("_")[0]] / "data" / f"{stem}.bvh").read_text().splitlines(keepends=True)


def _frames_header(lines: list[str]) -> int:
    return next(i for i, line in enumerate(lines) if line.startswith("Frames:"))


def test_bad_inputs_are_rejected_and_the_rest_proceeds(tmp_path: Path, demo_raw: dict[str, Path]) -> None:
    good = "dataset-2_raise-up-left-hand_active_001"
    src = make_source(tmp_path / "src", demo_raw, ["dataset-1_bow_normal_001", good])
    data = src / "dataset-2" / "data"
    lines = _bvh_lines(demo_raw, good)
    header = _frames_header(lines)
    labels = (data / f"{good}.json").read_text()

    def add(stem: str, bvh: str | None, json_text: str | None = labels) -> None:
        if bvh is not None:
            (data / f"{stem}.bvh").write_text(bvh)
        if json_text is not None:
            (data / f"{stem}.json").write_text(json_text)

    add("dataset-2_raise-up-left-hand_active_101", "".join(lines[:-5]))  # truncated
    nan = lines.copy()
    nan[header + 5] = "nan " + nan[header + 5].split(" ", 1)[1]
    add("dataset-2_raise-up-left-hand_active_102", "".join(nan))
    short = [*lines[:header], "Frames:\t20\n", *lines[header + 1 : header + 22]]  # 20 frames at 30 fps
    add("dataset-2_raise-up-left-hand_active_103", "".join(short))
    unknown = "".join(lines).replace("Hips", "Becken").replace("Spine", "Ruecken").replace("Shoulder", "Schulter")
    add("dataset-2_raise-up-left-hand_active_104", unknown)
    add("dataset-2_raise-up-left-hand_active_105", "".join(lines), json_text=None)  # no labels
    add("dataset-2_raise-up-left-hand_active_106", "".join(lines), json_text="")  # empty labels
    add("dataset-2_raise-up-left-hand_active_107", "HIERARCHY\nROOT x\n{\n")  # malformed

    build_demo_bundle(src, tmp_path / "bundle")
    out = tmp_path / "out"
    result = prepare_demo(out, tmp_path / "bundle", shard_size=4, workers=1)
    assert sorted(load_manifest(out)["clip_id"]) == sorted([good, "dataset-1_bow_normal_001"] * 1 + [
        "M" + good, "Mdataset-1_bow_normal_001"])  # fmt: skip
    reasons = {r.item.rsplit("_", 1)[1]: (r.source, r.reason) for r in read_rejections(out / "rejected.csv")}
    assert {r.item for r in result.rejected} == {f"dataset-2_raise-up-left-hand_active_{i}" for i in range(101, 108)}
    assert "truncated" in reasons["101"][1]
    assert "NaN" in reasons["102"][1]
    assert "too short" in reasons["103"][1]
    assert "unknown skeleton" in reasons["104"][1]
    assert "label file missing" in reasons["105"][1] and reasons["105"][0].endswith("_105.json")
    assert "empty" in reasons["106"][1]
    assert "HIERARCHY" in reasons["107"][1] and reasons["107"][0].endswith("_107.bvh")
    leftovers = [p for p in out.rglob("*") if p.name.startswith(".") and p.is_file() and "tmp" in p.name]
    assert leftovers == []
    with np.load(shard_path(out, "0000")) as shard:
        assert all(np.isfinite(shard[k]).all() for k in shard.files if not k.startswith("__"))


def test_unit_fingerprint_follows_inputs(tmp_path: Path) -> None:
    from lavimo.datasets.build import fingerprint

    path = tmp_path / "a.bvh"
    path.write_text("x")
    unit = Unit("a", str(path), {"content": "walk"}, (str(path),))
    before = fingerprint([unit], process_demo_clip, PrepareOptions())
    assert fingerprint([unit], process_demo_clip, PrepareOptions()) == before
    assert fingerprint([unit], process_demo_clip, PrepareOptions(seed=1)) != before
    path.write_text("xy")
    assert fingerprint([unit], process_demo_clip, PrepareOptions()) != before
