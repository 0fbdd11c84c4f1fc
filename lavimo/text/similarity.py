"""Caption similarity: the two thresholds on it, each with its own scale, and the records that name them.

Two places of the paper compare captions through their sentence embeddings, and they read the threshold on
different scales:

- the training soft targets (section 3.1): S_target(i, j) = cos(ê_i, ê_j) where cos >= ε, else 0, with
  "ϵ to 0.8" (section 4). Read literally: the raw cosine, kept as the target's weight (:data:`RAW_COS`).
- protocol (b) (section 4.2): "we set the threshold to 0.8, same to the negative filtering threshold", the
  negative filtering of TMR, whose code reads it on s = (1 + cos) / 2 (:data:`RESCALED_COS`): j counts as
  correct for i where s > 0.8.

0.8 on (1 + cos) / 2 is raw cos 0.6. Measured on the demo, the targets on that scale pull most template captions
together and more than halve R@1 (README, "Soft targets"), so each threshold is a named setting with its scale:
``train_targets`` (rule, threshold, scale) and ``protocol_b`` (threshold, scale) in config.yaml.
Works on numpy arrays and torch tensors alike (plain arithmetic only).
"""

from __future__ import annotations

from typing import Any, TypeVar

RAW_COS = "cos"
RESCALED_COS = "(1+cos)/2"
SCALES = (RAW_COS, RESCALED_COS)
SCALE_RANGES = {RAW_COS: (-1.0, 1.0), RESCALED_COS: (0.0, 1.0)}

# How caption similarity shapes the training targets of the alignment loss (lavimo.model.losses):
# keep (the paper, section 3.1): pairs at or above the threshold are soft positives, weighted by their similarity;
# filter (TMR's negative filtering): identity targets, and pairs at or above the threshold are left out of the
#   negatives rather than pulled together;
# none: identity targets (plain symmetric InfoNCE); sentence embeddings are not used.
TARGET_RULES = ("keep", "filter", "none")

DEFAULT_TARGET_RULE = "keep"
DEFAULT_TARGET_THRESHOLD = 0.8  # paper, section 4: "set ϵ to 0.8"
DEFAULT_TARGET_SCALE = RAW_COS  # the formula of section 3.1
DEFAULT_PROTOCOL_B_THRESHOLD = 0.8  # paper, section 4.2
DEFAULT_PROTOCOL_B_SCALE = RESCALED_COS  # TMR's, whose negative filtering protocol (b) names

ArrayT = TypeVar("ArrayT")


def on_scale(cos: ArrayT, scale: str) -> ArrayT:
    """Cosine similarities of caption embeddings on ``scale``: the cosine itself, or (1 + cos) / 2 in [0, 1]."""
    if scale == RAW_COS:
        return cos
    if scale == RESCALED_COS:
        return (1 + cos) / 2  # type: ignore[operator, return-value]
    raise ValueError(f"unknown caption-similarity scale {scale!r}; expected one of {list(SCALES)}")


def check_scale(scale: str, name: str = "--threshold-scale") -> str:
    """``scale`` when it is one of :data:`SCALES`; else :class:`LavimoInputError` naming ``name``."""
    from lavimo.io import LavimoInputError

    if scale not in SCALES:
        raise LavimoInputError(name, f"{scale!r} is not a caption-similarity scale; choose one of {list(SCALES)}")
    return scale


def check_threshold(threshold: float, scale: str, name: str = "--threshold") -> float:
    """``threshold`` when it lies within ``scale``'s range; else :class:`LavimoInputError` naming ``name``."""
    from lavimo.io import LavimoInputError

    low, high = SCALE_RANGES[check_scale(scale)]
    if not low <= threshold <= high:  # also refuses NaN
        raise LavimoInputError(name, f"{threshold!r} is outside [{low:g}, {high:g}], the range of s = {scale}")
    return float(threshold)


def check_target_rule(rule: str, name: str = "model.soft_targets") -> str:
    """``rule`` when it is one of :data:`TARGET_RULES`; else :class:`LavimoInputError` naming ``name``."""
    from lavimo.io import LavimoInputError

    if rule not in TARGET_RULES:
        raise LavimoInputError(name, f"{rule!r} is not a training-target rule; choose one of {list(TARGET_RULES)}")
    return rule


def protocol_b_record(threshold: float, scale: str) -> dict[str, Any]:
    """What a result file records about protocol (b): j is correct for i where s(i, j) > threshold."""
    return {"threshold": float(threshold), "scale": scale, "rule": "correct where s > threshold"}


def target_record(rule: str, threshold: float, scale: str) -> dict[str, Any]:
    """What a result file records about the training targets of the run that made it."""
    return {"rule": rule, "threshold": float(threshold), "scale": scale}


def similarity_record(protocol_b: tuple[float, str], train_targets: tuple[str, float, str] | None) -> dict[str, Any]:
    """metrics.json's ``caption_similarity``: protocol (b)'s (threshold, scale) and the run's (rule, threshold,
    scale) of its training targets (None for a run that does not record them)."""
    return {
        "protocol_b": protocol_b_record(*protocol_b),
        "training_targets": target_record(*train_targets) if train_targets else None,
    }
