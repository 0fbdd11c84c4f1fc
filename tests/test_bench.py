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
