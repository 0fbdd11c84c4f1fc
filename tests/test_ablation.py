"""The 3-modal vs 2-modal ablation: statistics by hand, a summary of real tiny runs, the workflow's study runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from workflow_helpers import snakemake_output

from lavimo.ablation import describe, paired_difference, study_summary
from lavimo.evaluate import write_metrics
from lavimo.text.similarity import similarity_record


def test_mean_std_and_paired_difference_by_hand() -> None:
    assert describe([40.0, 42.0, 44.0]) == {"mean": 42.0, "std": 2.0, "values": [40.0, 42.0, 44.0]}
    noisy = paired_difference([40.0, 42.0, 44.0], [41.0, 41.0, 41.0], lower_is_better=False)
    # diffs -1, 1, 3: mean 1, std 2, 95% CI 1 ± 4.303 * 2 / sqrt(3) = 1 ± 4.97
    assert noisy["diff"]["mean"] == 1.0 and noisy["diff"]["std"] == 2.0
    assert noisy["diff"]["ci"] == [-3.97, 5.97] and noisy["verdict"] == "within noise"
    clear = paired_difference([45.0, 46.0, 47.5], [40.0, 41.0, 42.0], lower_is_better=False)
    assert clear["verdict"] == "better" and clear["diff"]["ci"][0] > 0
    assert paired_difference([40.0, 41.0, 42.5], [45.0, 46.0, 47.0], False)["verdict"] == "worse"
    # MedR: lower is better, so a positive difference is worse
    assert paired_difference([5.0, 6.0, 6.5], [3.0, 3.0, 3.5], lower_is_better=True)["verdict"] == "worse"


def _fake_run(path: Path, r1: float, video: bool, dataset: str = "demo") -> Path:
    directions = ("t2m", "m2t", "v2m", "m2v") if video else ("t2m", "m2t")
    metrics = {
        d: {"R@1": r1, "R@2": r1 + 5, "R@3": r1 + 8, "R@5": r1 + 12, "R@10": r1 + 20, "MedR": 3.0} for d in directions
    }
    similarity = similarity_record((0.8, "(1+cos)/2"), ("keep", 0.8, "cos"))
    extra = {"dataset": dataset, "variant": "3modal" if video else "2modal", "caption_similarity": similarity}
    write_metrics({"normal": metrics}, path / "metrics.json", path / "metrics.csv", extra)
    return path


def test_summary_pairs_seeds_and_leaves_video_directions_unpaired(tmp_path: Path) -> None:
    runs = {
        "3modal": {s: _fake_run(tmp_path / f"3m{s}", r, True) for s, r in enumerate([40.0, 42.0, 44.0])},
        "2modal": {s: _fake_run(tmp_path / f"2m{s}", r, False) for s, r in enumerate([41.0, 41.0, 41.0])},
    }
    summary = study_summary(runs, "demo")
    cell = summary["results"]["normal"]["t2m"]["R@1"]
    assert cell["3modal"]["mean"] == 42.0 and cell["2modal"]["std"] == 0.0 and cell["verdict"] == "within noise"
    assert set(summary["results"]["normal"]["v2m"]["R@1"]) == {"3modal"}  # no 2-modal video, no verdict
    assert summary["seeds"] == [0, 1, 2] and summary["caption_similarity"]["protocol_b"]["scale"] == "(1+cos)/2"
    del runs["2modal"][2]
    assert study_summary(runs, "demo")["seeds"] == [0, 1]  # only seeds both variants have are paired
    (tmp_path / "2m0" / "metrics.json").unlink()
    from lavimo.io import LavimoInputError

    with pytest.raises(LavimoInputError, match="2m0"):
        study_summary(runs, "demo")


def _cli_error(capsys: pytest.CaptureFixture[str], *args: object) -> str:
    """The one error line of a `lavimo` command that must fail with exit code 2."""
    from lavimo.cli import main

    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("lavimo: error: ")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_runs_whose_metrics_are_not_what_their_label_says_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    three = [_fake_run(tmp_path / f"3m{s}", r, True) for s, r in enumerate([40.0, 42.0])]
    two = [_fake_run(tmp_path / f"2m{s}", r, False) for s, r in enumerate([41.0, 41.0])]
    out = tmp_path / "ablation.json"

    def ablation(dataset: str, *specs: str) -> list[str]:
        return ["ablation", "--dataset", dataset, "--out", out, *(a for spec in specs for a in ("--run", spec))]

    # a 3-modal run passed as the 2-modal one of seed 1 ("diff +0.00, within noise" before)
    stray = _fake_run(tmp_path / "stray", 42.0, True)
    line = _cli_error(capsys, *ablation("demo", f"3modal:0:{three[0]}", f"3modal:1:{three[1]}",
                                         f"2modal:0:{two[0]}", f"2modal:1:{stray}"))  # fmt: skip
    assert line.startswith(f"lavimo: error: {stray / 'metrics.json'}: metrics of a 3modal run") and "2modal" in line
    line = _cli_error(capsys, *ablation("demo", f"3modal:0:{three[0]}", f"2modal:0:{three[0]}"))
    assert line.startswith(f"lavimo: error: {three[0]}: given twice, as 3modal:0 and 2modal:0")
    # demo runs summarised as KIT-ML
    line = _cli_error(capsys, *ablation("KIT-ML", f"3modal:0:{three[0]}", f"2modal:0:{two[0]}"))
    assert line.startswith(f"lavimo: error: {three[0] / 'metrics.json'}: metrics of a demo run") and "KIT-ML" in line
    # a metrics.json without its dataset (not lavimo evaluate's), an unknown variant, a label given twice
    metrics = json.loads((two[1] / "metrics.json").read_text())
    del metrics["dataset"]
    (two[1] / "metrics.json").write_text(json.dumps(metrics))
    line = _cli_error(capsys, *ablation("demo", f"3modal:1:{three[1]}", f"2modal:1:{two[1]}"))
    assert line.startswith(f"lavimo: error: {two[1] / 'metrics.json'}: records no dataset")
    line = _cli_error(capsys, *ablation("demo", f"3modal:0:{three[0]}", f"3-modal:0:{two[0]}"))
    assert "--run: unknown variant '3-modal'" in line
    line = _cli_error(capsys, *ablation("demo", f"3modal:0:{three[0]}", f"2modal:0:{two[0]}", f"2modal:0:{two[1]}"))
    assert "--run: 2modal seed 0 is given twice" in line
    assert "expects VARIANT:SEED:DIR" in _cli_error(capsys, *ablation("demo", "3modal:x:/tmp"))
    assert not out.exists()
    # the right labels, and a dataset name spelled another way, are accepted
    kit = [_fake_run(tmp_path / f"kit{v}", 40.0, v == "3modal", dataset="kitml") for v in ("3modal", "2modal")]
    summary = study_summary({"3modal": {0: kit[0]}, "2modal": {0: kit[1]}}, "KIT-ML")
    assert summary["dataset"] == "KIT-ML" and summary["seeds"] == [0]


def test_cli_summarises_real_tiny_runs(
    training_dataset: Path, tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from helpers import TINY_TRAIN

    from lavimo.cli import main
    from lavimo.evaluate_run import evaluate_run
    from lavimo.train import make_train_config, train

    specs = [f"3modal:0:{tiny_run}"]
    for variant, seed in (("2modal", 0), ("3modal", 1), ("2modal", 1)):
        out = tmp_path / f"{variant}-seed{seed}"
        train(
            training_dataset,
            out,
            make_train_config("tiny", {**TINY_TRAIN, "variant": variant, "seed": str(seed)}),
            progress=False,
        )
        evaluate_run(out)
        specs.append(f"{variant}:{seed}:{out}")
    out = tmp_path / "ablation.json"
    args = ["ablation", "--dataset", "demo", "--out", str(out)] + [a for s in specs for a in ("--run", s)]
    assert main(args) == 0
    summary = json.loads(out.read_text())
    assert summary["seeds"] == [0, 1] and summary["runs"]["3modal"]["0"] == str(tiny_run)
    for protocol in ("normal", "threshold"):  # 6 test clips: fewer than one batch of 32 for protocol (d)
        cell = summary["results"][protocol]["t2m"]["R@1"]
        assert len(cell["3modal"]["values"]) == len(cell["2modal"]["values"]) == 2
        assert cell["diff"]["values"] == [
            round(a - b, 2) for a, b in zip(cell["3modal"]["values"], cell["2modal"]["values"], strict=True)
        ]
        assert cell["verdict"] in {"better", "worse", "within noise"}
    assert summary["encoders"]["frames"].startswith("tiny-")
    capsys.readouterr()
    assert main(["ablation", "--show", str(out)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| default |")]
    cell = summary["results"]["normal"]["t2m"]["R@1"]
    first = rows[0].split(" | ")
    assert first[1:4] == ["normal", "t2m", "R@1"] and first[4] == "2"
    assert (
        first[5] == f"{cell['3modal']['mean']:.2f} ± {cell['3modal']['std']:.2f}"
        and first[-1] == f"{cell['verdict']} |"
    )
    assert len(rows) == 8 + 2 * 2  # protocols (a), (b) x t2m, m2t x R@1, R@10; then per protocol a row per variant
    side_by_side = [r.split(" | ") for r in rows[8:]]
    assert [r[1] for r in side_by_side] == ["3modal", "2modal"] * 2
    t2m_r5 = summary["results"]["threshold"]["t2m"]["R@5"]["3modal"]
    assert side_by_side[2][4] == f"{t2m_r5['mean']:.2f} ± {t2m_r5['std']:.2f}"  # protocol (b), 3-modal, t2m R@5
    assert side_by_side[1][-1] == "– |"  # the 2-modal variant has no m2v


def test_evaluating_another_split_leaves_the_runs_own_metrics_alone(tiny_run: Path) -> None:
    from lavimo.evaluate_run import evaluate_run

    before = (tiny_run / "metrics.json").read_bytes()
    result = evaluate_run(tiny_run, split="val")
    assert Path(result["out_dir"]) == tiny_run / "evaluations" / "demo_val"
    assert (tiny_run / "metrics.json").read_bytes() == before
    other = json.loads((tiny_run / "evaluations" / "demo_val" / "metrics.json").read_text())
    assert other["split"] == "val" and other["caption_similarity"] == {
        "protocol_b": {"threshold": 0.8, "scale": "(1+cos)/2", "rule": "correct where s > threshold"},
        "training_targets": {"rule": "keep", "threshold": 0.8, "scale": "cos"},
    }


def test_ablation_targets_train_every_seed_and_study(repo_root: Path) -> None:
    output = snakemake_output(repo_root, "-n", "-p", "--forceall", "ablation_demo", "ablation_studies_demo")
    commands = [line.split("Shell command: ")[-1].strip() for line in output.splitlines()]
    trains = [line for line in commands if line.startswith("lavimo train")]
    outs = {line.split("--out ")[1].split()[0] for line in trains}
    # default study: seed 0 is the pipeline's own run; seeds 1, 2 of both variants; 6 video-only studies x 3 seeds
    # (3-modal); 5 training-target studies x 3 seeds x both variants
    assert "results/demo/runs/3modal" in outs and "results/demo/runs/2modal" in outs
    assert {f"results/demo/ablation/default/{v}/seed{s}" for v in ("3modal", "2modal") for s in (1, 2)} <= outs
    video_only = [o for o in outs if "/default/" not in o and "/targets_" not in o and "/ablation/" in o]
    assert not any("/2modal/" in o for o in video_only)  # video-only studies reuse the default's 2-modal runs
    assert len(outs) == 2 + 4 + 6 * 3 + 5 * 3 * 2
    views8 = next(line for line in trains if "ablation/views8/3modal/seed2" in line)
    assert "--set seed=2" in views8 and "--set views=8" in views8 and "--set features=ablation-views8" in views8
    assert "--set model.soft_targets=keep --set model.target_threshold=0.8 --set model.target_scale=cos" in views8
    old_targets = next(line for line in trains if "ablation/targets_rescaled08/2modal/seed1" in line)
    assert old_targets.index("--set model.target_scale=cos") < old_targets.index("--set 'model.target_scale=(1+cos)/2'")
    evaluations = [line for line in commands if line.startswith("lavimo evaluate")]
    assert all("--threshold 0.8 --threshold-scale '(1+cos)/2'" in line for line in evaluations)
    mirror = next(line for line in trains if "ablation/hflip_mirror/3modal/seed1" in line)
    assert "--set hflip_pairing=mirror" in mirror and "--set features=" not in mirror  # the default cache
    builds = [line for line in commands if line.startswith("lavimo features build")]
    assert any("--pointer ablation-no_hflip" in b and "--hflip-p 0.0" in b for b in builds)
    assert any("--pointer ablation-views8" in b and "--views 8" in b for b in builds)
    # the demo caches 1 view (features.views: auto, lavimo/presets.py); the views4 study keeps 4 measurable
    assert any("--pointer ablation-views4" in b and "--views 4" in b for b in builds)
