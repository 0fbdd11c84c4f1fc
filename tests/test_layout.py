"""The results layout (lavimo.layout): the names every other place reads, and its small helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lavimo import layout
from lavimo.avatars.presets import PRESETS
from lavimo.datasets.humanml3d import check_layout
from lavimo.io import LavimoInputError


def test_the_schema_names_the_same_datasets(repo_root: Path) -> None:
    schema = yaml.safe_load((repo_root / "workflow/schemas/config.schema.yaml").read_text())
    assert tuple(schema["properties"]["datasets_enabled"]["items"]["enum"]) == layout.DATASETS
    assert set(schema["properties"]["datasets"]["properties"]) >= set(layout.DATASETS)


def test_one_avatar_file_per_preset() -> None:
    assert len(PRESETS) == layout.NUM_AVATARS


@pytest.mark.parametrize("dataset", ["humanml3d", "kitml"])
def test_a_missing_dataset_names_its_config_key_and_how_to_get_it(dataset: str, tmp_path: Path) -> None:
    with pytest.raises(LavimoInputError) as error:
        check_layout(tmp_path / "missing", dataset)
    assert str(error.value) == f"{tmp_path / 'missing'}: {layout.dataset_not_found(dataset)}"
    assert f"datasets.{dataset}.root" in str(error.value) and "not bundled" in str(error.value)


def test_clips_are_selected_with_their_mirrors() -> None:
    ids = ["002", "M001", "001", "M003", "004", "M004"]  # M003's source is not listed: it is a source itself
    assert layout.select_with_mirrors(ids, mirror=True) == [
        ("001", ""),
        ("002", ""),
        ("004", ""),
        ("M001", "001"),
        ("M003", ""),
        ("M004", "004"),
    ]
    assert layout.select_with_mirrors(ids, mirror=False) == [("001", ""), ("002", ""), ("004", ""), ("M003", "")]
    assert layout.select_with_mirrors(ids, mirror=True, limit=2) == [("001", ""), ("002", ""), ("M001", "001")]
    assert layout.unmirrored_id(layout.mirror_clip_id("012314")) == "012314" == layout.unmirrored_id("012314")
