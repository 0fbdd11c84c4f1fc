"""The results layout (lavimo.layout): the names every other place reads, and its small helpers."""

from __future__ import annotations

import json
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


def test_pointers_keep_each_caches_key_and_old_files_load(tmp_path: Path) -> None:
    features, sentences = layout.features_dir(tmp_path), layout.sentences_dir(tmp_path)
    features.mkdir()
    sentences.mkdir()
    # as the feature and sentence caches have always written them
    (features / "current.json").write_text('{"encoder_id": "clip-vit-b32-0123456789", "weights": {"sha256": "ab"}}')
    (sentences / "current.json").write_text('{"name": "all-MiniLM-L6-v2", "model_id": "m", "fallback": true}')
    assert layout.read_pointer(features, layout.FEATURES_POINTER_KEY) == "clip-vit-b32-0123456789"
    assert layout.read_pointer(sentences, layout.SENTENCES_POINTER_KEY) == "all-MiniLM-L6-v2"
    path = layout.write_pointer(features, layout.FEATURES_POINTER_KEY, "other-9876543210", "ablation-x", weights={})
    assert path == features / "ablation-x.json" == layout.pointer_path(features, "ablation-x")
    assert json.loads(path.read_text()) == {"encoder_id": "other-9876543210", "weights": {}}
    with pytest.raises(LavimoInputError, match="names no cache"):
        layout.read_pointer(features, layout.SENTENCES_POINTER_KEY)
    with pytest.raises(LavimoInputError, match="does not exist"):
        layout.read_pointer(features, layout.FEATURES_POINTER_KEY, "missing")
