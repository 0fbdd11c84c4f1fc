"""What the benchmarks share: the workflow config as the Snakefile sees it, and the demo BVH files."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from lavimo.io import LavimoInputError
from lavimo.presets import resolve_views

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def _fill_defaults(
    validator: jsonschema.protocols.Validator, properties: dict[str, Any], instance: Any, schema: dict[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    """The ``properties`` keyword that first sets every missing property that has a default (a copy of it)."""
    if validator.is_type(instance, "object"):
        for name, subschema in properties.items():
            if "default" in subschema:
                instance.setdefault(name, copy.deepcopy(subschema["default"]))
    yield from jsonschema.Draft202012Validator.VALIDATORS["properties"](validator, properties, instance, schema)


DefaultsValidator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"properties": _fill_defaults})


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The workflow config at ``path`` (none: an empty one), validated against ``workflow/schemas`` with every
    missing key set to the schema's default, as the Snakefile's ``validate(config, ...)`` does."""
    config_path = Path(path)
    config = (yaml.safe_load(config_path.read_text()) or {}) if config_path.is_file() else {}
    if not SCHEMA.is_file():
        raise LavimoInputError(SCHEMA, "the workflow config schema is missing: run the benchmarks in a lavimo checkout")
    try:
        DefaultsValidator(yaml.safe_load(SCHEMA.read_text())).validate(config)
    except jsonschema.ValidationError as error:
        where = "/".join(map(str, error.absolute_path)) or "the top level"
        raise LavimoInputError(config_path, f"{error.message} (at {where}; schema {SCHEMA.name})") from error
    return config


def full_dataset_views(config: dict[str, Any]) -> int:
    """Views per training clip the benches measure: those of a full dataset (HumanML3D) under this config, what the
    projections are for (``features.views: auto`` caches fewer for the demo)."""
    return resolve_views(config["features"]["views"], config["preset"], "humanml3d")


def demo_bvh_files(config: dict[str, Any], scratch: Path) -> list[Path]:
    """The BVH files of the demo bundle named in ``config``, unpacked into ``scratch`` (sorted)."""
    from lavimo.datasets.bundle import unpack_bundle

    folders = unpack_bundle(config["datasets"]["demo"]["bundle"], scratch)
    return sorted(p for folder in folders.values() for p in (folder / "data").glob("*.bvh"))
