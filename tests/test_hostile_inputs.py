"""Hostile input (issue 26): every bad input ends as one `lavimo: error:` line and exit 2, or as a rejected item
recorded while the batch goes on; never a traceback, never exit 0 with empty or garbage output."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from lavimo.cli import build_parser, main
from lavimo.datasets.demo import read_label_list
from lavimo.datasets.humanml3d import parse_texts
from lavimo.datasets.manifest import MANIFEST, load_manifest, write_manifest
from lavimo.io import LavimoInputError, read_rejections

REPO = Path(__file__).resolve().parents[1]
WALK_BVH = REPO / "tests" / "data" / "bvh" / "bandai-namco_dataset-1_walk_normal_001_frames0-44.bvh"
HUMANML3D = REPO / "tests" / "data" / "humanml3d"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`lavimo ARGV` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as done:  # argparse
        code = int(done.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    """The single `lavimo: error:` line of ``err`` (asserted to be all there is)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lavimo: error: "), err[-2000:]
    return lines[0]


@contextlib.contextmanager
def read_only_folder(folder: Path) -> Iterator[Path]:
    """An empty read-only file system mounted on ``folder`` (a tmpfs: even root cannot write there). Mounting needs
    root or password-less sudo; without it the test is skipped."""
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [*sudo, "mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs on {folder}: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run([*sudo, "umount", "--lazy", str(folder)], check=False)


def small_dataset(folder: Path) -> Path:
    """A prepared-dataset folder whose manifest lists one clip, and a frames folder holding that clip's folder."""
    row = {
        "clip_id": "clip0", "source": "x.bvh", "split": "train", "fps": 20, "n_frames": 40,
        "texts": [{"text": "a person walks", "start": 0.0, "end": 1.95}], "avatar": 0, "mirrored_from": "",
        "shard": "0000",
    }  # fmt: skip
    write_manifest(folder, pd.DataFrame([row]))
    (folder / "frames" / "clip0").mkdir(parents=True)
    return folder


# ----------------------------------------------------------------------------- a. a garbage manifest.parquet


@pytest.mark.parametrize("content", ["empty", "text", "garbage", "folder", "other table"])
def test_a_garbage_manifest_is_one_line_saying_to_rerun_prepare(
    content: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ds" / MANIFEST
    path.parent.mkdir()
    if content == "folder":
        path.mkdir()
    elif content == "other table":
        pd.DataFrame({"shard": ["0000"]}).to_parquet(path)
    else:
        path.write_bytes(
            {"empty": b"", "text": b"clip_id,split\nx,train\n", "garbage": b"PAR1" + b"\xff" * 64 + b"PAR1"}[content]
        )
    with pytest.raises(LavimoInputError, match=r"rerun `lavimo prepare`"):
        load_manifest(path.parent)
    code, _, err = run(
        ["features", "sentences", "--dataset-dir", str(path.parent), "--out", str(tmp_path / "s")], capsys
    )
    line = one_error_line(err)
    assert code == 2 and str(path) in line and "lavimo prepare" in line and len(line) < 400
    assert not (tmp_path / "s").exists()


# ----------------------------------------------------------------------------- b, c. caption times and text


def humanml3d_root(tmp_path: Path, texts: dict[str, str]) -> Path:
    """A HumanML3D folder whose clips (all the real sample 012314's motion) have the given caption files."""
    root = tmp_path / "HumanML3D"
    (root / "new_joint_vecs").mkdir(parents=True)
    (root / "texts").mkdir()
    for clip_id, text in texts.items():
        shutil.copyfile(HUMANML3D / "new_joint_vecs" / "012314.npy", root / "new_joint_vecs" / f"{clip_id}.npy")
        (root / "texts" / f"{clip_id}.txt").write_text(text, encoding="utf-8")
    (root / "train.txt").write_text("".join(f"{c}\n" for c in texts))
    (root / "val.txt").write_text("")
    (root / "test.txt").write_text("")
    return root


def test_b_bad_caption_times_reject_their_caption_and_the_batch_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """inf, NaN, negative, out-of-clip and sub-frame times: each caption is rejected with its reason (012314 lasts
    8.5 s); NaN counts as 0 as in HumanML3D's loaders, so NaN-NaN is a whole-clip caption."""
    lines = [
        "a person walks#a/DET#0.0#0.0",  # 1: whole clip
        "a person jumps#a/DET#inf#inf",  # 2
        "a person hops#a/DET#0.0#inf",  # 3
        "a person spins#a/DET#-inf#1.0",  # 4
        "a person sits#a/DET#1e300#1e301",  # 5
        "a person runs#a/DET#-1.0#2.0",  # 6
        "a person turns#a/DET#2.0#99.0",  # 7
        "a person stops#a/DET#1.0#1.01",  # 8: no whole frame
        "a person waves#a/DET#nan#nan",  # 9: whole clip
        "a person bows#a/DET#1.0#3.5",  # 10: sub-clip [20, 70)
    ]
    root = humanml3d_root(tmp_path, {"000001": "\n".join(lines) + "\n"})
    out = tmp_path / "out"
    code, stdout, err = run(["prepare", "humanml3d", "--root", str(root), "--out", str(out), "--workers", "1"], capsys)
    assert code == 0 and "Traceback" not in err and "error" not in err, err[-2000:]
    manifest = load_manifest(out).set_index("clip_id")
    assert sorted(manifest.index) == ["000001", "000001_20_70"]
    assert [t["text"] for t in manifest.loc["000001", "texts"]] == ["a person walks", "a person waves"]
    reasons = {r.item: r.reason for r in read_rejections(out / "rejected.csv")}
    assert set(reasons) == {f"000001:{n}" for n in (2, 3, 4, 5, 6, 7, 8)}, reasons
    for line in (2, 3, 4):
        assert "is not a finite number" in reasons[f"000001:{line}"]
    for line in (5, 6, 7):
        assert "outside the clip" in reasons[f"000001:{line}"]
    assert "spans no whole frame" in reasons["000001:8"]
    assert "7 rejected" in stdout


def test_c_invisible_or_nul_captions_are_refused_and_format_characters_removed(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("\ufeffa man walks#a/DET#0.0#0.0\nsomeone\u200b runs\u2060#x/X#0.0#0.0\n\u200b\n", encoding="utf-8")
    assert [c.text for c in parse_texts(path)] == ["a man walks", "someone runs"]
    path.write_text("a man walks#a/DET#0.0#0.0\n\u200b\ufeff\u2060#x/X#0.0#0.0\n", encoding="utf-8")
    with pytest.raises(LavimoInputError, match="line 2"):
        parse_texts(path)
    path.write_text("a man\x00 walks#a/DET#0.0#0.0\n", encoding="utf-8")
    with pytest.raises(LavimoInputError, match="line 1: holds a NUL character"):
        parse_texts(path)


def test_c_a_clip_with_an_invisible_or_nul_caption_is_rejected_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    texts = {
        "000001": "a person walks#a/DET#0.0#0.0\n",
        "000002": "\u200b\u200b#x/X#0.0#0.0\n",
        "000003": "a person\x00 runs#a/DET#0.0#0.0\n",
    }
    root, out = humanml3d_root(tmp_path, texts), tmp_path / "out"
    code, _, err = run(["prepare", "humanml3d", "--root", str(root), "--out", str(out), "--workers", "1"], capsys)
    assert code == 0 and "Traceback" not in err and "error" not in err, err[-2000:]
    assert list(load_manifest(out)["clip_id"]) == ["000001"]
    reasons = {r.item: r.reason for r in read_rejections(out / "rejected.csv")}
    assert set(reasons) == {"000002", "000003"} and "NUL character" in reasons["000003"]


def test_c_kitml_annotations_with_bad_text_or_times_are_rejected_one_by_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "kitml"
    motions = root / "motions" / "guoh3dfeats"
    motions.mkdir(parents=True)
    shutil.copyfile(HUMANML3D / "new_joint_vecs" / "012314.npy", motions / "00001.npy")
    annotations = [
        {"seg_id": "00001_0", "text": "a person walks", "start": 0.0, "end": 8.5},
        {"seg_id": "00001_1", "text": "\u200b\ufeff ", "start": 0.0, "end": 8.5},
        {"seg_id": "00001_2", "text": "a man\x00 runs", "start": 0.0, "end": 8.5},
        {"seg_id": "00001_3", "text": "a man jumps", "start": float("inf"), "end": float("inf")},
        {"seg_id": "00001_4", "text": "a man hops", "start": None, "end": 2.0},
        {"seg_id": "00001_5", "text": 5, "start": 0.0, "end": 8.5},
        {"seg_id": "00001_6", "text": "a man spins", "start": float("nan"), "end": 2.0},
        "not an annotation",
    ]
    entry = {"path": "00001", "duration": 8.5, "annotations": annotations}
    (root / "annotations.json").write_text(json.dumps({"00001": entry}))  # Infinity and NaN, as json writes them
    (root / "splits").mkdir()
    for name, ids in {"train": "00001\n", "val": "", "test": ""}.items():
        (root / "splits" / f"{name}.txt").write_text(ids)
    out = tmp_path / "out"
    code, _, err = run(["prepare", "kitml", "--root", str(root), "--out", str(out), "--workers", "1"], capsys)
    assert code == 0 and "Traceback" not in err and "error" not in err, err[-2000:]
    manifest = load_manifest(out)
    assert list(manifest["clip_id"]) == ["00001"]
    assert [t["text"] for t in manifest["texts"][0]] == ["a person walks"]
    reasons = {r.item: r.reason for r in read_rejections(out / "rejected.csv")}
    assert set(reasons) == {f"00001:00001_{n}" for n in range(1, 7)} | {"00001:#7"}, reasons
    assert "empty caption" in reasons["00001:00001_1"] and "NUL character" in reasons["00001:00001_2"]
    assert "not a finite number" in reasons["00001:00001_3"] and "bad start/end times" in reasons["00001:00001_4"]
    assert "not text" in reasons["00001:00001_5"] and "not a finite number" in reasons["00001:00001_6"]


def test_c_demo_label_lists_lose_format_characters_and_refuse_nul(tmp_path: Path) -> None:
    path = tmp_path / "content_label.txt"
    path.write_text("\ufeffdataset-1_walk\ndataset-1_\u200brun\n", encoding="utf-8")
    assert read_label_list(path, "dataset-1") == ["walk", "run"]
    path.write_text("\u200b \ufeff\n", encoding="utf-8")
    with pytest.raises(LavimoInputError, match="label list is empty"):
        read_label_list(path, "dataset-1")
    path.write_bytes(b"dataset-1_walk\x00\n")
    with pytest.raises(LavimoInputError, match="NUL"):
        read_label_list(path, "dataset-1")


# ----------------------------------------------------------------------------- d. bounded numbers, at parse time

FEATURES_BUILD = ["features", "build", "--dataset-dir", "ds", "--frames-dir", "frames", "--out", "out"]
RENDER_CLIPS = ["render", "clips", "--joints", "j.npy", "--avatars", "a", "--frames-dir", "f"]
PREPARE_DEMO = ["prepare", "demo", "--out", "out"]
PREPARE_AMASS = ["prepare", "amass", "--amass-root", "a", "--smplh-dir", "s", "--index-csv", "i", "--out", "o"]


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        ([*FEATURES_BUILD, "--views", "0"], "--views"),
        ([*FEATURES_BUILD, "--frames", "0"], "--frames"),
        ([*FEATURES_BUILD, "--hflip-p", "7"], "--hflip-p"),
        ([*FEATURES_BUILD, "--hflip-p", "nan"], "--hflip-p"),
        ([*FEATURES_BUILD, "--batch-size", "0"], "--batch-size"),
        ([*FEATURES_BUILD, "--workers", "-1"], "--workers"),
        ([*FEATURES_BUILD, "--frame-size", "-5"], "--frame-size"),
        ([*FEATURES_BUILD, "--limit", "0"], "--limit"),
        (["features", "sentences", "--dataset-dir", "ds", "--out", "o", "--batch-size", "0"], "--batch-size"),
        ([*PREPARE_DEMO, "--min-seconds", "nan"], "--min-seconds"),
        ([*PREPARE_DEMO, "--min-seconds", "inf"], "--min-seconds"),
        ([*PREPARE_DEMO, "--min-seconds", "-1"], "--min-seconds"),
        ([*PREPARE_DEMO, "--workers", "0"], "--workers"),
        (["prepare", "humanml3d", "--root", "r", "--out", "o", "--workers", "-2"], "--workers"),
        ([*PREPARE_AMASS, "--workers", "0"], "--workers"),
        ([*RENDER_CLIPS, "--fps", "0"], "--fps"),
        ([*RENDER_CLIPS, "--fps", "inf"], "--fps"),
        ([*RENDER_CLIPS, "--avatar", "13"], "--avatar"),
        ([*RENDER_CLIPS, "--num-frames", "0"], "--num-frames"),
        ([*RENDER_CLIPS, "--mesh-detail", "0"], "--mesh-detail"),
        ([*RENDER_CLIPS, "--resolution", "0"], "--resolution"),
        ([*RENDER_CLIPS, "--threads", "-1"], "--threads"),
        (["render", "audit", "--frames-dir", "f", "--resolution", "-512"], "--resolution"),
    ],
)
def test_d_out_of_range_numbers_are_refused_while_parsing(
    argv: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused by argparse (exit 2, the option named), so nothing is loaded or created."""
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(argv)
    assert done.value.code == 2
    assert f"argument {option}" in capsys.readouterr().err


def test_d_features_build_views_0_creates_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = small_dataset(tmp_path / "ds")
    argv = ["features", "build", "--dataset-dir", str(ds), "--frames-dir", str(ds / "frames"), "--out"]
    code, _, err = run([*argv, str(ds / "features"), "--views", "0", "--encoder", "efficientnet-lite0"], capsys)
    assert code == 2 and "argument --views" in err and not (ds / "features").exists()


# ----------------------------------------------------------------------------- e. render audit and one bad meta.json


def write_clip(frames: Path, name: str, meta: str, size: int = 64) -> None:
    """A rendered-clip folder: meta.json as given and one frame, a grey studio with a red body in the middle."""
    (frames / name).mkdir(parents=True)
    (frames / name / "meta.json").write_text(meta)
    image = np.full((size, size, 3), 128, dtype=np.uint8)
    image[size // 4 : 3 * size // 4, size // 3 : 2 * size // 3] = (200, 40, 40)
    Image.fromarray(image).save(frames / name / "00.png")


def test_e_audit_records_a_garbage_meta_json_and_audits_the_other_clips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = tmp_path / "frames"
    write_clip(frames, "a_good", json.dumps({"indices": [3]}))
    write_clip(frames, "b_garbage", "\x89PNG not json {")
    write_clip(frames, "c_list", "[1, 2]")
    write_clip(frames, "d_good", json.dumps({"indices": [3]}))
    report = tmp_path / "audit.json"
    argv = ["render", "audit", "--frames-dir", str(frames), "--resolution", "64", "--json", str(report)]
    code, out, err = run(argv, capsys)
    assert code == 1 and err == "", err[-2000:]
    assert "4 clips, 4 frames" in out and "2 with an unreadable meta.json" in out
    audit = json.loads(report.read_text())
    assert audit["bad_meta"] == ["b_garbage: meta.json is not JSON", "c_list: meta.json lacks its frame 'indices' list"]
    assert audit["clips"] == 4 and audit["frames"] == 4 and not audit["without_body"] and not audit["ok"]


@pytest.mark.parametrize("where", ["missing", "empty", "a file"])
def test_e_h_audit_of_a_missing_or_empty_frames_folder_fails(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = tmp_path / "frames"
    if where == "empty":
        frames.mkdir()
    elif where == "a file":
        frames.write_text("")
    code, _, err = run(["render", "audit", "--frames-dir", str(frames)], capsys)
    assert code == 2 and str(frames) in one_error_line(err)


# ----------------------------------------------------------------------------- f. short BVH parse errors


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("CHANNELS 6 Xposition", "CHANNELS 999999999 Xposition", "CHANNELS 999999999, expected 0 to 6"),
        ("CHANNELS 6 Xposition", "CHANNELS 6 " + "w" * 100_000 + " Xposition", "CHANNELS 6 followed by ['www"),
        ("CHANNELS 6 Xposition", "CHANNELS 7 Xposition", "CHANNELS 7, expected 0 to 6"),
        ("CHANNELS 6 Xposition", "CHANNELS six Xposition", "is not a number"),
        ("OFFSET 0 93.9241 -3", "OFFSET 0 " + "9" * 5000 + "x -3", "OFFSET value"),
        ("JOINT Hips\n  {", "JOINT Hips\n  " + "y" * 100_000, "expected '{'"),
        ("OFFSET 0 93.9241 -3", "OFFSET 0 93.9241 -3 " + "z" * 100_000, "unexpected token"),
    ],
)
def test_f_bvh_errors_are_short_and_name_the_file_once(
    old: str, new: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = WALK_BVH.read_text()
    assert old in text
    bvh = tmp_path / "clip.bvh"
    bvh.write_text(text.replace(old, new, 1))
    code, _, err = run(["motion", "from-bvh", str(bvh), str(tmp_path / "out.npz")], capsys)
    line = one_error_line(err)
    assert code == 2 and words in line and line.count(str(bvh)) == 1 and len(line) < 200 + len(str(bvh)), line[:500]


# ----------------------------------------------------------------------------- g. outputs that cannot be written


def motion_commands() -> dict[str, list[str]]:
    """Each `lavimo motion` command with a real input, without its output."""
    joints, features = HUMANML3D / "new_joints" / "012314.npy", HUMANML3D / "new_joint_vecs" / "012314.npy"
    return {
        "from-bvh": ["motion", "from-bvh", str(WALK_BVH)],
        "features": ["motion", "features", str(joints)],
        "recover": ["motion", "recover", str(features)],
        "mirror": ["motion", "mirror", str(joints)],
    }


@pytest.mark.parametrize("command", ["from-bvh", "features", "recover", "mirror"])
def test_g_motion_output_that_is_a_folder_or_under_a_file(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = motion_commands()[command]
    folder = tmp_path / "out.npy"
    folder.mkdir()
    code, _, err = run([*argv, str(folder)], capsys)
    assert code == 2 and one_error_line(err) == f"lavimo: error: {folder}: is a folder: name a file to write"
    blocker = tmp_path / "plain"
    blocker.write_text("")
    code, _, err = run([*argv, str(blocker / "sub" / "out.npy")], capsys)
    assert code == 2 and one_error_line(err) == f"lavimo: error: {blocker}: is a file, not a folder"


@pytest.mark.parametrize("command", ["from-bvh", "features", "recover", "mirror"])
def test_g_motion_output_in_a_read_only_folder(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = motion_commands()[command]
    with read_only_folder(tmp_path / "ro") as folder:
        code, _, err = run([*argv, str(folder / "out.npy")], capsys)
    line = one_error_line(err)
    assert code == 2 and line == f"lavimo: error: {folder}: cannot write in this folder (Read-only file system)"


def test_g_prepare_out_that_is_a_file_or_read_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.write_text("")
    demo = ["prepare", "demo", "--bundle", str(REPO / "resources" / "demo"), "--limit", "1", "--out"]
    code, _, err = run([*demo, str(out)], capsys)
    assert code == 2 and one_error_line(err) == f"lavimo: error: {out}: is a file, not a folder"
    with read_only_folder(tmp_path / "ro") as folder:
        code, _, err = run([*demo, str(folder)], capsys)
        assert (
            code == 2
            and one_error_line(err) == f"lavimo: error: {folder}: cannot write in this folder (Read-only file system)"
        )
        code, _, err = run([*demo, str(folder / "demo")], capsys)
        assert code == 2 and one_error_line(err).startswith(f"lavimo: error: {folder / 'demo'}: Read-only file system")


def test_g_features_build_out_that_is_a_file_or_read_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = small_dataset(tmp_path / "ds")
    argv = ["features", "build", "--dataset-dir", str(ds), "--frames-dir", str(ds / "frames"), "--out"]
    out = tmp_path / "features"
    out.write_text("")
    code, _, err = run([*argv, str(out), "--encoder", "efficientnet-lite0"], capsys)
    assert code == 2 and one_error_line(err) == f"lavimo: error: {out}: is a file, not a folder"
    with read_only_folder(tmp_path / "ro") as folder:
        code, _, err = run([*argv, str(folder), "--encoder", "efficientnet-lite0"], capsys)
    assert (
        code == 2
        and one_error_line(err) == f"lavimo: error: {folder}: cannot write in this folder (Read-only file system)"
    )


# ----------------------------------------------------------------------------- h. mistyped or empty inputs


def test_h_features_build_refuses_a_missing_dataset_or_empty_frames_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = small_dataset(tmp_path / "ds")
    out = tmp_path / "features"
    build = ["features", "build", "--out", str(out), "--encoder", "efficientnet-lite0"]
    empty_frames = tmp_path / "empty-frames"
    (empty_frames / ".hidden").mkdir(parents=True)
    cases = {
        "no manifest": ([*build, "--dataset-dir", str(tmp_path / "missing"), "--frames-dir", str(ds / "frames")],
                        "no manifest"),
        "no frames": ([*build, "--dataset-dir", str(ds), "--frames-dir", str(tmp_path / "nothing")],
                      "frames folder does not exist"),
        "empty frames": ([*build, "--dataset-dir", str(ds), "--frames-dir", str(empty_frames)],
                         "holds no rendered clip"),
    }  # fmt: skip
    for name, (argv, words) in cases.items():
        code, _, err = run(argv, capsys)
        assert code == 2 and words in one_error_line(err), name
        assert not out.exists(), name
    empty = tmp_path / "empty-ds"
    write_manifest(empty, load_manifest(ds).iloc[:0])
    code, _, err = run([*build, "--dataset-dir", str(empty), "--frames-dir", str(ds / "frames")], capsys)
    assert code == 2 and "lists no clip" in one_error_line(err) and not out.exists()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["prepare", "humanml3d", "--root", "{tmp}/missing"], "dataset folder not found (datasets.humanml3d.root)"),
        (["prepare", "humanml3d", "--root", "{tmp}"], "incomplete dataset folder"),
        (["prepare", "kitml", "--root", "{tmp}/missing"], "dataset folder not found (datasets.kitml.root)"),
        (["prepare", "kitml", "--root", "{tmp}", "--motions", "{tmp}/missing"], "TMR motion folder not found"),
        (["prepare", "demo", "--bundle", "{tmp}/missing"], "not a demo bundle"),
        (["prepare", "demo", "--bundle", "{tmp}/garbage-bundle"], "unreadable bundle index"),
        (["prepare", "amass", "--amass-root", "{tmp}/missing", "--smplh-dir", "{tmp}", "--index-csv", "{tmp}/i.csv"],
         "AMASS folder not found"),
        (["prepare", "amass", "--amass-root", "{tmp}", "--smplh-dir", "{tmp}/missing", "--index-csv", "{tmp}/i.csv"],
         "SMPL-H model folder not found"),
        (["prepare", "amass", "--amass-root", "{tmp}", "--smplh-dir", "{tmp}", "--index-csv", "{tmp}/missing.csv"],
         "index.csv missing"),
    ],
)  # fmt: skip
def test_h_prepare_refuses_missing_inputs_before_creating_out(
    argv: list[str], words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "garbage-bundle").mkdir()
    (tmp_path / "garbage-bundle" / "bundle.json").write_text("{not json")
    (tmp_path / "i.csv").write_text("source_path,start_frame,end_frame,new_name\n")
    out = tmp_path / "out"
    code, _, err = run([*(a.replace("{tmp}", str(tmp_path)) for a in argv), "--out", str(out)], capsys)
    assert code == 2 and words in one_error_line(err) and not out.exists()


def test_h_amass_index_csv_that_is_empty_or_garbage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lavimo.datasets.amass import read_index

    index = tmp_path / "index.csv"
    for content, words in [
        (b"", "not a readable index.csv"),
        (b"\xff\xfe\x00garbage", "not a readable index.csv"),
        (b"source_path,start_frame,end_frame,new_name\n", "lists no clip"),
        (b"source_path,start_frame,end_frame,new_name\na.npy,x,3,000001.npy\n", "line 2: start_frame/end_frame"),
    ]:
        index.write_bytes(content)
        with pytest.raises(LavimoInputError, match=words):
            read_index(index)


def test_h_render_refuses_a_missing_dataset_or_avatar_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before Blender loads and before the frames folder is created."""
    avatars = tmp_path / "avatars"
    avatars.mkdir()
    frames = tmp_path / "frames"
    shard = ["render", "shard", "--shard", "0000", "--frames-dir", str(frames)]
    code, _, err = run([*shard, "--dataset-dir", str(tmp_path / "nope"), "--avatars", str(avatars)], capsys)
    assert code == 2 and "no manifest" in one_error_line(err)
    ds = small_dataset(tmp_path / "ds")
    code, _, err = run([*shard, "--dataset-dir", str(ds), "--avatars", str(avatars)], capsys)
    assert code == 2 and one_error_line(err).startswith(f"lavimo: error: {avatars}: no avatar files")
    code, _, err = run([*shard, "--dataset-dir", str(ds), "--avatars", str(tmp_path / "none")], capsys)
    assert code == 2 and "avatar folder does not exist" in one_error_line(err)
    assert not frames.exists()
    code, _, err = run(["render", "merge-rejects", "--dataset-dir", str(tmp_path / "nope")], capsys)
    assert code == 2 and "no manifest" in one_error_line(err)


def test_h_render_clips_of_joint_files_none_of_which_can_be_read_fails(tmp_path: Path) -> None:
    """Mistyped --joints paths are not a successful render of nothing (a process of its own: it loads Blender)."""
    avatars, frames = tmp_path / "avatars", tmp_path / "frames"
    avatars.mkdir()
    (avatars / "00.npz").write_bytes(b"")  # never read: no clip gets that far
    argv = ["render", "clips", "--joints", str(tmp_path / "walk.npy"), str(tmp_path / "run.npy")]
    argv += ["--avatars", str(avatars), "--frames-dir", str(frames)]
    done = subprocess.run([sys.executable, "-m", "lavimo.cli", *argv], capture_output=True, text=True, timeout=300)
    line = one_error_line(done.stderr)
    assert done.returncode == 2 and "no joint file could be read (2)" in line and str(tmp_path / "walk.npy") in line
    assert not (frames / "clips.rejected.csv").exists()
