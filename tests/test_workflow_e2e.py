"""End to end: `snakemake` on a tiny demo config (4 source clips + mirrors, one pair held out for test), then a rerun
that does nothing."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from workflow_helpers import run_tiny_workflow, write_tiny_config

from lavimo.datasets import load_manifest
from lavimo.datasets.splits import read_split
from lavimo.text.sentences import SentenceCache
from lavimo.video.cache import FeatureCache

pytestmark = pytest.mark.slow


def assert_real_metrics(run: Path, test_ids: list[str], video: bool) -> None:
    """The run was evaluated on its whole test split: finite percentages and ranks, retrieval over its clip ids."""
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["clips"] == len(test_ids)
    directions = {"t2m", "m2t", "v2m", "m2v"} if video else {"t2m", "m2t"}
    assert {"normal", "threshold", "dissimilar"} <= set(metrics["protocols"])
    for by_direction in metrics["protocols"].values():
        assert set(by_direction) == directions
        values = [v for cell in by_direction.values() for v in cell.values()]
        assert len(values) == 6 * len(directions) and all(math.isfinite(v) and 0 <= v <= 100 for v in values)
    retrieval = json.loads((run / "retrieval.json").read_text())
    assert set(retrieval) == ({"t2m", "v2m"} if video else {"t2m"})
    for entries in retrieval.values():
        assert entries and all(e["query"] in test_ids for e in entries)
        assert all(sorted(clip for clip, _ in e["top"]) == sorted(test_ids) for e in entries)  # each ranks them all


def test_demo_pipeline_runs_and_resumes(tmp_path: Path) -> None:
    results = tmp_path / "results"
    configfile = write_tiny_config(tmp_path / "tiny.yaml", results)

    built = run_tiny_workflow(configfile, "all", "evaluate_all")
    assert built.count("rule evaluate:") == 2, built[-5000:]  # both variants evaluated on the test split

    manifest = load_manifest(results / "demo")
    assert len(manifest) == 8  # 4 clips and their mirrors
    assert (results / "avatars/anny/contact_sheet.png").stat().st_size > 10_000
    for clip_id in manifest["clip_id"]:
        clip_dir = results / "demo/frames" / clip_id
        assert sorted(p.name for p in clip_dir.glob("*.png")) == [f"{i:02d}.png" for i in range(8)]
        meta = json.loads((clip_dir / "meta.json").read_text())
        assert len(meta["indices"]) == 8

    cache = FeatureCache.open_current(results / "demo/features")
    assert cache.meta["encoder"]  # which weights were used is recorded
    train_clip = manifest.loc[manifest["split"] == "train", "clip_id"].iloc[0]
    assert cache.get(train_clip, 0).shape[0] == 8
    sentences = SentenceCache(results / "demo/sentences")
    first_caption = manifest["texts"].iloc[0][0]["text"]
    assert sentences.get(first_caption).ndim == 1

    test_ids = read_split(results / "demo/splits/test.txt")
    assert len(test_ids) == 2  # a limited demo is split by dataset: one of the 4 sources and its mirror
    for variant in ("3modal", "2modal"):
        run = results / "demo/runs" / variant
        history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
        config = json.loads((run / "config.json").read_text())
        assert len(history) == 2 and config["variant"] == variant
        assert config["train"]["batch_size"] == config["data"]["train_clips"] == 6
        assert_real_metrics(run, test_ids, video=variant == "3modal")
    html = (results / "report.html").read_text()
    assert "Bandai-Namco-Research-Motiondataset" in html and "data:image/png;base64," in html

    rerun = run_tiny_workflow(configfile, "all", "evaluate_all")
    assert "Nothing to be done" in rerun
