"""What our runs used, in words: frame encoder, text backbone, caption similarity (so no one compares unlike things)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lavimo.report.common import esc, number
from lavimo.report.load import DatasetResults, Run, feature_cache_encoder
from lavimo.report.tables import PAPER_DATASETS
from lavimo.text.similarity import DEFAULT_PROTOCOL_B_SCALE, DEFAULT_PROTOCOL_B_THRESHOLD, DEFAULT_TARGET_THRESHOLD

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


@dataclass(frozen=True)
class RecordedSimilarity:
    """What a metrics.json or ablation.json records about caption similarity: protocol (b)'s scale and threshold,
    and the training targets of the run(s) (rule, threshold, scale; None when not recorded)."""

    scale: str
    threshold: float | None
    targets: tuple[str, float | None, str] | None

    def targets_text(self) -> str | None:
        """The training targets in words (HTML-escaped), e.g. "keep s = cos &ge; 0.8"."""
        if self.targets is None:
            return None
        rule, threshold, scale = self.targets
        value = "?" if threshold is None else f"{threshold:g}"
        return "none (identity)" if rule == "none" else f"{esc(rule)} s = {esc(scale)} &ge; {value}"


def recorded_similarity(metrics: Mapping[str, Any] | None) -> RecordedSimilarity:
    """The caption-similarity settings a result file records.

    Older files: ``caption_similarity`` = {scale, threshold, used_for} (one ε on (1+cos)/2 for the targets and
    protocol (b)), or only ``threshold`` (protocol (b) on the scale evaluation has always used).
    """
    metrics = metrics or {}
    record = metrics.get("caption_similarity")
    if isinstance(record, dict) and isinstance(record.get("protocol_b"), dict):
        protocol_b = record["protocol_b"]
        targets = record.get("training_targets")
        recorded_targets = None
        if isinstance(targets, dict):
            recorded_targets = (
                str(targets.get("rule", "?")),
                number(targets.get("threshold")),
                str(targets.get("scale", "?")),
            )
        scale = str(protocol_b.get("scale") or DEFAULT_PROTOCOL_B_SCALE)
        return RecordedSimilarity(scale, number(protocol_b.get("threshold")), recorded_targets)
    if isinstance(record, dict):
        threshold = number(record.get("threshold"))
        scale = str(record.get("scale") or DEFAULT_PROTOCOL_B_SCALE)
        used = record.get("used_for") if isinstance(record.get("used_for"), list) else []
        return RecordedSimilarity(scale, threshold, ("keep", threshold, scale) if "training targets" in used else None)
    return RecordedSimilarity(DEFAULT_PROTOCOL_B_SCALE, number(metrics.get("threshold")), None)


def epsilon_note(runs: Sequence[Run]) -> str | None:
    """HTML for protocol (b): the caption similarity scale and threshold our evaluated runs used, and the training
    targets beside it (a separate setting: lavimo.text.similarity)."""
    seen: dict[tuple[str, float | None], set[str]] = {}
    for run in runs:
        if run.metrics is not None:
            similarity = recorded_similarity(run.metrics)
            targets = seen.setdefault((similarity.scale, similarity.threshold), set())
            if (text := similarity.targets_text()) is not None:
                targets.add(text)
    if not seen:
        return None
    notes = []
    for (scale, threshold), targets in seen.items():
        value = "?" if threshold is None else f"{threshold:g}"
        trained = f" (training targets: {'; '.join(sorted(targets))})" if targets else ""
        notes.append(f"ours: s = {esc(scale)} &gt; &epsilon; = {value}{trained}")
    return (
        "; ".join(notes)
        + f"; paper: {DEFAULT_PROTOCOL_B_THRESHOLD:g} (and &epsilon; = {DEFAULT_TARGET_THRESHOLD:g} for its targets)"
    )
