"""End to end: `snakemake` on a tiny demo config (4 source clips + mirrors), then a rerun that does nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lavimo.datasets import load_manifest
from lavimo.text.sentences import SentenceCache
from lavimo.video.cache import FeatureCache

pytestmark = pytest.mark.slow

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def _snakemake(repo_root: Path, configfile: Path, *targets: str) -> str:
    result = subprocess.run(
        [SNAKEMAKE, "--cores", "2", "--configfile", str(configfile), *targets],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    return output


def test_demo_pipeline_runs_and_resumes(repo_root: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    configfile = tmp_path / "tiny.yaml"
    tiny = {"results_dir": str(results), "datasets": {"demo": {"limit": 4}}, "preset": "tiny", "train": {"threads": 2}}
    configfile.write_text(yaml.safe_dump(tiny))

    output = _snakemake(repo_root, configfile)
    timing = output[output.index("Time per rule") :]  # printed at the end from the rules' benchmark files
    for rule in ("prepare", "render_shard", "features", "features_merge", "train", "evaluate", "report"):
        assert f"\n{rule} " in timing

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

    for variant in ("3modal", "2modal"):
        run = results / "demo/runs" / variant
        history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
        assert len(history) == 2 and json.loads((run / "config.json").read_text())["variant"] == variant
        assert "protocols" in json.loads((run / "metrics.json").read_text())  # 8 clips: all train, so no test set
    html = (results / "report.html").read_text()
    assert "Bandai-Namco-Research-Motiondataset" in html and "data:image/png;base64," in html

    rerun = _snakemake(repo_root, configfile)
    assert "Nothing to be done" in rerun
