"""Nothing silently wrong: concurrent prepares, absurd BVH values, bad array files, corrupt checkpoints.

Each case was found by using the commands as a careless user would (issue 15, section 3). Model-side cases
(another run's checkpoint, feature-shard checksums, a non-finite loss) are in test_integrity_models.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lavimo.cli import main
from lavimo.datasets.build import PrepareOptions, Unit, run_unit
from lavimo.datasets.bundle import read_bundle_index, unpack_bundle
from lavimo.datasets.demo import process_demo_clip
from lavimo.datasets.manifest import load_manifest
from lavimo.io import LavimoInputError, folder_lock

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "resources" / "demo"
WALK_BVH = REPO / "tests" / "data" / "bvh" / "bandai-namco_dataset-1_walk_normal_001_frames0-44.bvh"
HML_JOINTS = REPO / "tests" / "data" / "humanml3d" / "new_joints" / "012314.npy"
HML_FEATURES = REPO / "tests" / "data" / "humanml3d" / "new_joint_vecs" / "012314.npy"


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``lavimo ARGV`` run in this process (an exception fails the test)."""
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_line(err: str) -> str:
    """The one ``lavimo: error:`` line of a stderr (asserting there is exactly one and no traceback)."""
    lines = [line for line in err.splitlines() if line.startswith("lavimo: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ----------------------------------------------------------------------------- concurrent prepare


def _prepare(out: Path) -> subprocess.Popen[str]:
    argv = ["prepare", "demo", "--out", str(out), "--bundle", str(BUNDLE), "--limit", "2", "--workers", "1"]
    return subprocess.Popen(
        [sys.executable, "-m", "lavimo.cli", *argv],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _assert_whole(raw: Path) -> None:
    """Every bundled dataset fully extracted: its label lists and the BVH/JSON counts of bundle.json."""
    for name, entry in read_bundle_index(BUNDLE)["archives"].items():
        data = raw / name / "data"
        assert len(list(data.glob("*.bvh"))) == entry["bvh"], name
        assert len(list(data.glob("*.json"))) == entry["labels"], name
        assert (raw / name / "cfg" / "content_label.txt").is_file() and (
            raw / name / "cfg" / "style_label.txt"
        ).is_file()
    assert not [p.name for p in raw.iterdir() if ".partial" in p.name or p.name.endswith(".old")]


def test_two_concurrent_prepares_of_one_folder_both_succeed_and_leave_it_whole(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    first, second = _prepare(out), _prepare(out)
    results = [(*p.communicate(timeout=600), p.returncode) for p in (first, second)]
    for stdout, stderr, code in results:
        assert code == 0, stderr[-2000:]
        assert "demo: 4 clips" in stdout
    _assert_whole(out / "raw")
    assert len(load_manifest(out)) == 4  # 2 sources and their mirrors
    assert sum("waiting for lavimo prepare demo" in stderr for _, stderr, _ in results) <= 1


def test_a_second_prepare_waits_for_the_first(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    with folder_lock(out, "a test holding the folder"):
        waiting = _prepare(out)
        assert waiting.stderr is not None
        line = waiting.stderr.readline()  # blocks until the process says something (or ends)
        assert f"{out}: waiting for a test holding the folder" in line, line
        assert waiting.poll() is None and not (out / "manifest.parquet").exists()
    stderr = waiting.communicate(timeout=600)[1]
    assert waiting.returncode == 0, stderr[-2000:]
    assert len(load_manifest(out)) == 4


def test_a_half_extracted_bundle_is_extracted_again(tmp_path: Path) -> None:
    raw = unpack_bundle(BUNDLE, tmp_path / "raw")
    stamp = (raw["dataset-1"] / ".bundle-sha256").read_text()
    # a run killed half-way through copying, or a user's cleanup: the stamp is there, files are not
    for path in sorted((raw["dataset-1"] / "data").glob("*.bvh"))[::3]:
        path.unlink()
    (raw["dataset-2"] / "cfg" / "style_label.txt").unlink()
    (tmp_path / "raw" / ".dataset-1.partial-x1y2").mkdir()  # the staging folder of a killed run
    again = unpack_bundle(BUNDLE, tmp_path / "raw")
    assert again == raw and (raw["dataset-1"] / ".bundle-sha256").read_text() == stamp
    _assert_whole(tmp_path / "raw")


# ----------------------------------------------------------------------------- BVH with an absurd value


HIPS_Y, HIPS_X_ROTATION = 7, 10  # columns of the walk BVH's Hips (after joint_Root's 6 channels)


def _bvh_with(tmp_path: Path, value: str, column: int = HIPS_Y) -> Path:
    """The walk BVH with channel ``column`` of frame 5 set to ``value`` (default: the Hips' Y position, cm)."""
    lines = WALK_BVH.read_text().splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("Frame Time")) + 1 + 5
    numbers = lines[row].split()
    numbers[column] = value
    lines[row] = " ".join(numbers)
    path = tmp_path / f"walk_{column}_{value}.bvh"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("value", "column", "problem"),
    [
        ("1e300", HIPS_Y, "implausible motion: the root moves"),
        ("1e30", HIPS_Y, "implausible motion: the root moves"),
        ("100000", HIPS_Y, "implausible motion: the root moves"),  # the hip 1,000 m up for one frame
        ("1e300", HIPS_X_ROTATION, "implausible motion: a rotation of 1e+300 degrees (joint 'Hips', frame 6)"),
        ("-2e5", HIPS_X_ROTATION, "implausible motion: a rotation of 2e+05 degrees"),
    ],
)
def test_from_bvh_refuses_absurd_values_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, column: int, problem: str
) -> None:
    bvh = _bvh_with(tmp_path, value, column)
    out = tmp_path / "walk.npz"
    code, stdout, err = run_cli(["motion", "from-bvh", str(bvh), str(out)], capsys)
    assert (code, stdout) == (2, "")
    assert f"{bvh}: " in error_line(err) and problem in error_line(err)
    assert not out.exists()
    # prepare refuses the clip the same way (the same check)
    unit = Unit(bvh.stem, str(bvh), {"content": "walk", "style": "normal"}, ())
    result = run_unit(process_demo_clip, unit, PrepareOptions(min_seconds=0.5))
    assert result.clips == [] and [(r.source, problem in r.reason) for r in result.rejected] == [(str(bvh), True)]


def test_from_bvh_refuses_an_implausible_frame_time_before_resampling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = WALK_BVH.read_text()
    for frame_time, problem in (("1000000", "implausible Frame Time: 1e+06 s"), ("1.5", "implausible Frame Time")):
        bvh = tmp_path / f"walk_{frame_time}.bvh"
        bvh.write_text(text.replace("Frame Time:\t0.0333333", f"Frame Time:\t{frame_time}"))
        code, stdout, err = run_cli(["motion", "from-bvh", str(bvh), str(tmp_path / "walk.npz")], capsys)
        assert (code, stdout) == (2, "") and f"{bvh}: {problem}" in error_line(err)
    assert not (tmp_path / "walk.npz").exists()


def test_from_bvh_never_overwrites_its_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bvh = tmp_path / "walk.bvh"
    shutil.copyfile(WALK_BVH, bvh)
    before = bvh.read_bytes()
    for output in (bvh, tmp_path / "." / "walk.bvh"):
        code, _, err = run_cli(["motion", "from-bvh", str(bvh), str(output)], capsys)
        assert code == 2 and "output path is the input" in error_line(err)
    (tmp_path / "link.bvh").symlink_to(bvh)
    code, _, err = run_cli(["motion", "from-bvh", str(tmp_path / "link.bvh"), str(bvh)], capsys)
    assert code == 2 and "output path is the input" in error_line(err)
    assert bvh.read_bytes() == before
    code, stdout, _ = run_cli(["motion", "from-bvh", str(bvh), str(tmp_path / "walk.npz")], capsys)
    assert code == 0 and "frames at 20 fps" in stdout


# ----------------------------------------------------------------------------- bad array files


def _bad_arrays(folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (a bad .npy file, words of the expected message)."""
    folder.mkdir(parents=True, exist_ok=True)
    good = np.eye(3, dtype=np.float32)
    np.savez(folder / "archive.npz", sims=good)
    (folder / "archive.npz").rename(folder / "renamed_npz.npy")
    (folder / "empty.npy").write_bytes(b"")
    (folder / "text.npy").write_text("0.1 0.2 0.3\n0.4 0.5 0.6\n")
    np.save(folder / "complex.npy", good.astype(np.complex64) * (1 + 1j))
    np.save(folder / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.save(folder / "truncated.npy", good)
    (folder / "truncated.npy").write_bytes((folder / "truncated.npy").read_bytes()[:-10])
    np.save(folder / "strings.npy", np.array(["a", "b"]))
    return {
        "renamed_npz": (folder / "renamed_npz.npy", "zip archive"),
        "empty": (folder / "empty.npy", "empty file (0 bytes)"),
        "text": (folder / "text.npy", "is a text file"),
        "complex": (folder / "complex.npy", "complex-valued"),
        "objects": (folder / "objects.npy", "Python objects"),
        "truncated": (folder / "truncated.npy", "truncated or corrupt"),
        "strings": (folder / "strings.npy", "numeric"),
    }


@pytest.mark.parametrize("command", ["metrics", "features", "recover", "mirror"])
def test_bad_array_files_get_one_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    for name, (path, words) in _bad_arrays(tmp_path / "in").items():
        if command == "metrics":
            argv = ["metrics", "--sims", str(path)]
        else:
            argv = ["motion", command, str(path), str(tmp_path / "out.npy")]
        code, stdout, err = run_cli(argv, capsys)
        line = error_line(err)
        assert (code, stdout) == (2, ""), name
        assert f"{path}: " in line and words in line, (name, line)
        assert "pickled data" not in line and "allow_pickle" not in line, line
        assert not (tmp_path / "out.npy").exists()


def _implausible_motions(folder: Path) -> list[tuple[str, Path, str]]:
    """(motion command, a real HumanML3D clip made implausible, words of the expected message)."""
    joints, features = np.load(HML_JOINTS), np.load(HML_FEATURES)
    folder.mkdir(parents=True, exist_ok=True)
    cases = []

    def case(command: str, name: str, array: np.ndarray, words: str) -> None:
        np.save(folder / f"{name}.npy", array)
        cases.append((command, folder / f"{name}.npy", words))

    for value in (1e30, 1e6):
        far_wrist, far_value = joints.copy(), features.copy()
        far_wrist[40, 20, 0] = value
        far_value[40, 10] = value  # a root-relative joint coordinate
        for command in ("features", "mirror"):
            case(command, f"wrist_{value:g}", far_wrist, f"implausible motion: a joint lies {value:.3g} m from")
        case("recover", f"features_{value:g}", far_value, f"implausible motion: a feature value of {value:.3g}")
    away = joints + np.array([5000.0, 0.0, 0.0], dtype=np.float32)  # the whole body 5 km away
    case("features", "away", away, "implausible motion: a joint coordinate of 5e+03 m")
    case("mirror", "away", away, "implausible motion: a joint coordinate of 5e+03 m")
    tall = joints.copy()
    tall[:, 15, 1] += 20.0  # the head 20 m above the pelvis
    case("features", "tall", tall, "implausible motion: a joint lies 20.")
    # each value plausible, the result not: a 0.17 mm body walking metres, a root 500 m per frame
    tiny = joints[:, :1] + (joints - joints[:, :1]) * np.float32(1e-4)
    case("features", "tiny", tiny, "implausible motion (the features computed from it): a feature value of 3.54e+03")
    fast = features.copy()
    fast[:, 2] = 500.0
    case("recover", "fast", fast, "implausible motion (the joints computed from it): a joint coordinate of 5.26e+04")
    return cases


def test_motion_commands_refuse_implausible_input_and_output_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.npy"
    for command, path, words in _implausible_motions(tmp_path / "in"):
        code, stdout, err = run_cli(["motion", command, str(path), str(out)], capsys)
        assert (code, stdout) == (2, ""), (command, path.name, err)
        assert f"{path}: {words}" in error_line(err), (command, path.name, err)
        assert not out.exists() and "Warning" not in err
    for command, path in (("features", HML_JOINTS), ("mirror", HML_JOINTS), ("recover", HML_FEATURES)):
        code, _, _ = run_cli(["motion", command, str(path), str(out)], capsys)
        assert code == 0 and out.exists()
        out.unlink()


def test_similarity_matrices_and_embeddings_with_bad_values_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sims = np.array([[0.9, 0.1, 0.2], [0.3, 0.8, 0.1], [0.2, 0.4, 0.7]], dtype=np.float32)
    good, inf, empty, emb = (tmp_path / f"{n}.npy" for n in ("good", "inf", "empty", "emb"))
    np.save(good, sims)
    with_inf = sims.copy()
    with_inf[1, 2] = np.inf
    np.save(inf, with_inf)
    np.save(empty, np.zeros((0, 0), dtype=np.float32))
    text_emb = np.eye(3, 8, dtype=np.float32)
    text_emb[2, 5] = np.nan
    np.save(emb, text_emb)
    cases = [
        (["--sims", str(inf)], f"{inf}: similarity matrix contains 1 Inf"),
        (["--sims", str(empty)], f"{empty}: similarity matrix is empty (0x0)"),
        (
            ["--sims", str(good), "--protocol", "threshold", "--text-emb", str(emb)],
            f"{emb}: sentence embeddings contains 1 NaN",
        ),
        (["--sims", str(good), "--threshold", "1.5"], "--threshold: 1.5 is outside [0, 1]"),
        (["--sims", str(good), "--threshold", "-0.1"], "--threshold: -0.1 is outside [0, 1]"),
        (["--sims", str(good), "--threshold", "nan"], "--threshold: nan is outside [0, 1]"),
    ]
    for argv, expected in cases:
        code, stdout, err = run_cli(["metrics", *argv], capsys)
        assert (code, stdout) == (2, ""), argv
        assert expected in error_line(err), (argv, err)
    code, stdout, _ = run_cli(["metrics", "--sims", str(good), "--threshold", "1.0"], capsys)
    assert code == 0 and json.loads(stdout)["t2m"]["R@1"] == 100.0


def test_a_checkpoint_error_is_one_line_without_pytorchs_advice(tmp_path: Path) -> None:
    from lavimo.checkpoints import load_checkpoint

    pickled = tmp_path / "numpy_inside.pt"
    torch.save({"format": 1, "model": np.zeros(3)}, pickled)  # numpy objects: a weights-only load refuses them
    truncated = tmp_path / "truncated.pt"
    torch.save({"format": 1, "model": {"w": torch.zeros(64, 64)}}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:4000])
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    for path, words in (
        (pickled, "Python objects"),
        (truncated, "truncated"),
        (text, "not a PyTorch file"),
        (empty, "0 bytes"),
    ):
        with pytest.raises(LavimoInputError) as error:
            load_checkpoint(path)
        message = str(error.value)
        assert message.startswith(f"{path}: ") and words in message, message
        assert "\n" not in message and "weights_only" not in message and "trust" not in message, message


# ----------------------------------------------------------------------------- prepare's counts


@pytest.mark.parametrize(
    ("argv", "option", "value"),
    [
        (["demo", "--limit", "-5"], "--limit", "-5"),  # would slice off the last five sources
        (["demo", "--limit", "0"], "--limit", "0"),
        (["demo", "--captions", "0"], "--captions", "0"),  # would leave every clip uncaptioned
        (["demo", "--shard-size", "0"], "--shard-size", "0"),
        (["humanml3d", "--root", "nowhere", "--shard-size", "-1"], "--shard-size", "-1"),
        (["amass", "--amass-root", "x", "--smplh-dir", "x", "--index-csv", "x", "--limit", "-5"], "--limit", "-5"),
    ],
)
def test_prepare_counts_below_one_are_refused_when_parsing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], option: str, value: str
) -> None:
    out = tmp_path / "out"
    # past parsing, the missing bundle (or folder) would stop the run at once, with another message
    with pytest.raises(SystemExit) as done:
        main(["prepare", *argv, "--out", str(out), *(["--bundle", str(tmp_path / "none")] if "demo" in argv else [])])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert done.value.code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert errors[0].endswith(f"argument {option}: {value} is not at least 1"), errors[0]
    assert not out.exists()
    with pytest.raises(SystemExit):
        main(["prepare", "demo", "--out", str(out), "--limit", "two"])
    assert capsys.readouterr().err.splitlines()[-1].endswith("argument --limit: 'two' is not a whole number")
