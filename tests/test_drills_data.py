"""Fault drills of the feature cache and of training, through the `lavimo` commands the rules run: a SIGKILL in the
middle of writing a feature shard, a SIGKILL mid-epoch, a corrupt feature shard and corrupt checkpoints, a second
build of one features folder, and a disk that fills up during a build. Each ends with nothing lost (a rerun goes
on from what was kept) and nothing silently wrong (the outputs equal an uninterrupted run's, or the command
refuses, naming the file)."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import REPO, TINY_TRAIN, lavimo_process, run_lavimo, small_disk, tree_digest, wait_for_text

from lavimo.io import folder_lock

# real processes, killed, raced or starved: tens of seconds each
pytestmark = pytest.mark.slow

# the cheapest real build through the command: the packaged EfficientNet-Lite0, 2 frames and 1 view per clip
FEATURES = ["--encoder", "efficientnet-lite0", "--views", "1", "--frames", "2", "--workers", "0"]
TRAIN = ["--preset", "tiny", "--set", "batch_size=4", "--set", "num_workers=0", "--no-progress"]

# kills the process while it writes the second shard: half of the .npy's bytes on disk, then SIGKILL
KILL_IN_SECOND_SHARD = """
import io, os, signal, numpy
_save, _saves = numpy.save, [0]
def save(file, array, *args, **kwargs):
    _saves[0] += 1
    if _saves[0] == 2:
        buffer = io.BytesIO()
        _save(buffer, array, *args, **kwargs)
        file.write(buffer.getvalue()[: buffer.tell() // 2])
        file.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return _save(file, array, *args, **kwargs)
numpy.save = save
"""

# appends every training step's loss to a file; SIGKILL in step `kill_at` (after its loss, before its update)
STEP_LOSSES = """
import os, signal, torch
_backward, _steps = torch.Tensor.backward, [0]
def backward(self, *args, **kwargs):
    _steps[0] += 1
    with open({log!r}, "a") as handle:
        handle.write(repr(float(self.detach())) + "\\n")
    if _steps[0] == {kill_at}:
        os.kill(os.getpid(), signal.SIGKILL)
    return _backward(self, *args, **kwargs)
torch.Tensor.backward = backward
"""


def build_args(dataset: Path, out: Path) -> list[str]:
    return ["features", "build", "--dataset-dir", str(dataset), "--frames-dir", str(dataset / "frames"),
            "--out", str(out), *FEATURES]  # fmt: skip


def train_args(dataset: Path, run: Path, epochs: int) -> list[str]:
    return ["train", "--dataset-dir", str(dataset), "--out", str(run), *TRAIN, "--set", f"epochs={epochs}"]


@pytest.fixture(scope="module")
def dataset(training_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The drills' own copy of the small real training set (a build writes the dataset's rejected.csv)."""
    copy = tmp_path_factory.mktemp("drills") / "demo"
    shutil.copytree(training_dataset, copy, ignore=shutil.ignore_patterns("runs"))
    return copy


@pytest.fixture(scope="module")
def reference_cache(dataset: Path) -> Path:
    """A features folder built by one uninterrupted `lavimo features build` (2 shards)."""
    out = dataset.parent / "reference-features"
    code, output = run_lavimo(*build_args(dataset, out))
    assert code == 0, output[-3000:]
    assert len(list(out.glob("*/[0-9][0-9][0-9][0-9].npy"))) == 2
    return out


def _cache_dir(features: Path) -> Path:
    return features / json.loads((features / "current.json").read_text())["encoder_id"]


def test_a_build_killed_while_writing_a_shard_resumes_to_the_same_cache(
    dataset: Path, reference_cache: Path, tmp_path: Path
) -> None:
    out = tmp_path / "features"
    code, output = run_lavimo(*build_args(dataset, out), prelude=KILL_IN_SECOND_SHARD)
    assert code == -9, output[-3000:]
    (cache,) = [p for p in out.iterdir() if p.is_dir()]
    assert sorted(p.name for p in cache.iterdir() if not p.name.startswith(".")) == [
        "0000.json",
        "0000.npy",
        "meta.json",
    ]
    assert list(cache.glob(".0001.npy.*")) and not (out / "current.json").exists()  # half a shard, never taken as done
    first = (cache / "0000.npy").stat().st_mtime_ns

    # the rerun waits for whoever holds the folder, then encodes only the shard that is missing
    log = tmp_path / "rerun.log"
    with folder_lock(out, "the drill"):
        rerun = lavimo_process(*build_args(dataset, out), log=log)
        wait_for_text(log, "waiting for the drill", rerun)
        assert not (out / "current.json").exists()
    assert rerun.wait(timeout=600) == 0, log.read_text()[-3000:]
    assert tree_digest(out) == tree_digest(reference_cache)
    assert (cache / "0000.npy").stat().st_mtime_ns == first


def test_training_killed_mid_epoch_resumes_with_the_same_next_step_loss(dataset: Path, tmp_path: Path) -> None:
    straight_log, killed_log, resumed_log = (tmp_path / f"{name}.losses" for name in ("straight", "killed", "resumed"))
    code, output = run_lavimo(
        *train_args(dataset, tmp_path / "straight", 2), prelude=STEP_LOSSES.format(log=str(straight_log), kill_at=0)
    )
    assert code == 0, output[-3000:]
    straight = straight_log.read_text().splitlines()
    history = [json.loads(line) for line in (tmp_path / "straight" / "history.jsonl").read_text().splitlines()]
    per_epoch = history[0]["step"]
    assert per_epoch >= 3 and len(straight) == 2 * per_epoch

    run, kill_at = tmp_path / "run", per_epoch + 2  # in the middle of the second epoch
    code, output = run_lavimo(
        *train_args(dataset, run, 2), prelude=STEP_LOSSES.format(log=str(killed_log), kill_at=kill_at)
    )
    assert code == -9, output[-3000:]
    assert killed_log.read_text().splitlines() == straight[:kill_at]
    assert len((run / "history.jsonl").read_text().splitlines()) == 1 and not (run / "model.pt").exists()
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 1

    code, output = run_lavimo(*train_args(dataset, run, 2), prelude=STEP_LOSSES.format(log=str(resumed_log), kill_at=0))
    assert code == 0, output[-3000:]
    assert f"resuming {run} after epoch 1" in output
    resumed = resumed_log.read_text().splitlines()
    assert resumed[0] == straight[per_epoch]  # the next step's loss, to the last bit
    assert resumed == straight[per_epoch:]
    again = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    for key in ("step", "lr", "tau", "loss", "loss_align", "loss_recon"):
        assert [r[key] for r in again] == [r[key] for r in history], key


def _scramble(path: Path) -> None:
    """Change 64 bytes in the middle of a file's numbers (a .npy's array, or the largest record of a checkpoint's
    zip archive): same size, same header, other values."""
    start = len(path.read_bytes()) // 2
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            record = max(archive.infolist(), key=lambda info: info.file_size)
        with open(path, "rb") as handle:  # the record's data starts after its 30-byte local header, name and extra
            handle.seek(record.header_offset + 26)
            name, extra = np.frombuffer(handle.read(4), "<u2")
        start = record.header_offset + 30 + int(name) + int(extra) + record.file_size // 2
    data = bytearray(path.read_bytes())
    data[start : start + 64] = bytes((b + 97) % 256 for b in data[start : start + 64])
    path.write_bytes(bytes(data))


def _error_line(output: str) -> str:
    """The one error line of a command's output (a progress bar may precede it on its terminal line)."""
    lines = re.findall(r"lavimo: error: [^\r\n]*", output)
    assert len(lines) == 1 and "Traceback" not in output, output[-3000:]
    return lines[0]


def test_a_corrupt_shard_is_named_by_its_reader_and_rebuilt_by_the_build(
    dataset: Path, reference_cache: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "demo"
    shutil.copytree(dataset, copy, ignore=shutil.ignore_patterns("features"))
    shutil.copytree(reference_cache, copy / "features")
    shard = _cache_dir(copy / "features") / "0001.npy"
    _scramble(shard)
    code, output = run_lavimo(*train_args(copy, tmp_path / "run", 1))
    assert code == 2 and re.search(rf"^lavimo: error: {re.escape(str(shard))}: .*sha256", _error_line(output))
    code, output = run_lavimo(*build_args(copy, copy / "features"))  # what the features rule runs
    assert code == 0, output[-3000:]
    assert tree_digest(copy / "features") == tree_digest(reference_cache)


def test_corrupt_checkpoints_are_named_and_rebuilt_by_the_training_command(
    training_dataset: Path, tiny_run: Path, tmp_path: Path
) -> None:
    run = tmp_path / "3modal"
    shutil.copytree(tiny_run, run)
    again = ["train", "--dataset-dir", str(training_dataset), "--out", str(run), "--preset", "tiny", "--no-progress",
             *(f"--set={key}={value}" for key, value in TINY_TRAIN.items())]  # the run's own settings  # fmt: skip
    model = run / "model.pt"
    good = model.read_bytes()
    _scramble(model)
    assert torch.load(model, weights_only=True)["format"] == 1  # PyTorch itself loads it without a word
    code, output = run_lavimo("evaluate", "--run", str(run))
    line = _error_line(output)
    assert code == 2 and line.startswith(f"lavimo: error: {model}: corrupt lavimo checkpoint: Bad CRC-32"), line
    code, output = run_lavimo(*again)  # what the train rule runs: a finished run writes model.pt again
    assert code == 0, output[-3000:]
    assert model.read_bytes() == good

    last = run / "checkpoints" / "last.pt"
    _scramble(last)
    code, output = run_lavimo(*again)
    line = _error_line(output)
    assert code == 2 and line.startswith(f"lavimo: error: {last}: corrupt lavimo checkpoint") and "--restart" in line
    code, output = run_lavimo(*again, "--restart")
    assert code == 0, output[-3000:]
    assert torch.load(last, weights_only=True)["epoch"] == int(TINY_TRAIN["epochs"])


def _kib(path: Path) -> int:
    return -(-path.stat().st_size // 4096) * 4


def test_a_full_disk_stops_the_build_clearly_and_a_rerun_with_space_finishes(
    dataset: Path, reference_cache: Path, tmp_path: Path
) -> None:
    reference = _cache_dir(reference_cache)
    room = sum(_kib(reference / name) for name in ("meta.json", "0000.npy", "0000.json")) + 16  # not 0001.npy
    out = tmp_path / "features"
    with small_disk(out, room) as resize:
        code, output = run_lavimo(*build_args(dataset, out))
        line = _error_line(output)
        assert code == 1 and re.match(r"lavimo: error: \S+/0001\.npy: no space left on device", line), line
        cache = out / reference.name
        assert sorted(p.name for p in cache.iterdir()) == ["0000.json", "0000.npy", "meta.json"]  # no half shard
        assert not (out / "current.json").exists()
        resize(4 * room)
        code, output = run_lavimo(*build_args(dataset, out))
        assert code == 0, output[-3000:]
        assert tree_digest(out) == tree_digest(reference_cache)


def test_a_full_disk_while_extracting_the_demo_bundle_names_the_folder(tmp_path: Path) -> None:
    """tarfile's write error names no file ("a file being written" before): the disk-full error names the folder
    being extracted, and no half-extracted folder is left to be taken as done."""
    from lavimo.datasets.bundle import unpack_bundle
    from lavimo.io import DiskFullError

    dest = tmp_path / "raw"
    with small_disk(dest, 256):
        with pytest.raises(DiskFullError) as caught:
            unpack_bundle(REPO / "resources" / "demo", dest)
        assert str(caught.value).startswith(str(dest)) and "no space left on device" in str(caught.value)
        assert [p.name for p in dest.iterdir() if not p.name.startswith(".")] == []


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_an_npz_write_to_a_full_disk_is_one_error_and_nothing_else(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A motion shard (.npz) that no longer fits: the disk-full error naming it, no file left, and no "Exception
    ignored in ZipFile.__del__" printed later by numpy's half-closed archive."""
    import gc

    from lavimo.io import DiskFullError, save_npz

    folder = tmp_path / "motions"
    with small_disk(folder, 256):
        with pytest.raises(DiskFullError, match=r"0000\.npz: no space left on device"):
            save_npz(folder / "0000.npz", {"a/joints": np.ones((4000, 22, 3), np.float32) * np.arange(3)}, False)
        gc.collect()
        assert list(folder.iterdir()) == []
    assert "Exception ignored" not in capfd.readouterr().err
