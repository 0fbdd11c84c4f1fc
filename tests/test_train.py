"""Training loop: schedule, data pipeline determinism, DDP batch slicing, runs, resume, 2-modal, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY_TRAIN as TINY

from lavimo.checkpoints import CHECKPOINT_FORMAT
from lavimo.embed import load_trained
from lavimo.io import LavimoInputError
from lavimo.retrieval_data import EpochBatchSampler, RetrievalDataset, compute_motion_stats, split_ids
from lavimo.text.sentences import SentenceCache
from lavimo.train import TrainConfig, Trainer, lr_at, make_train_config, train
from lavimo.video.cache import FeatureCache


def test_paper_schedule_is_constant_then_linear_to_lr_min() -> None:
    cfg = make_train_config("paper")
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.lr_min, cfg.lr_decay_start) == (400, 64, 1e-4, 1e-5, 100)
    steps = 10
    assert lr_at(0, cfg, steps) == lr_at(100 * steps - 1, cfg, steps) == 1e-4
    assert lr_at(400 * steps - 1, cfg, steps) == pytest.approx(1e-5)
    middle = lr_at(250 * steps, cfg, steps)
    assert 1e-5 < middle < 1e-4 and middle == pytest.approx(1e-4 - 0.9e-4 * (1500 / 2999), rel=1e-6)
    warm = TrainConfig(warmup_steps=4)
    assert [lr_at(s, warm, steps) for s in range(5)] == pytest.approx([2.5e-5, 5e-5, 7.5e-5, 1e-4, 1e-4])


def test_overrides_are_typed_and_unknown_keys_rejected() -> None:
    cfg = make_train_config("demo", {"epochs": "3", "lr": "1e-3", "model.latent_dim": "64", "variant": "2modal"})
    assert cfg.epochs == 3 and cfg.lr == 1e-3 and cfg.model_overrides == {"latent_dim": 64}
    assert cfg.model_config().latent_dim == 64 and cfg.model_config().variant == "2modal"
    with pytest.raises(ValueError, match="unknown training setting"):
        make_train_config("demo", {"epochz": "3"})
    with pytest.raises(ValueError, match="unknown training preset"):
        make_train_config("huge")


def test_batch_slices_of_two_processes_make_the_single_process_batches() -> None:
    single = list(EpochBatchSampler(50, 8, seed=3))
    ranks = [list(EpochBatchSampler(50, 8, seed=3, rank=r, world_size=2)) for r in range(2)]
    assert len(single) == 6 and all(len(b) == 4 for b in ranks[0])
    assert [a + b for a, b in zip(*ranks, strict=True)] == single
    other = EpochBatchSampler(50, 8, seed=3)
    other.set_epoch(1)
    assert list(other) != single
    with pytest.raises(ValueError, match="divisible"):
        EpochBatchSampler(50, 8, world_size=3)


def test_samples_are_real_and_deterministic_per_epoch(training_dataset: Path) -> None:
    train_ids = split_ids(training_dataset, "train")
    stats = compute_motion_stats(training_dataset, train_ids)
    assert stats.source.startswith("train:") and stats.mean.shape == stats.std.shape == (263,)
    features = FeatureCache.open_current(training_dataset / "features")
    sentences = SentenceCache(training_dataset / "sentences")
    data = RetrievalDataset(
        training_dataset, "train", stats, features=features, sentences=sentences, max_frames=40, train=True
    )
    assert len(data) == len(train_ids) and data.video_coverage == 1.0
    first = [data[i] for i in range(len(data))]
    assert all(s["motion"].shape[0] <= 40 and s["motion"].shape[1] == 263 for s in first)
    assert all(s["video"].shape == (8, 12) and s["video_valid"] for s in first)
    assert all(
        torch.equal(a["motion"], b["motion"]) and a["text"] == b["text"] for a, b in zip(first, data, strict=False)
    )
    data.set_epoch(5)
    later = [data[i] for i in range(len(data))]
    assert any(
        a["text"] != b["text"] or not torch.equal(a["motion"], b["motion"]) for a, b in zip(first, later, strict=True)
    )
    row = sentences.get(first[0]["text"])
    assert np.allclose(first[0]["sentence_emb"].numpy(), row)
    clean = RetrievalDataset(training_dataset, "train", stats, features=features, max_frames=40)
    sample = clean[0]
    assert sample["text"] == data.captions[0][0] and sample["motion"].shape[0] == min(40, len(data.motions[0]))


def test_a_run_folder_has_config_history_tensorboard_and_weights_only_files(tiny_run: Path) -> None:
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["variant"] == "3modal" and config["train"]["epochs"] == 2
    assert config["model"]["text_encoder_source"].startswith("tiny-random-bert")
    assert config["data"]["features"]["encoder_id"].startswith("tiny-") and config["data"]["sentences"]["dim"] == 384
    history = [json.loads(line) for line in (tiny_run / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    assert all(np.isfinite(h["loss"]) and h["loss_mv"] > 0 and 0 <= h["data_wait_fraction"] < 1 for h in history)
    assert set(history[-1]["val"]) == {"t2m", "m2t", "v2m", "m2v"}
    assert list((tiny_run / "tensorboard").glob("events.out.tfevents.*"))
    for name in ("model.pt", "checkpoints/last.pt", "checkpoints/best.pt"):
        torch.load(tiny_run / name, map_location="cpu", weights_only=True)
    model, stats, state = load_trained(tiny_run)
    assert model.has_video and not model.training and stats.mean.shape == (263,)
    assert state["epoch"] in (1, 2)


def test_resume_after_a_kill_continues_exactly(
    training_dataset: Path, tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lavimo.train as train_module

    real_save = train_module.save_checkpoint

    def killed_after_first_epoch(path, state):
        real_save(path, state)
        if Path(path).name == "last.pt":
            raise KeyboardInterrupt("killed")

    out = tmp_path / "3modal"
    cfg = make_train_config("tiny", TINY)
    monkeypatch.setattr(train_module, "save_checkpoint", killed_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        train(training_dataset, out, cfg, progress=False)
    monkeypatch.setattr(train_module, "save_checkpoint", real_save)
    assert not (out / "model.pt").exists() and len((out / "history.jsonl").read_text().splitlines()) == 0
    train(training_dataset, out, cfg, progress=False)
    resumed = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    straight = [json.loads(line) for line in (tiny_run / "history.jsonl").read_text().splitlines()]
    for key in ("loss", "loss_align", "loss_recon", "tau", "lr", "step"):
        assert [r[key] for r in resumed] == [s[key] for s in straight], key
    with pytest.raises(LavimoInputError, match="other settings"):
        Trainer(training_dataset, out, make_train_config("tiny", {**TINY, "lr": "0.5"}), progress=False).resume()


def test_a_checkpoint_of_another_format_or_without_one_is_refused(
    training_dataset: Path, tiny_run: Path, tmp_path: Path
) -> None:
    state = torch.load(tiny_run / "model.pt", map_location="cpu", weights_only=True)
    assert state["format"] == CHECKPOINT_FORMAT
    model, _, _ = load_trained(tiny_run / "model.pt")  # a real one still loads
    assert not model.training
    other = tmp_path / "other.pt"
    torch.save({**state, "format": CHECKPOINT_FORMAT + 1}, other)
    unstamped = tmp_path / "unstamped.pt"
    torch.save({k: v for k, v in state.items() if k != "format"}, unstamped)
    found, expected = CHECKPOINT_FORMAT + 1, CHECKPOINT_FORMAT
    with pytest.raises(LavimoInputError, match=f"checkpoint format {found}, expected {expected}") as error:
        load_trained(other)
    assert error.value.path == str(other) and str(error.value).startswith(f"{other}: ")
    with pytest.raises(LavimoInputError, match=f"no checkpoint format stamp \\(expected {expected}\\)") as error:
        load_trained(unstamped)
    assert error.value.path == str(unstamped) and str(error.value).startswith(f"{unstamped}: ")
    # resuming from a last.pt of another format is refused too
    out = tmp_path / "resume"
    last = torch.load(tiny_run / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    (out / "checkpoints").mkdir(parents=True)
    torch.save({**last, "format": found}, out / "checkpoints" / "last.pt")
    with pytest.raises(LavimoInputError, match=f"checkpoint format {found}, expected {expected}") as error:
        Trainer(training_dataset, out, make_train_config("tiny", TINY), progress=False).resume()
    assert error.value.path == str(out / "checkpoints" / "last.pt")


def test_a_checkpoint_of_other_data_is_not_resumed(training_dataset: Path, tiny_run: Path, tmp_path: Path) -> None:
    # the workflow rebuilds the features with other settings (say, features.views): the run must start over,
    # not finish at once from a last.pt trained on the old cache, nor hand on the old best.pt as model.pt
    last = torch.load(tiny_run / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    assert last["data"]["features"] == FeatureCache.open_current(training_dataset / "features").encoder_id
    out = tmp_path / "3modal"
    (out / "checkpoints").mkdir(parents=True)
    torch.save(last, out / "checkpoints" / "last.pt")
    torch.save(last, out / "checkpoints" / "best.pt")
    same = Trainer(training_dataset, out, make_train_config("tiny", TINY), progress=False)
    assert same.resume() and same.epoch == last["epoch"]
    torch.save(
        {**last, "data": {**last["data"], "features": "efficientnet-lite0-0000000000"}}, out / "checkpoints" / "last.pt"
    )
    other = Trainer(training_dataset, out, make_train_config("tiny", TINY), progress=False)
    assert not other.resume() and other.epoch == 0 and not (out / "checkpoints" / "best.pt").exists()
    assert json.loads((tiny_run / "config.json").read_text())["environment"]["training_precision"] in ("bf16", "fp32")


def test_two_modal_run_needs_no_video(training_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "2modal"
    train(
        training_dataset, out, make_train_config("tiny", {**TINY, "epochs": "1", "variant": "2modal"}), progress=False
    )
    model, _, _ = load_trained(out)
    assert model.video_encoder is None
    history = json.loads((out / "history.jsonl").read_text().splitlines()[0])
    assert "loss_mv" not in history and set(history["val"]) == {"t2m", "m2t"}


def test_three_modal_without_a_feature_cache_names_the_missing_file(training_dataset: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "demo"
    shutil.copytree(training_dataset, copy, ignore=shutil.ignore_patterns("features"))
    with pytest.raises(LavimoInputError, match="meta"):
        train(copy, tmp_path / "run", make_train_config("tiny", TINY), progress=False)


def test_cli_trains_with_two_processes(training_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "lavimo.cli", "train", "--dataset-dir", str(training_dataset), "--out", str(out)]
    cmd += ["--preset", "tiny", "--set", "epochs=1", "--nproc", "2", "--no-progress"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((out / "config.json").read_text())
    assert config["environment"]["world_size"] == 2
    assert (out / "model.pt").is_file()


def test_evaluate_writes_protocol_metrics_retrievals_and_embeddings(tiny_run: Path) -> None:
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["variant"] == "3modal" and metrics["threshold"] == 0.8
    normal = metrics["protocols"]["normal"]
    assert set(normal) == {"t2m", "m2t", "v2m", "m2v"}
    assert set(normal["t2m"]) == {"R@1", "R@2", "R@3", "R@5", "R@10", "MedR"}
    assert "threshold" in metrics["protocols"]  # caption sentence embeddings were available
    for direction in normal:  # the threshold protocol only adds correct candidates
        assert metrics["protocols"]["threshold"][direction]["R@1"] >= normal[direction]["R@1"]
    emb = np.load(tiny_run / "test_embeddings.npz")
    n = metrics["clips"]
    assert emb["text"].shape == emb["motion"].shape == emb["video"].shape == (n, 32)
    assert np.allclose(np.linalg.norm(emb["motion"], axis=1), 1.0, atol=1e-4)
    retrieval = json.loads((tiny_run / "retrieval.json").read_text())
    assert retrieval["t2m"] and all(len(q["top"]) == min(5, n) and q["caption"] for q in retrieval["t2m"])
    csv_rows = (tiny_run / "metrics.csv").read_text().splitlines()
    assert csv_rows[0].startswith("protocol,direction,R@1") and len(csv_rows) == 1 + sum(
        len(v) for v in metrics["protocols"].values()
    )


def test_report_of_a_tiny_finished_run(tiny_run: Path, tmp_path: Path) -> None:
    from lavimo.cli import main

    results = tiny_run.parents[2]
    out = tmp_path / "report.html"
    assert main(["report", "--results", str(results), "--out", str(out), "--datasets", "demo"]) == 0
    html = out.read_text()
    metrics = json.loads((tiny_run / "metrics.json").read_text())["protocols"]["normal"]["t2m"]
    assert f"{metrics['R@10']:.2f}" in html and "ours 3-modal" in html
    assert html.count("data:image/png;base64,") >= 3  # training curves + qualitative frame strips
    assert "Bandai-Namco-Research-Motiondataset" in html


def test_a_flipped_view_is_paired_with_the_mirrored_motion_and_caption(training_dataset: Path, tmp_path: Path) -> None:
    """hflip_pairing=mirror: a flipped training view comes with the `M` clip's motion and caption (what the flipped
    video shows); an unflipped one with its own. The default ("original") keeps the clip's own for every view."""
    train_ids = split_ids(training_dataset, "train")
    stats = compute_motion_stats(training_dataset, train_ids)
    features = FeatureCache.open_current(training_dataset / "features")
    sentences = SentenceCache(training_dataset / "sentences")
    common = {"features": features, "sentences": sentences, "max_frames": 10_000, "train": True}
    mirror = RetrievalDataset(training_dataset, "train", stats, hflip_pairing="mirror", **common)
    original = RetrievalDataset(training_dataset, "train", stats, **common)
    position = {clip_id: i for i, clip_id in enumerate(mirror.clip_ids)}
    seen = {True: 0, False: 0}
    for epoch in range(3):
        mirror.set_epoch(epoch)
        original.set_epoch(epoch)
        for i, clip_id in enumerate(mirror.clip_ids):
            sample, own = mirror[i], original[i]
            assert torch.equal(sample["video"], own["video"]) and sample["clip_id"] == own["clip_id"] == clip_id
            assert torch.equal(own["motion"], torch.from_numpy(original.motions[i]))
            view = next(
                v
                for v in range(features.n_views(clip_id))
                if np.array_equal(features.get(clip_id, v), own["video"].numpy().astype(np.float16))
            )
            flipped = features.view_flipped(clip_id, view)
            seen[flipped] += 1
            other = position[clip_id[1:] if clip_id.startswith("M") else "M" + clip_id] if flipped else i
            assert torch.equal(sample["motion"], torch.from_numpy(mirror.motions[other]))
            assert sample["text"] in mirror.captions[other]
            assert np.allclose(sample["sentence_emb"].numpy(), sentences.get(sample["text"]))
    assert seen[True] > 0 and seen[False] > 0
    # a cache that does not record its flips is refused in one line naming it
    old = tmp_path / features.path.name
    shutil.copytree(features.path, old)
    meta = json.loads((old / "meta.json").read_text())
    del meta["augmentation"]["hflip_draw"]
    (old / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(LavimoInputError, match="rebuild it"):
        RetrievalDataset(
            training_dataset, "train", stats, **{**common, "features": FeatureCache(old)}, hflip_pairing="mirror"
        )


def test_a_corrupt_or_poisoned_motion_shard_is_named_in_one_line(training_dataset: Path, tmp_path: Path) -> None:
    """A flipped byte in a motion shard (its members' CRC-32) and a clip with NaN features (which would turn every
    clip's normalised features into NaN through the statistics) are input errors naming the shard or the clip."""
    from lavimo.datasets.manifest import iter_shard, read_shard_meta, shard_path, shards, write_shard

    dataset = tmp_path / "demo"
    shutil.copytree(training_dataset, dataset, ignore=shutil.ignore_patterns("runs", "frames", "features"))
    shard = shards(dataset)[0]
    path = shard_path(dataset, shard)
    motions = {clip_id: (joints, features) for clip_id, joints, features in iter_shard(dataset, shard)}
    meta = read_shard_meta(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(LavimoInputError, match=f"{shard}.*corrupt motion shard"):
        list(iter_shard(dataset, shard))
    train_ids = split_ids(dataset, "train")
    poisoned = next(c for c in motions if c in train_ids)
    joints, features = motions[poisoned]
    features = features.copy()
    features[3, 7] = np.nan
    motions[poisoned] = (joints, features)
    write_shard(path, motions, meta)
    with pytest.raises(LavimoInputError, match=f"clip {poisoned} has NaN/Inf motion features"):
        compute_motion_stats(dataset, train_ids)


def test_metrics_record_the_training_targets_the_run_was_trained_with(training_dataset: Path, tmp_path: Path) -> None:
    """metrics.json names the run's own targets (rule, threshold, scale) beside protocol (b)'s, which are another
    setting; a run with TMR's filter rule at raw cos 0.7 must not be recorded as the default."""
    from lavimo.evaluate_run import evaluate_run

    overrides = {**TINY, "epochs": "1", "model.soft_targets": "filter", "model.target_threshold": "0.7"}
    run = tmp_path / "filter07"
    train(training_dataset, run, make_train_config("tiny", overrides), progress=False)
    metrics = evaluate_run(run, threshold=0.85)
    assert metrics["caption_similarity"] == {
        "protocol_b": {"threshold": 0.85, "scale": "(1+cos)/2", "rule": "correct where s > threshold"},
        "training_targets": {"rule": "filter", "threshold": 0.7, "scale": "cos"},
    }
    assert json.loads((run / "metrics.json").read_text())["caption_similarity"] == metrics["caption_similarity"]
