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
