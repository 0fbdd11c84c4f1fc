"""Nothing silently wrong on the model side: another run's checkpoint, corrupt feature shards, a non-finite loss.

Issue 15, section 3; the data-side cases are in test_integrity.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY_TRAIN, tiny_encoder

from lavimo.checkpoints import load_checkpoint, save_checkpoint
from lavimo.cli import main
from lavimo.embed import load_trained
from lavimo.io import LavimoInputError, file_sha256
from lavimo.layout import features_dir
from lavimo.model import LAVIMO, ModelConfig
from lavimo.train import make_train_config, train
from lavimo.video.build import BuildOptions, build_feature_cache
from lavimo.video.cache import FeatureCache

OPTIONS = BuildOptions(views=2, batch_size=8, workers=0, progress=False)  # as helpers.make_training_dataset


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("lavimo: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _copy_run(run: Path, dest: Path) -> Path:
    """A run folder's config.json, model.pt and metrics.json (enough to evaluate it again)."""
    dest.mkdir(parents=True)
    for name in ("config.json", "model.pt", "metrics.json"):
        shutil.copyfile(run / name, dest / name)
    return dest


def _checkpoint_of(tmp: Path, state: dict, name: str, **changes: object) -> Path:
    """A real model built with the run's model config plus ``changes``, saved as a checkpoint file."""
    config = ModelConfig.from_dict({**state["model_config"], **changes})
    model = LAVIMO(config)
    path = tmp / name
    train_config = {**state["train_config"], "variant": config.variant}
    save_checkpoint(
        path, {**state, "model": model.state_dict(), "model_config": config.to_dict(), "train_config": train_config}
    )
    return path


# ----------------------------------------------------------------------------- another run's checkpoint


def test_evaluate_refuses_a_checkpoint_of_another_variant_or_model(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _copy_run(tiny_run, tmp_path / "run")
    metrics = (run / "metrics.json").read_bytes()
    state = load_checkpoint(run / "model.pt")
    assert state["model_config"]["variant"] == "3modal"
    two_modal = _checkpoint_of(tmp_path, state, "two_modal.pt", variant="2modal")
    wider = _checkpoint_of(tmp_path, state, "wider.pt", latent_dim=2 * state["model_config"]["latent_dim"])
    # with --checkpoint
    for path, words in ((two_modal, "a 2modal model, but the run is 3modal"), (wider, "latent_dim")):
        code = main(["evaluate", "--run", str(run), "--checkpoint", str(path), "--device", "cpu"])
        line = _error_line(capsys.readouterr().err)
        assert code == 2 and f"{path}: " in line and words in line, line
    assert not (run / "evaluations").exists()
    code = main(["evaluate", "--run", str(run), "--threshold", "1.5", "--device", "cpu"])
    assert code == 2 and "--threshold: 1.5 is outside [0, 1]" in _error_line(capsys.readouterr().err)
    # as the run's own model.pt: nothing may be written over the run's metrics
    shutil.copyfile(two_modal, run / "model.pt")
    code = main(["evaluate", "--run", str(run), "--device", "cpu"])
    line = _error_line(capsys.readouterr().err)
    assert code == 2 and f"{run / 'model.pt'}: a 2modal model" in line
    assert (run / "metrics.json").read_bytes() == metrics


def test_weights_that_do_not_fit_their_config_are_one_clean_line(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = load_checkpoint(tiny_run / "model.pt")
    misfit = tmp_path / "misfit.pt"
    latent = state["model_config"]["latent_dim"]
    save_checkpoint(misfit, {**state, "model_config": {**state["model_config"], "latent_dim": 2 * latent}})
    with pytest.raises(LavimoInputError, match="weights do not fit the model config stored with them") as error:
        load_trained(misfit)
    assert error.value.path == str(misfit) and "\n" not in str(error.value)
    assert f"({latent * 2}," in str(error.value) or f", {latent * 2})" in str(error.value)
    code = main(["evaluate", "--run", str(tiny_run), "--checkpoint", str(misfit), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "do not fit" in _error_line(err) and "size mismatch" not in err


# ----------------------------------------------------------------------------- feature-shard checksums


def _features_copy(dataset: Path, dest: Path) -> Path:
    """A copy of a dataset folder (manifest, motions, splits, frames, features, sentences)."""
    shutil.copytree(dataset, dest, ignore=shutil.ignore_patterns("runs"))
    return dest


def _first_shard(cache: FeatureCache, split: str = "train") -> tuple[str, str, Path]:
    clip = next(c for c in cache.clip_ids if cache.split(c) == split)
    shard = cache._entry(clip)[0]
    return clip, shard, cache.path / f"{shard}.npy"


def test_a_corrupt_feature_shard_is_named_and_rebuilt(training_dataset: Path, tmp_path: Path) -> None:
    dataset = _features_copy(training_dataset, tmp_path / "demo")
    cache = FeatureCache.open_current(features_dir(dataset))
    clip, _, path = _first_shard(cache)
    original = path.read_bytes()
    clean = cache.get(clip).copy()
    # finite noise of the same size after the header: the numbers change, nothing else does
    array = np.load(path)
    header = len(original) - array.nbytes
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1, array.shape).astype(np.float16)
    path.write_bytes(original[:header] + noise.tobytes())
    reopened = FeatureCache.open_current(features_dir(dataset))
    with pytest.raises(LavimoInputError, match=r"does not match its sha256 in index\.json") as error:
        reopened.get(clip)
    assert error.value.path == str(path)
    # a rerun of the build re-encodes exactly that shard
    build_feature_cache(dataset, dataset / "frames", features_dir(dataset), tiny_encoder(input_size=32), OPTIONS)
    assert path.read_bytes() == original
    assert np.array_equal(FeatureCache.open_current(features_dir(dataset)).get(clip), clean)


def test_a_cache_without_checksums_is_read_with_a_warning_and_the_build_records_them(
    training_dataset: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dataset = _features_copy(training_dataset, tmp_path / "demo")
    cache_dir = FeatureCache.open_current(features_dir(dataset)).path
    index = json.loads((cache_dir / "index.json").read_text())
    index.pop("shard_sha256", None)
    (cache_dir / "index.json").write_text(json.dumps(index))
    shards = sorted({entry[0] for entry in index["clips"].values()})
    for shard in shards:
        record = json.loads((cache_dir / f"{shard}.json").read_text())
        record.pop("sha256", None)
        (cache_dir / f"{shard}.json").write_text(json.dumps(record))
    mtimes = {s: (cache_dir / f"{s}.npy").stat().st_mtime_ns for s in shards}
    with caplog.at_level("WARNING"):
        old = FeatureCache.open_current(features_dir(dataset))
    assert "no shard checksums" in caplog.text and str(cache_dir / "index.json") in caplog.text
    clip = old.clip_ids[0]
    assert old.get(clip).shape == (old.num_frames, old.dim)  # still readable
    build_feature_cache(dataset, dataset / "frames", features_dir(dataset), tiny_encoder(input_size=32), OPTIONS)
    assert {s: (cache_dir / f"{s}.npy").stat().st_mtime_ns for s in shards} == mtimes  # nothing re-encoded
    recorded = json.loads((cache_dir / "index.json").read_text())["shard_sha256"]
    assert recorded == {s: file_sha256(cache_dir / f"{s}.npy") for s in shards}


# ----------------------------------------------------------------------------- a non-finite loss


def test_training_stops_at_the_first_non_finite_loss_naming_the_batch(training_dataset: Path, tmp_path: Path) -> None:
    dataset = _features_copy(training_dataset, tmp_path / "demo")
    cache = FeatureCache.open_current(features_dir(dataset))
    clip, shard, path = _first_shard(cache)
    # frame features that overflowed float16 (an encoder gone wrong), written by a build: the checksums agree
    array = np.load(path)
    array[cache._entry(clip)[1]] = np.inf
    np.save(path, array)
    digest = file_sha256(path)
    record_path = cache.path / f"{shard}.json"
    record_path.write_text(json.dumps({**json.loads(record_path.read_text()), "sha256": digest}))
    index = json.loads((cache.path / "index.json").read_text())
    index.setdefault("shard_sha256", {})[shard] = digest
    (cache.path / "index.json").write_text(json.dumps(index))
    out = tmp_path / "run"
    with pytest.raises(LavimoInputError, match="training stopped: loss is nan") as error:
        train(dataset, out, make_train_config("tiny", TINY_TRAIN), progress=False)
    assert error.value.path == str(out) and clip in str(error.value)
    assert not (out / "model.pt").exists()


def test_a_checkpoint_written_to_a_full_disk_is_one_error_naming_it(tmp_path: Path) -> None:
    """torch's zip writer reports a full disk as a RuntimeError ("unexpected pos", "file write failed"): it becomes
    the disk-full error, naming the checkpoint, and no half-written file is left."""
    import torch
    from helpers import small_disk

    from lavimo.io import DiskFullError

    folder = tmp_path / "disk"
    with small_disk(folder, 512):
        path = folder / "last.pt"
        with pytest.raises(DiskFullError) as caught:
            save_checkpoint(path, {"model": {"weight": torch.zeros(1024, 1024)}})  # 4 MiB on a 512 KiB disk
        assert str(caught.value).startswith(f"{path}: no space left on device")
        assert sorted(p.name for p in folder.iterdir()) == []
