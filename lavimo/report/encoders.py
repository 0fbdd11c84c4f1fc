"""What our runs used, in words: frame encoder, text backbone, caption similarity (so no one compares unlike things)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lavimo.report.common import esc, number
from lavimo.report.load import DatasetResults, Run, feature_cache_encoder
from lavimo.report.tables import PAPER_DATASETS
from lavimo.text.similarity import DEFAULT_EPSILON, SCALE

PAPER_FRAMES = "CLIP ViT-B/32"
PAPER_TEXT = "DistilBERT"


@dataclass(frozen=True)
class Encoder:
    """One encoder of a run, in words, and whether it is the one the paper used (None: unknown)."""

    text: str
    as_paper: bool | None


def describe_frame_encoder(encoder: Mapping[str, Any]) -> Encoder:
    """A frame encoder description (the feature cache's ``encoder``) in words."""
    name = str(encoder.get("name", "unknown"))
    weights = encoder.get("weights") if isinstance(encoder.get("weights"), dict) else {}
    source = str(weights.get("source", "unknown weights"))
    if name.startswith("clip-vit-b32"):
        real = source not in ("random-init",) and not weights.get("fallback")
        return Encoder(f"{PAPER_FRAMES} (weights: {source})", real)
    if name.startswith("efficientnet-lite0"):
        why = "the offline fallback" if weights.get("fallback") else "chosen"
        return Encoder(f"EfficientNet-Lite0, ImageNet weights ({why} instead of the paper's {PAPER_FRAMES})", False)
    return Encoder(f"{name} (weights: {source})", False)


def describe_text_encoder(model: Mapping[str, Any]) -> Encoder:
    """The text backbone of a run (config.json ``model``: ``text_encoder_source``, ``model_config``) in words."""
    source = str(model.get("text_encoder_source") or "")
    config = model.get("model_config") if isinstance(model.get("model_config"), dict) else {}
    backbone = str(config.get("text_backbone") or "")
    if source.startswith("fallback:"):
        package = source[len("fallback:") :].split(" (")[0]  # the full reason is in the run's config.json
        return Encoder(f"MiniLM (the offline fallback: {PAPER_TEXT} was unavailable; {package})", False)
    if backbone == "distilbert" or "distilbert" in source.lower():
        return Encoder(f"{PAPER_TEXT} ({source or 'source not recorded'})", True)
    if backbone == "minilm" or "minilm" in source.lower():
        return Encoder(f"MiniLM ({source or 'source not recorded'}; the paper uses {PAPER_TEXT})", False)
    if backbone == "tiny" or source.startswith("tiny"):
        return Encoder(f"a tiny random BERT (tests only; the paper uses {PAPER_TEXT})", False)
    if not source and not backbone:
        return Encoder("not recorded", None)
    return Encoder(f"{backbone or source} ({source}; the paper uses {PAPER_TEXT})", False)


def run_encoders(run: Run, ds_path: Path) -> tuple[Encoder | None, Encoder]:
    """(frame encoder, text backbone) of a run; no frame encoder for a 2-modal run.

    The frame encoder comes from the run's config.json (``data.features``), else from the dataset's current
    feature cache; the text backbone from config.json ``model``.
    """
    config = run.config or {}
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    model = config.get("model") if isinstance(config.get("model"), dict) else {}
    text = describe_text_encoder(model) if config else Encoder("unknown (no config.json)", None)
    if run.variant != "3modal":
        return None, text
    features = data.get("features") if isinstance(data.get("features"), dict) else None
    if features is not None:
        return describe_frame_encoder(features), text
    cached = feature_cache_encoder(ds_path)
    if cached is not None:
        frames = describe_frame_encoder(cached)
        return Encoder(f"{frames.text}, read from the current feature cache", frames.as_paper), text
    return Encoder("unknown (not in config.json, no feature cache)", None), text


def encoders_note(ds: DatasetResults, runs: Sequence[Run]) -> str:
    """The sentence that says which dataset and encoders our rows used, and whether the paper's rows compare."""
    if not runs:
        return ""
    parts: list[str] = []
    unlike: set[str] = set()  # what differs from the paper
    for run in runs:
        frames, text = run_encoders(run, ds.path)
        said = f"frame encoder <b>{esc(frames.text)}</b>; " if frames is not None else "no frames; "
        parts.append(f"{esc(run.label)}: {said}text backbone <b>{esc(text.text)}</b>")
        if ds.name not in PAPER_DATASETS:
            unlike.add("dataset")
        if frames is not None and frames.as_paper is not True:
            unlike.add("frame encoder")
        if text.as_paper is not True:
            unlike.add("text backbone")
    if ds.name in PAPER_DATASETS:
        dataset = f"dataset <b>{esc(ds.label)}</b>, as in the paper"
    else:
        dataset = f"dataset <b>{esc(ds.label)}</b>, not the paper's HumanML3D or KIT-ML"
    differs = [kind for kind in ("dataset", "frame encoder", "text backbone") if kind in unlike]
    verdict = (
        f'<span class="unlike">Unlike the paper in: {", ".join(differs)}. The published rows are context, not a '
        "like-for-like comparison.</span>"
        if differs
        else '<span class="like">Same dataset and encoders as the paper.</span>'
    )
    return f'<p class="encoders">Our runs: {dataset}. {"; ".join(parts)}. {verdict}</p>'


def recorded_similarity(metrics: Mapping[str, Any] | None) -> tuple[str, float | None, list[str]]:
    """(scale, threshold ε, used for) of protocol (b) as metrics.json records it.

    Older metrics.json have only ``threshold``: then the scale is the one evaluation has always used.
    """
    metrics = metrics or {}
    record = metrics.get("caption_similarity")
    if isinstance(record, dict):
        threshold = number(record.get("threshold"))
        used = record.get("used_for")
        used_for = [str(u) for u in used] if isinstance(used, list) else []
        return str(record.get("scale") or SCALE), threshold, used_for
    return SCALE, number(metrics.get("threshold")), []


def epsilon_note(runs: Sequence[Run]) -> str | None:
    """HTML for protocol (b): the caption similarity scale and threshold our evaluated runs used."""
    seen: dict[tuple[str, float | None], list[str]] = {}
    for run in runs:
        if run.metrics is not None:
            scale, threshold, used_for = recorded_similarity(run.metrics)
            seen.setdefault((scale, threshold), used_for)
    if not seen:
        return None
    notes = []
    for (scale, threshold), used_for in seen.items():
        value = "?" if threshold is None else f"{threshold:g}"
        used = f" (also used for: {esc(', '.join(used_for))})" if used_for else ""
        notes.append(f"ours: s = {esc(scale)} &gt; &epsilon; = {value}{used}")
    return "; ".join(notes) + f"; paper: {DEFAULT_EPSILON:g}"
