"""Training settings are checked where they are made, torch-free: ranges, choices, unknown keys; a run folder of
other data or settings is not overwritten; the Snakefile refuses a bad `train.overrides` before any job runs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from workflow_helpers import run_snakemake

from lavimo.train_config import check_run_folder, make_train_config


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("epochs", "-1", "epochs must be a finite number >= 1"),
        ("epochs", "0", "epochs must be a finite number >= 1"),
        ("batch_size", "0", "batch_size must be a finite number >= 2"),
        ("eval_every", "0", "eval_every"),
        ("max_frames", "0", "max_frames"),
        ("lr", "0", "lr must be > 0"),
        ("lr", "nan", "lr must be a finite number"),
        ("lr_min", "1", "lr_min"),
        ("precision", "banana", "precision must be one of"),
        ("hflip_pairing", "sideways", "hflip_pairing must be one of"),
        ("device", "gpu", "device must be"),
        ("views", "-2", "views"),
        ("epochs", "2.5", "epochs must be a whole number"),
        ("model.latent_dim", "-4", "latent_dim must be a whole number >= 1"),
        ("model.dropout", "2.0", "dropout must lie in [0, 1)"),
        ("model.num_heads", "0", "num_heads"),
        ("model.activation", "swish", "activation must be one of"),
        ("model.soft_targets", "pull", "soft_targets must be one of"),
        ("model.target_scale", "cos2", "target_scale must be one of"),
        ("model.target_threshold", "1.5", "target_threshold 1.5 is outside [-1, 1]"),
        ("model.latnet_dim", "64", "unknown model setting(s) ['model.latnet_dim']"),
        ("epoch", "3", "unknown training setting 'epoch'"),
    ],
)
def test_a_setting_out_of_range_or_misspelt_is_refused(key: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        make_train_config("demo", {key: value})


def test_every_preset_passes_its_own_checks_and_the_check_is_torch_free() -> None:
    for preset in ("demo", "paper", "tiny"):
        make_train_config(preset)
    code = (
        "import sys; from lavimo.train_config import make_train_config as m; m('paper'); print('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_lavimo_train_refuses_bad_settings_in_one_line(tmp_path: Path) -> None:
    """Exit 2 and one line, before torch is loaded or a folder is made."""
    out = tmp_path / "run"
    for setting in ("epochs=-1", "precision=banana", "model.dropout=2.0"):
        result = subprocess.run(
            [sys.executable, "-m", "lavimo.cli", "train", "--dataset-dir", str(tmp_path), "--out", str(out),
             "--preset", "demo", "--set", setting],
            capture_output=True, text=True,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
        assert setting.split("=")[0].removeprefix("model.") in result.stderr
    assert not out.exists()


def test_a_run_folder_of_another_dataset_or_other_settings_is_not_overwritten(tmp_path: Path) -> None:
    cfg = make_train_config("demo")
    run = tmp_path / "run"
    run.mkdir()
    dataset, other = tmp_path / "demo", tmp_path / "kitml"
    check_run_folder(run, dataset, cfg)  # an empty folder: fine
    config = {"dataset": "kitml", "dataset_dir": str(other), "train": cfg.to_dict()}
    (run / "config.json").write_text(json.dumps(config))
    from lavimo.io import LavimoInputError

    with pytest.raises(LavimoInputError, match=r"another dataset \(kitml.*--restart"):
        check_run_folder(run, dataset, cfg)
    check_run_folder(run, other, cfg)  # the same dataset and settings: resumed
    with pytest.raises(LavimoInputError, match=r"other settings \(epochs\).*--restart"):
        check_run_folder(run, other, make_train_config("demo", {"epochs": "5"}))
    check_run_folder(run, other, make_train_config("demo", {"num_workers": "2"}))  # does not change the numbers
    result = subprocess.run(
        [sys.executable, "-m", "lavimo.cli", "train", "--dataset-dir", str(dataset), "--out", str(run),
         "--preset", "demo"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2 and "another dataset" in result.stderr and "--restart" in result.stderr
    assert json.loads((run / "config.json").read_text()) == config  # untouched


def test_snakemake_refuses_a_bad_override_before_any_job(repo_root: Path, tmp_path: Path) -> None:
    results = f"results_dir={tmp_path / 'results'}"
    for overrides, message in (
        ("{'epochs': -1}", "train.overrides (preset demo): epochs must be a finite number >= 1"),
        ("{'model.latnet_dim': 64}", "unknown model setting(s) ['model.latnet_dim']"),
    ):
        result = run_snakemake(repo_root, "-n", "--config", f"train={{'overrides': {overrides}}}", results)
        assert result.returncode != 0 and message in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_a_failing_torchrun_process_gives_one_line_and_exit_2(tmp_path: Path) -> None:
    """`lavimo train --nproc 2` on a folder that is no dataset: both processes fail on the same input; the parent
    prints that line once, without torchrun's ChildFailedError report, and exits 2 as a single process does."""
    (tmp_path / "empty").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "lavimo.cli", "train", "--dataset-dir", str(tmp_path / "empty"),
         "--out", str(tmp_path / "run"), "--preset", "tiny", "--nproc", "2"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert result.returncode == 2, result.stderr
    assert errors == [errors[0]] and errors[0].startswith("lavimo: error: ") and str(tmp_path) in errors[0]
    assert "Traceback" not in result.stderr and "ChildFailedError" not in result.stderr
