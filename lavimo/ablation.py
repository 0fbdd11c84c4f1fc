"""The 3-modal vs 2-modal ablation over seeds: mean ± std per variant, the paired difference, a verdict.

A study trains both variants once per seed (the same seeds, so runs pair up) and evaluates each; this
module reads their metrics.json files and summarises every protocol x direction x metric:

- per variant: mean, sample std (ddof=1) and the per-seed values;
- the paired difference 3-modal − 2-modal per seed: mean, std and a two-sided Student-t confidence interval;
- a verdict: "better" / "worse" when the interval excludes 0 (for MedR lower is better), else "within noise".

Video directions (v2m, m2v) exist for the 3-modal variant only; they get no difference or verdict.
Each run's metrics.json must be what its label says: its ``variant`` the run's and its ``dataset`` the study's;
a mismatch (a 3-modal run passed as the 2-modal one, another dataset's runs) is an input error naming the file.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lavimo.io import LavimoInputError, save_json

VARIANTS = ("3modal", "2modal")
METRICS = ("R@1", "R@2", "R@3", "R@5", "R@10", "MedR")
CONFIDENCE = 0.95
# two-sided 95% Student-t quantiles by degrees of freedom (1..10); larger samples use the normal 1.96
T_95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def t_quantile(dof: int) -> float:
    """The two-sided 95% Student-t quantile for ``dof`` degrees of freedom."""
    return T_95.get(dof, 1.96)


def describe(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample std (0 for one value) and the values themselves, rounded to 2 decimals."""
    arr = np.asarray(values, dtype=np.float64)
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return {"mean": round(float(arr.mean()), 2), "std": round(std, 2), "values": [round(float(v), 2) for v in arr]}


def paired_difference(three: Sequence[float], two: Sequence[float], lower_is_better: bool) -> dict[str, Any]:
    """3-modal − 2-modal per seed, its mean/std/confidence interval, and the verdict."""
    diff = np.asarray(three, dtype=np.float64) - np.asarray(two, dtype=np.float64)
    out = describe(diff)
    half = t_quantile(diff.size - 1) * float(diff.std(ddof=1)) / math.sqrt(diff.size) if diff.size > 1 else math.inf
    low, high = float(diff.mean()) - half, float(diff.mean()) + half
    out["ci"] = [round(low, 2), round(high, 2)] if math.isfinite(half) else [None, None]
    if low > 0:
        verdict = "worse" if lower_is_better else "better"
    elif high < 0:
        verdict = "better" if lower_is_better else "worse"
    else:
        verdict = "within noise"
    return {"diff": out, "verdict": verdict}


def load_run_metrics(
    run_dir: str | os.PathLike[str], variant: str | None = None, dataset: str | None = None
) -> dict[str, Any]:
    """A run's metrics.json, or an input error naming it; with ``variant`` / ``dataset``, one whose recorded
    variant or dataset differs is refused too."""
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        raise LavimoInputError(path, "missing: train and evaluate this run first")
    try:
        metrics = json.loads(path.read_text())
    except ValueError as error:
        raise LavimoInputError(path, f"unreadable metrics ({error})") from error
    if not isinstance(metrics, dict) or not isinstance(metrics.get("protocols"), dict):
        raise LavimoInputError(path, "not a run's metrics (no 'protocols'): made by `lavimo evaluate`?")
    for key, expected, same in (("variant", variant, str.__eq__), ("dataset", dataset, same_dataset)):
        if expected is None:
            continue
        found = metrics.get(key)
        if not isinstance(found, str):
            raise LavimoInputError(path, f"records no {key} (not written by `lavimo evaluate`?): cannot check it")
        if not same(found, expected):
            raise LavimoInputError(
                path, f"metrics of a {found} run, but it is given as {key} {expected}: check the --run / --dataset"
            )
    return metrics


def same_dataset(a: str, b: str) -> bool:
    """Whether two dataset names are the same one, up to case and punctuation (``KIT-ML`` = ``kitml``)."""
    return re.sub(r"[^0-9a-z]", "", a.lower()) == re.sub(r"[^0-9a-z]", "", b.lower())


def summarise(metrics: Mapping[str, Mapping[int, Mapping[str, Any]]]) -> dict[str, Any]:
    """{variant: {seed: metrics.json}} -> {protocol: {direction: {metric: {3modal, 2modal, diff, verdict}}}}."""
    seeds = sorted(set.intersection(*(set(by_seed) for by_seed in metrics.values())))
    if not seeds:
        raise ValueError("the variants share no seed: nothing to pair")
    first = metrics[VARIANTS[0]][seeds[0]]["protocols"]
    results: dict[str, Any] = {}
    for protocol, by_direction in first.items():
        for direction in by_direction:
            cell: dict[str, Any] = {}
            for metric in METRICS:
                per_variant = {
                    variant: [by_seed[s]["protocols"][protocol][direction][metric] for s in seeds]
                    for variant, by_seed in metrics.items()
                    if direction in by_seed[seeds[0]]["protocols"].get(protocol, {})
                }
                entry: dict[str, Any] = {variant: describe(values) for variant, values in per_variant.items()}
                if all(v in per_variant for v in VARIANTS):
                    entry.update(paired_difference(per_variant["3modal"], per_variant["2modal"], metric == "MedR"))
                cell[metric] = entry
            results.setdefault(protocol, {})[direction] = cell
    return results


def study_summary(
    runs: Mapping[str, Mapping[int, str | os.PathLike[str]]],
    dataset: str,
    study: str = "default",
    description: str = "",
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    """The ablation.json of one study from its run folders ({variant: {seed: run_dir}}); each run's metrics.json
    must record its variant and ``dataset``."""
    unknown = [v for v in runs if v not in VARIANTS]
    if unknown:
        raise LavimoInputError("--run", f"unknown variant {unknown[0]!r}: one of {', '.join(VARIANTS)}")
    missing = [v for v in VARIANTS if v not in runs]
    if missing:
        raise LavimoInputError("--run", f"an ablation needs both variants; no run of {', '.join(missing)}")
    metrics = {
        variant: {seed: load_run_metrics(d, variant, dataset) for seed, d in by_seed.items()}
        for variant, by_seed in runs.items()
    }
    seeds = sorted(set.intersection(*(set(by_seed) for by_seed in metrics.values())))
    if not seeds:
        raise LavimoInputError("--run", "the variants share no seed: nothing to pair")
    any_run = metrics["3modal"][seeds[0]]
    return {
        "dataset": dataset,
        "study": study,
        "description": description,
        "overrides": list(overrides),
        "seeds": seeds,
        "variants": list(VARIANTS),
        "runs": {v: {str(s): str(runs[v][s]) for s in seeds} for v in VARIANTS},
        "encoders": run_encoders(runs["3modal"][seeds[0]]),
        "caption_similarity": any_run.get("caption_similarity", {"protocol_b": None, "training_targets": None}),
        "confidence": CONFIDENCE,
        "results": summarise(metrics),
    }


def run_encoders(run_dir: str | os.PathLike[str]) -> dict[str, str]:
    """Which text backbone and frame features a run used (from its config.json)."""
    config_path = Path(run_dir) / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    features = config.get("data", {}).get("features") or {}
    return {
        "text": str(config.get("model", {}).get("text_encoder_source", "unknown")),
        "frames": str(features.get("encoder_id", "none (2-modal)")),
        "frame_weights": str((features.get("weights") or {}).get("source", "unknown")),
    }


def load_summary(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A study's ablation.json, or an input error naming it."""
    try:
        summary = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise LavimoInputError(path, f"not a readable ablation summary ({error})") from error
    if not isinstance(summary, dict) or "results" not in summary:
        raise LavimoInputError(path, "not an ablation summary (no 'results'): made by `lavimo ablation`?")
    return summary


def write_study(path: str | os.PathLike[str], summary: Mapping[str, Any]) -> None:
    """Write a study's ablation.json atomically."""
    save_json(path, dict(summary))


def _cell(entry: Mapping[str, Any] | None) -> str:
    return f"{entry['mean']:.2f} ± {entry['std']:.2f}" if entry else "–"


def markdown_table(
    summaries: Sequence[Mapping[str, Any]], cells: Sequence[tuple[str, str, str]] = (("normal", "t2m", "R@1"),)
) -> str:
    """One markdown row per study and (protocol, direction, metric): both variants (mean ± std over seeds), the
    paired 3-modal − 2-modal difference with its confidence interval, and the verdict."""
    lines = [
        "| study | protocol | direction | metric | seeds | 3-modal | 2-modal | 3-modal − 2-modal (95% CI) | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for summary in summaries:
        for protocol, direction, metric in cells:
            entry = summary["results"].get(protocol, {}).get(direction, {}).get(metric)
            if not entry:
                continue
            diff = entry.get("diff")
            shown = f"{diff['mean']:+.2f} ± {diff['std']:.2f} [{diff['ci'][0]}, {diff['ci'][1]}]" if diff else "–"
            lines.append(
                f"| {summary['study']} | {protocol} | {direction} | {metric} | {len(summary['seeds'])} | "
                f"{_cell(entry.get('3modal'))} | {_cell(entry.get('2modal'))} | {shown} | {entry.get('verdict', '–')} |"
            )
    return "\n".join(lines)


COMPARED_DIRECTIONS = ("t2m", "m2t", "v2m", "m2v")
COMPARED_METRICS = ("R@1", "R@5")


def comparison_rows(
    summaries: Sequence[Mapping[str, Any]],
    protocol: str,
    directions: Sequence[str] = COMPARED_DIRECTIONS,
    metrics: Sequence[str] = COMPARED_METRICS,
) -> list[dict[str, Any]]:
    """Studies side by side under one protocol: a row per (study, variant) with {direction metric: mean/std entry or
    None} for every direction x metric (None where the variant has no such direction, e.g. 2-modal video)."""
    rows = []
    for summary in summaries:
        by_direction = summary["results"].get(protocol, {})
        for variant in VARIANTS:
            cells = {
                f"{direction} {metric}": by_direction.get(direction, {}).get(metric, {}).get(variant)
                for direction in directions
                for metric in metrics
            }
            if any(cells.values()):
                rows.append({"study": summary["study"], "variant": variant, "seeds": len(summary["seeds"]), **cells})
    return rows


def markdown_comparison(
    summaries: Sequence[Mapping[str, Any]],
    protocol: str,
    directions: Sequence[str] = COMPARED_DIRECTIONS,
    metrics: Sequence[str] = COMPARED_METRICS,
) -> str:
    """:func:`comparison_rows` as a markdown table (mean ± std over seeds)."""
    keys = [f"{direction} {metric}" for direction in directions for metric in metrics]
    lines = [
        "| study | variant | seeds | " + " | ".join(keys) + " |",
        "|---|---|---|" + "---|" * len(keys),
    ]
    for row in comparison_rows(summaries, protocol, directions, metrics):
        cells = " | ".join(_cell(row[key]) for key in keys)
        lines.append(f"| {row['study']} | {row['variant']} | {row['seeds']} | {cells} |")
    return "\n".join(lines)
