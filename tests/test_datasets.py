"""Dataset loaders and shared pieces: splits, captions, manifest/shards, HumanML3D and KIT-ML layouts."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lavimo.datasets.build import PrepareOptions
from lavimo.datasets.captions import CONTENT_PHRASES, STYLE_PHRASES, captions_for
from lavimo.datasets.clips import complete_joints
from lavimo.datasets.humanml3d import parse_texts, prepare_humanml3d
from lavimo.datasets.kitml import KIT_TO_T2M, prepare_kitml
from lavimo.datasets.manifest import MANIFEST_COLUMNS, load_manifest, load_motion, write_manifest, write_shard
from lavimo.datasets.splits import dissimilar_subset, read_split, stratified_split
from lavimo.io import LavimoInputError, read_rejections
from lavimo.motion.humanml3d import features_to_joints, process_joints
from lavimo.motion.mirror import mirror_joints

# ----------------------------------------------------------------------------- splits


def _labelled(n_groups: int = 6, per_group: int = 40) -> tuple[list[str], list[str]]:
    keys = [f"g{g}_{i:03d}" for g in range(n_groups) for i in range(per_group)]
    return keys, [k.split("_")[0] for k in keys]


def test_stratified_split_is_deterministic_disjoint_and_stratified() -> None:
    keys, groups = _labelled()
    split = stratified_split(keys, groups, seed=0)
    assert split == stratified_split(list(reversed(keys)), list(reversed(groups)), seed=0)
    assert set(split) == set(keys) and set(split.values()) == {"train", "val", "test"}
    for group in set(groups):
        counts = Counter(split[k] for k in keys if k.startswith(group))
        assert (counts["train"], counts["val"], counts["test"]) == (32, 2, 6)  # 80 / 5 / 15 of 40
    assert stratified_split(keys, groups, seed=1) != split
    assert stratified_split(["a"], ["g"]) == {"a": "train"}


def test_dissimilar_subset_has_pairwise_distinct_labels() -> None:
    keys = [f"c{i % 5}_s{i % 3}_{i}" for i in range(60)]
    labels = {k: tuple(k.split("_")[:2]) for k in keys}
    subset = dissimilar_subset(keys, labels, seed=0)
    assert len(subset) == 15 and len({labels[k] for k in subset}) == 15 and set(subset) <= set(keys)
    assert subset == dissimilar_subset(list(reversed(keys)), labels, seed=0)
    assert len(dissimilar_subset(keys, labels, size=4)) == 4


# ----------------------------------------------------------------------------- captions


@pytest.mark.parametrize("content", sorted(CONTENT_PHRASES))
def test_captions_are_varied_distinct_and_deterministic(content: str) -> None:
    for style in STYLE_PHRASES:
        captions = captions_for(f"clip_{content}_{style}", content, style, n=3, seed=0)
        assert len(captions) == 3 and len(set(captions)) == 3
        assert captions == captions_for(f"clip_{content}_{style}", content, style, n=3, seed=0)
        assert all(c == c.strip() and "  " not in c for c in captions)
    assert captions_for("a", content, "happy") != captions_for("b", content, "happy")


# ----------------------------------------------------------------------------- manifest and shards


def test_manifest_and_shard_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    joints, features = rng.normal(size=(11, 22, 3)), rng.normal(size=(10, 263))
    write_shard(tmp_path / "motions" / "0000.npz", {"a": (joints, features)}, {"clips": ["a"]})
    frame = pd.DataFrame(
        [["a", "x.bvh", "train", 20, 11, [{"text": "a person walks", "start": 0.0, "end": 0.5}], 3, "", "0000"]],
        columns=list(MANIFEST_COLUMNS),
    )
    write_manifest(tmp_path, frame)
    loaded = load_manifest(tmp_path)
    assert loaded.loc[0, "texts"][0] == {"text": "a person walks", "start": 0.0, "end": 0.5}
    assert str(loaded["n_frames"].dtype) == "int32" and loaded.loc[0, "shard"] == "0000"
    j, f = load_motion(tmp_path, "a")
    np.testing.assert_allclose(j, joints.astype(np.float32))
    np.testing.assert_allclose(f, features.astype(np.float32))
    with pytest.raises(LavimoInputError, match="no clip"):
        load_motion(tmp_path, "b")


def test_complete_joints_restores_the_last_frame(humanml3d_fixture: Path) -> None:
    joints = np.load(humanml3d_fixture / "new_joints" / "012314.npy")
    features = np.load(humanml3d_fixture / "new_joint_vecs" / "012314.npy")
    completed = complete_joints(joints[:-1], features[:-1])
    assert completed.shape == joints.shape
    np.testing.assert_allclose(completed[-1], joints[-1], atol=1e-5)


# ----------------------------------------------------------------------------- HumanML3D layout


def _humanml3d_root(tmp_path: Path, fixture: Path) -> Path:
    root = tmp_path / "HumanML3D"
    for sub in ("new_joints", "new_joint_vecs"):
        (root / sub).mkdir(parents=True)
        shutil.copyfile(fixture / sub / "012314.npy", root / sub / "012314.npy")
    world = mirror_joints(np.load(fixture / "new_joints" / "012314.npy"))
    m_joints, m_features = process_joints(world)
    np.save(root / "new_joints" / "M012314.npy", m_joints)
    np.save(root / "new_joint_vecs" / "M012314.npy", m_features)
    for clip in ("000001", "000002"):
        shutil.copyfile(fixture / "new_joint_vecs" / "012314.npy", root / "new_joint_vecs" / f"{clip}.npy")
    (root / "texts").mkdir()
    (root / "texts" / "012314.txt").write_text(
        "a person walks forward and turns left#a/DET person/NOUN walk/VERB#0.0#0.0\n"
        "someone walks then turns#someone/PRON walk/VERB#0.0#0.0\n"
        "a person takes a step#a/DET person/NOUN take/VERB#1.0#3.5\n"
        "the person turns to the left#the/DET person/NOUN#1.0#3.5\n"
        "a person waves#a/DET person/NOUN wave/VERB#7.0#12.0\n"
    )
    (root / "texts" / "M012314.txt").write_text("a person walks forward and turns right#a/DET#0.0#0.0\n")
    (root / "texts" / "000002.txt").write_text("\n")  # 000001 has no caption file at all
    for name, ids in {"train": ["012314", "M012314", "000001"], "val": ["000002"], "test": []}.items():
        (root / f"{name}.txt").write_text("".join(f"{i}\n" for i in ids))
    shutil.copyfile(fixture / "Mean.npy", root / "Mean.npy")
    shutil.copyfile(fixture / "Std.npy", root / "Std.npy")
    return root


def test_parse_texts_format(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("a man walks#a/DET man/NOUN walk/VERB#0.0#0.0\na jump#a/DET jump/NOUN#1.5#nan\n")
    captions = parse_texts(path)
    assert [(c.text, c.start, c.end, c.line) for c in captions] == [("a man walks", 0, 0, 1), ("a jump", 1.5, 0, 2)]
    path.write_text("no separators here\n")
    with pytest.raises(LavimoInputError, match="line 1"):
        parse_texts(path)


def test_humanml3d_layout_loads_crops_and_rejects(tmp_path: Path, humanml3d_fixture: Path) -> None:
    root = _humanml3d_root(tmp_path, humanml3d_fixture)
    out = tmp_path / "out"
    result = prepare_humanml3d(root, out, PrepareOptions(), shard_size=2, workers=1)
    manifest = load_manifest(out).set_index("clip_id")
    assert sorted(manifest.index) == ["012314", "012314_20_70", "M012314"]

    whole = manifest.loc["012314"]
    assert (whole["n_frames"], whole["split"], whole["mirrored_from"]) == (171, "train", "")
    assert [t["text"] for t in whole["texts"]] == ["a person walks forward and turns left", "someone walks then turns"]
    assert whole["texts"][0]["end"] == pytest.approx(8.5)
    joints, features = load_motion(out, "012314")
    np.testing.assert_array_equal(features, np.load(humanml3d_fixture / "new_joint_vecs" / "012314.npy"))
    np.testing.assert_array_equal(joints[:-1], np.load(humanml3d_fixture / "new_joints" / "012314.npy"))

    sub = manifest.loc["012314_20_70"]  # 1.0-3.5 s -> feature frames [20, 70)
    assert sub["n_frames"] == 51 and len(sub["texts"]) == 2 and sub["texts"][0]["end"] == pytest.approx(2.5)
    sub_joints, sub_features = load_motion(out, "012314_20_70")
    np.testing.assert_array_equal(sub_features, features[20:70])
    np.testing.assert_allclose(sub_joints[:-1], features_to_joints(features[20:70]), atol=1e-5)
    assert manifest.loc["M012314", "mirrored_from"] == "012314"
    assert manifest.loc["M012314", "avatar"] == whole["avatar"]

    reasons = {r.item: r.reason for r in read_rejections(out / "rejected.csv")}
    assert "outside the clip" in reasons["012314:5"]
    assert "caption file missing" in reasons["000001"] and "caption file is empty" in reasons["000002"]
    assert len(result.rejected) == 3
    assert read_split(out / "splits" / "train.txt") == ["012314", "012314_20_70", "M012314"]
    assert (out / "Mean.npy").exists() and (out / "Std.npy").exists()

    no_mirror = prepare_humanml3d(root, tmp_path / "plain", PrepareOptions(mirror=False), workers=1)
    assert "M012314" not in set(no_mirror.manifest["clip_id"])


def test_missing_datasets_say_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(LavimoInputError, match=r"datasets\.humanml3d\.root.*github\.com/EricGuo5513/HumanML3D"):
        prepare_humanml3d(tmp_path / "nothing", tmp_path / "out")
    (tmp_path / "half" / "new_joint_vecs").mkdir(parents=True)
    with pytest.raises(LavimoInputError, match=r"missing texts, train\.txt"):
        prepare_humanml3d(tmp_path / "half", tmp_path / "out")
    with pytest.raises(LavimoInputError, match=r"datasets\.kitml\.root.*TMR"):
        prepare_kitml(tmp_path / "nothing", tmp_path / "out")


# ----------------------------------------------------------------------------- KIT-ML (TMR annotations.json)


def _tmr_root(tmp_path: Path, kitml_fixture: Path, fixture_features: np.ndarray) -> tuple[Path, dict]:
    annotations = json.loads((kitml_fixture / "annotations.json").read_text())
    root = tmp_path / "kitml"
    shutil.copytree(kitml_fixture / "splits", root / "splits")
    shutil.copyfile(kitml_fixture / "annotations.json", root / "annotations.json")
    for key in ("00001", "00002", "00004", "M00001", "M00002", "M00004"):
        frames = round(annotations[key]["duration"] * 20)
        motion = root / "motions" / "guoh3dfeats" / f"{annotations[key]['path']}.npy"
        motion.parent.mkdir(parents=True, exist_ok=True)
        np.save(motion, fixture_features[:frames])
    return root, annotations


def test_kitml_annotations_json(tmp_path: Path, kitml_fixture: Path, humanml3d_fixture: Path) -> None:
    features = np.load(humanml3d_fixture / "new_joint_vecs" / "012314.npy")
    root, annotations = _tmr_root(tmp_path, kitml_fixture, features)
    out = tmp_path / "out"
    prepare_kitml(root, out, PrepareOptions(), limit=3, workers=1)
    manifest = load_manifest(out).set_index("clip_id")
    assert sorted(manifest.index) == ["00001", "00002", "M00001", "M00002"]  # 00003: no motion file here
    reasons = {r.item: r.reason for r in read_rejections(out / "rejected.csv")}
    assert "motion file missing" in reasons["00003"] and "motion file missing" in reasons["M00003"]
    row = manifest.loc["00002"]
    assert [t["text"] for t in row["texts"]] == [a["text"] for a in annotations["00002"]["annotations"]]
    assert row["n_frames"] == int(5.31 * 20) + 1 and row["split"] == "train"
    assert manifest.loc["M00001", "mirrored_from"] == "00001"
    joints, feats = load_motion(out, "00002")
    np.testing.assert_array_equal(feats, features[: int(5.31 * 20)])
    assert joints.shape == (feats.shape[0] + 1, 22, 3)
    assert read_split(out / "splits" / "nsim_test.txt") == []  # nsim ids are not among the prepared ones


def test_kitml_spans_and_out_of_range_annotations(tmp_path: Path, kitml_fixture: Path, humanml3d_fixture: Path) -> None:
    features = np.load(humanml3d_fixture / "new_joint_vecs" / "012314.npy")
    root, annotations = _tmr_root(tmp_path, kitml_fixture, features)
    seg = annotations["00004"]["annotations"]
    seg.append({"seg_id": "00004_2", "text": "a person stops", "start": 2.0, "end": 4.0})
    seg.append({"seg_id": "00004_3", "text": "a person flies", "start": 5.0, "end": 9.0})
    (root / "annotations.json").write_text(json.dumps(annotations))
    (root / "splits" / "train.txt").write_text("00004\nM00004\n")
    for name in ("val", "test"):
        (root / "splits" / f"{name}.txt").write_text("")
    out = tmp_path / "out"
    prepare_kitml(root, out, PrepareOptions(), workers=1)
    manifest = load_manifest(out).set_index("clip_id")
    assert sorted(manifest.index) == ["00004", "00004_40_80", "M00004"]
    assert len(manifest.loc["00004", "texts"]) == 2 and manifest.loc["00004_40_80", "n_frames"] == 41
    reasons = {r.item: r.reason for r in read_rejections(out / "rejected.csv")}
    assert set(reasons) == {"00004:00004_3"} and "outside the clip" in reasons["00004:00004_3"]


# ----------------------------------------------------------------------------- KIT-ML (Guo's 251-dim release)


def _kit_features(kit_joints: np.ndarray) -> np.ndarray:
    """251-dim features whose recovery gives ``kit_joints`` (yaw fixed, root moving in XZ): a synthetic release."""
    n = len(kit_joints)
    features = np.zeros((n, 251))
    root = kit_joints[:, 0]
    features[:-1, 1:3] = (root[1:] - root[:-1])[:, [0, 2]]
    features[:, 3] = root[:, 1]
    ric = kit_joints[:, 1:] - root[:, None] * np.array([1.0, 0.0, 1.0])
    features[:, 4 : 4 + 60] = ric.reshape(n, 60)
    return features


def test_kitml_guo_layout_maps_21_joints_to_t2m(tmp_path: Path, humanml3d_fixture: Path) -> None:
    t2m = np.load(humanml3d_fixture / "new_joints" / "012314.npy").astype(np.float64)[::8]  # 20 -> 2.5 fps
    to_kit = {next(iter(w)): j for j, w in enumerate(KIT_TO_T2M) if len(w) == 1}
    to_kit |= {15: 11, 20: 10}  # toe tips (unused by the mapping): at the feet
    kit_joints = np.stack([t2m[:, to_kit[k]] for k in range(21)], axis=1) * 1000.0  # mm, like the release
    root = tmp_path / "KIT-ML"
    (root / "new_joint_vecs").mkdir(parents=True)
    np.save(root / "new_joint_vecs" / "03950.npy", _kit_features(kit_joints)[:20])  # 20 frames at 12.5 fps
    (root / "texts").mkdir()
    (root / "texts" / "03950.txt").write_text("a person walks#a/DET person/NOUN walk/VERB#0.0#0.0\n")
    (root / "train.txt").write_text("03950\n")
    (root / "val.txt").write_text("")
    (root / "test.txt").write_text("")
    out = tmp_path / "out"
    prepare_kitml(root, out, PrepareOptions(), workers=1)
    manifest = load_manifest(out)
    assert list(manifest["clip_id"]) == ["03950"]
    joints, features = load_motion(out, "03950")
    assert joints.shape == (31, 22, 3) and features.shape == (30, 263)  # 19 / 12.5 s = 1.52 s at 20 fps: 31
    assert (joints[:, 15, 1] > joints[:, 0, 1]).all() and (joints[:, 0, 1] > joints[:, 7, 1]).all()
    assert 0.7 < joints[0, 0, 1] < 1.2  # retargeted to the metric target skeleton
