"""The benchmarks' workflow config: validated and completed with the schema's defaults, as the Snakefile does."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from lavimo.bench.common import SCHEMA, load_config
from lavimo.io import LavimoInputError


def snakefile_config(config: dict) -> dict:
    """What the Snakefile's ``validate(config, "workflow/schemas/config.schema.yaml")`` makes of ``config``."""
    validate(config, str(SCHEMA))
    return config


def test_config_gets_the_snakefile_defaults(repo_root: Path, tmp_path: Path) -> None:
    expected = snakefile_config(yaml.safe_load((repo_root / "config.yaml").read_text()))
    assert load_config(repo_root / "config.yaml") == expected
    partial = tmp_path / "partial.yaml"
    partial.write_text("datasets_enabled: [kitml]\nrender: {mesh_detail: 1}\n")
    config = load_config(partial)
    assert config == snakefile_config(yaml.safe_load(partial.read_text()))
    assert config["render"] == {**expected["render"], "mesh_detail": 1} and config["datasets_enabled"] == ["kitml"]
    assert config["datasets"]["demo"]["bundle"] == "resources/demo" and config["results_dir"] == "results"


def test_missing_config_is_all_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path / "none.yaml")
    assert config == snakefile_config({})
    assert config["datasets_enabled"] == ["demo"] and config["avatars"]["backend"] == "anny"
    config["datasets"]["demo"]["bundle"] = "elsewhere"  # each load gets its own copy of the defaults
    assert load_config(tmp_path / "none.yaml")["datasets"]["demo"]["bundle"] == "resources/demo"


@pytest.mark.parametrize(
    ("text", "where"),
    [("datasets_enabled: [demo]\nrender: {engine: povray}\n", "render/engine"), ("typo_key: 1\n", "top level")],
)
def test_bad_config_names_the_file_and_the_key(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(LavimoInputError, match=where) as error:
        load_config(path)
    assert error.value.path == str(path)


def test_a_humanml3d_sized_dag_plans_shards_not_clips(repo_root: Path, tmp_path: Path) -> None:
    """`lavimo bench dag`'s run on 1,000 clips: a real prepared-dataset manifest, and one render job per shard."""
    from lavimo.bench.dag import humanml3d_dag, split_counts
    from lavimo.datasets.manifest import load_manifest

    run, shards, _ = humanml3d_dag(tmp_path, load_config(repo_root / "config.yaml"), 1000)
    assert run.returncode == 0, run.output[-3000:]
    manifest = load_manifest(tmp_path / "results" / "humanml3d")
    assert len(manifest) == 1000 and shards == 8 and manifest.groupby("shard").size().max() == 128
    assert (manifest["clip_id"].str.startswith("M") == (manifest["mirrored_from"] != "")).all()
    assert manifest["mirrored_from"].ne("").sum() == 500
    by_source = manifest[manifest["mirrored_from"] == ""]["split"].value_counts().to_dict()
    assert by_source == split_counts(500)  # a clip and its mirror share a split
    assert run.jobs["render_shard"] == shards and run.jobs["train"] == 1
    assert run.jobs["total"] <= 3 * shards + 10  # jobs grow with shards, not with clips
    assert 0 < run.peak_bytes < 2 * 2**30


def test_the_projection_spreads_shard_jobs_over_the_cluster_and_keeps_one_job_stages_on_one_node() -> None:
    from lavimo.bench.dag import split_counts
    from lavimo.bench.scale import NODE_CORES, NODES, StageCost, fit, project, table

    assert fit("x", (4, 12), (10.0, 26.0), "") == StageCost("x", 2.0, 2.0, "")
    assert fit("x", (4, 12), (10.0, 9.0), "") == StageCost("x", 0.75, 0.0, "")  # noise: all per clip
    costs = {name: StageCost(name, 1.0, 5.0, "sample") for name in ("prepare", "render", "features", "sentences")}
    train = {"preset": "paper", "sample": "s", "eval_sample": "s", "train_cpu_per_sample": 2.0,
             "eval_cpu_per_clip": 0.5}  # fmt: skip
    rows = {r.stage.split(" ")[0]: r for r in project(costs, train, epochs=400, gpu_train=None, clips=29_232)}
    shard_job = 5.0 + 128 * 1.0
    assert rows["render"].machine == -(-229 // NODE_CORES) * shard_job
    assert rows["render"].cluster == -(-229 // (NODE_CORES * NODES)) * shard_job
    assert rows["train"].machine == rows["train"].cluster == 400 * split_counts(29_232)["train"] * 2.0 / NODE_CORES
    assert rows["prepare"].machine == rows["prepare"].cluster == (5.0 + 29_232) / NODE_CORES
    assert rows["features"].gpu is None and rows["train"].gpu is None and rows["render"].gpu == "CPU stage"
    assert table(list(rows.values())).splitlines()[-1].endswith("| unmeasured |")


def test_bench_train_measures_each_precision_and_projects_humanml3d(training_dataset: Path) -> None:
    """`lavimo bench train` (LAVIMO_BENCH_PRECISIONS=fp32,bf16): each precision is the one trained with."""
    from lavimo.bench.train import HUMANML3D_TRAIN_CLIPS, measure, projected_hours
    from lavimo.train import make_train_config

    for precision in ("fp32", "bf16"):
        result = measure("tiny", str(training_dataset), steps=2, precision=precision, batch_size=4)
        assert result["precision"] == precision and result["variant"] == "3modal"
        assert result["samples_per_s"] > 0 and result["peak_memory_mb"] > 0
        assert result["epochs"] == make_train_config("tiny", {}).epochs
    assert HUMANML3D_TRAIN_CLIPS == 23_384
    assert projected_hours(23_384 / 3600, 400) == pytest.approx(400.0)


def test_bench_flip_compares_a_view_with_its_flip_its_mirror_and_another_clip(
    training_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On real demo motions drawn as frames: three cosines per clip, each in [-1, 1], a view closest to its own flip
    (a flip of a stick figure changes less than another motion does)."""
    import re

    from lavimo.cli import main

    results = tmp_path / "results"
    (results / "demo").mkdir(parents=True)
    (results / "demo" / "frames").symlink_to(training_dataset / "frames")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"results_dir": str(results)}))
    assert main(["bench", "flip", "--config", str(config), "--limit", "4"]) == 0
    out = capsys.readouterr().out
    means = {
        name: float(mean)
        for name, mean in re.findall(r"  (its own flip|the mirror clip|another clip)\s+mean (\S+)", out)
    }
    assert set(means) == {"its own flip", "the mirror clip", "another clip"} and "4 demo clips" in out
    assert all(-1.0 <= m <= 1.0 for m in means.values()) and means["its own flip"] > means["another clip"]
    empty = tmp_path / "empty.yaml"
    empty.write_text(yaml.safe_dump({"results_dir": str(tmp_path / "none")}))
    assert main(["bench", "flip", "--config", str(empty)]) == 2
