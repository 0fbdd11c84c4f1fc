"""Reading a results tree: datasets (manifest, rejections), runs (config, history, metrics, retrieval), ablations.

Nothing here raises on a missing or unreadable input: it is noted in a :class:`Missing` and left out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lavimo.io import LavimoInputError, Rejection, read_rejections
from lavimo.layout import DATASETS, FEATURES_POINTER_KEY, features_dir, read_pointer
from lavimo.report.common import NOT_EVALUATED, PROTOCOLS, VARIANT_LABELS, VARIANTS, dataset_label, number

log = logging.getLogger(__name__)


class Missing:
    """Everything the report could not show, in the order found (rendered as the "Missing" note)."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, text: str) -> None:
        if text not in self.items:
            log.debug("missing: %s", text)
            self.items.append(text)

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class Run:
    """What one training run left behind; absent pieces are None / empty."""

    dataset: str
    variant: str
    path: Path
    config: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] | None = None
    retrieval: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        """ "{dataset}/{variant}"."""
        return f"{self.dataset}/{self.variant}"

    @property
    def label(self) -> str:
        return VARIANT_LABELS.get(self.variant, self.variant)

    def metric(self, protocol: str, direction: str, name: str) -> float | None:
        """A test metric from ``metrics.json``; None when absent or not a finite number."""
        try:
            return number(self.metrics["protocols"][protocol][direction][name])  # type: ignore[index]
        except (KeyError, TypeError):
            return None

    def has_protocol(self, protocol: str) -> bool:
        protocols = (self.metrics or {}).get("protocols")
        return isinstance(protocols, dict) and isinstance(protocols.get(protocol), dict)


@dataclass
class DatasetResults:
    """A dataset's folder under the results: manifest, rejects, runs."""

    name: str
    path: Path
    manifest: Any = None  # pandas.DataFrame
    rejections: list[Rejection] = field(default_factory=list)
    runs: dict[str, Run] = field(default_factory=dict)
    _captions: dict[str, str] | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return dataset_label(self.name)

    def ordered_runs(self, variants: Sequence[str] = VARIANTS) -> list[Run]:
        """The dataset's runs of ``variants``, in that order (the table order by default)."""
        return [self.runs[v] for v in variants if v in self.runs]

    def first_caption(self, clip_id: str) -> str | None:
        """The first caption of a clip in the manifest (None without a manifest or caption)."""
        if self.manifest is None:
            return None
        if self._captions is None:
            self._captions = {}
            for cid, texts in zip(self.manifest["clip_id"], self.manifest["texts"], strict=False):
                if texts is not None and len(texts) and isinstance(texts[0], Mapping):
                    self._captions[str(cid)] = str(texts[0].get("text", ""))
        return self._captions.get(clip_id)


@dataclass
class Tree:
    """A loaded results tree: its datasets in report order, and what was found missing so far."""

    results: Path
    datasets: list[DatasetResults]
    missing: Missing

    @property
    def runs(self) -> list[Run]:
        """Every run, dataset by dataset, in table order."""
        return [run for ds in self.datasets for run in ds.ordered_runs()]


def read_json(path: Path, missing: Missing, absent: str | None) -> Any:
    """Parsed JSON of ``path``; None (noted in ``missing``) when absent (``absent`` says why) or unreadable."""
    if not path.exists():
        if absent:
            missing.add(absent)
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        missing.add(f"{path}: unreadable ({error})")
        return None


def read_history(path: Path, missing: Missing) -> list[dict[str, Any]]:
    """Epoch records of ``history.jsonl``; unreadable lines are skipped (and noted), the rest kept."""
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        missing.add(f"{path}: unreadable ({error})")
        return []
    for line_number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            missing.add(f"{path}: line {line_number} is not JSON (skipped)")
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def load_run(results: Path, ds: str, variant: str, missing: Missing) -> Run | None:
    """A run folder's files (None when the folder does not exist)."""
    path = results / ds / "runs" / variant
    if not path.is_dir():
        return None
    run = Run(ds, variant, path)
    name = run.name
    run.config = read_json(path / "config.json", missing, f"{name}: no config.json")
    run.history = read_history(path / "history.jsonl", missing)
    if not run.history:
        missing.add(f"{name}: no training history (history.jsonl missing or empty)")
    run.metrics = read_json(path / "metrics.json", missing, f"{name}: {NOT_EVALUATED} (no metrics.json)")
    if run.metrics is not None and not isinstance(run.metrics.get("protocols"), dict):
        missing.add(f"{name}: metrics.json has no 'protocols'")
        run.metrics = None
    if run.metrics is not None:
        for protocol, label in PROTOCOLS:
            if not run.has_protocol(protocol):
                missing.add(f"{name}: protocol {label} not in metrics.json")
    run.retrieval = read_json(path / "retrieval.json", missing, f"{name}: no retrieval.json (no qualitative examples)")
    return run


def _rejections(path: Path, missing: Missing) -> list[Rejection]:
    try:
        return read_rejections(path)
    except (OSError, KeyError, ValueError) as error:
        missing.add(f"{path}: unreadable ({error})")
        return []


def load_dataset(results: Path, ds: str, variants: Sequence[str], missing: Missing) -> DatasetResults:
    """Manifest, rejects (of every stage, from the dataset's ``rejected.csv``) and runs of one dataset."""
    path = results / ds
    data = DatasetResults(ds, path)
    if not path.is_dir():
        missing.add(f"{ds}: no results folder {path}")
        return data
    manifest = path / "manifest.parquet"
    if manifest.exists():
        try:
            from lavimo.datasets.manifest import load_manifest

            data.manifest = load_manifest(path)
        except Exception as error:  # a broken manifest must not stop the report
            missing.add(f"{manifest}: unreadable ({error})")
    else:
        missing.add(f"{ds}: no manifest.parquet (dataset not prepared)")
    # every stage's rows, render included (merged from the shards' lists): each rejection once
    data.rejections = _rejections(path / "rejected.csv", missing)
    for variant in variants:
        run = load_run(results, ds, variant, missing)
        if run is None:
            missing.add(f"{ds}/{variant}: no run (runs/{variant}/ missing)")
        else:
            data.runs[variant] = run
    return data


def load_tree(results: Path, datasets: Sequence[str] | None, variants: Sequence[str]) -> Tree:
    """The datasets of ``results`` (default: every dataset folder found) with their runs of ``variants``."""
    missing = Missing()
    if not results.is_dir():
        missing.add(f"no results folder {results}")
    if datasets is None:
        datasets = [ds for ds in DATASETS if (results / ds).is_dir()]
        if not datasets:
            missing.add(f"no dataset results under {results} (looked for {', '.join(DATASETS)})")
    return Tree(results, [load_dataset(results, ds, tuple(variants), missing) for ds in datasets], missing)


def best_epoch(run: Run) -> tuple[int, float] | None:
    """(epoch, validation t2m R@1) of the best validation epoch.

    Best by ``val_score`` (the trainer's model-selection score, the epoch of ``best.pt``) where the history
    records it, else by validation t2m R@1.
    """
    best: tuple[float, int, float] | None = None
    for row in run.history:
        val = row.get("val")
        epoch = number(row.get("epoch"))
        if not isinstance(val, dict) or epoch is None:
            continue
        r1 = number((val.get("t2m") or {}).get("R@1")) if isinstance(val.get("t2m"), dict) else None
        if r1 is None:
            continue
        score = number(row.get("val_score"))
        key = score if score is not None else r1
        if best is None or key > best[0]:
            best = (key, int(epoch), r1)
    return None if best is None else (best[1], best[2])


def feature_cache_encoder(ds_path: Path) -> dict[str, Any] | None:
    """The ``encoder`` block of the dataset's current feature cache (``features/{current}/meta.json``)."""
    try:
        folder = features_dir(ds_path)
        meta = json.loads((folder / read_pointer(folder, FEATURES_POINTER_KEY) / "meta.json").read_text())
    except (OSError, ValueError, LavimoInputError):
        return None
    encoder = meta.get("encoder") if isinstance(meta, dict) else None
    return encoder if isinstance(encoder, dict) else None


# ---- ablations: results/{ds}/ablation.json (the default study) and results/{ds}/ablation/*/ablation.json ----
@dataclass
class Ablation:
    """One study's ablation.json: 3-modal vs 2-modal over seeds, per protocol, direction and metric."""

    dataset: str
    study: str
    path: Path
    data: dict[str, Any]

    @property
    def results(self) -> dict[str, Any]:
        results = self.data.get("results")
        return results if isinstance(results, dict) else {}

    def cell(self, protocol: str, direction: str, metric: str) -> dict[str, Any]:
        """{"3modal": {...}, "2modal": {...}, "diff": {...}, "verdict": ...} of one metric ({} when absent)."""
        try:
            cell = self.results[protocol][direction][metric]
        except (KeyError, TypeError):
            return {}
        return cell if isinstance(cell, dict) else {}

    @property
    def seeds(self) -> list[Any]:
        seeds = self.data.get("seeds")
        return seeds if isinstance(seeds, list) else []


def load_ablations(results: Path, ds: str, missing: Missing) -> list[Ablation]:
    """The dataset's ablation studies: ``ablation.json`` first (the default study), then ``ablation/*/``."""
    paths = [results / ds / "ablation.json", *sorted((results / ds / "ablation").glob("*/ablation.json"))]
    studies: list[Ablation] = []
    for path in paths:
        data = read_json(path, missing, None)
        if data is None:
            continue
        if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
            missing.add(f"{path}: not an ablation summary (no 'results')")
            continue
        study = str(data.get("study") or (path.parent.name if path.parent.name != ds else "default"))
        if any(s.study == study for s in studies):
            continue  # the same study found twice (e.g. also copied to ablation/default/)
        studies.append(Ablation(ds, study, path, data))
    return studies
