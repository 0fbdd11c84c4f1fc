"""What every part of the report shares: datasets, variants, protocols, metrics, and small formatting helpers."""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np

DATASET_LABELS = {"demo": "Demo (Bandai-Namco)", "humanml3d": "HumanML3D", "kitml": "KIT-ML"}
VARIANTS: tuple[str, ...] = ("2modal", "3modal")  # table row order, as in the paper
VARIANT_LABELS = {"2modal": "ours 2-modal", "3modal": "ours 3-modal"}
ABLATION_ARMS = ("3modal", "2modal")  # an ablation's difference is 3modal - 2modal, paired by seed
PROTOCOLS: tuple[tuple[str, str], ...] = (
    ("normal", "(a) All"),
    ("threshold", "(b) All with threshold"),
    ("dissimilar", "(c) Dissimilar subset"),
    ("guo", "(d) Small batches of 32"),
)
METRICS: tuple[str, ...] = ("R@1", "R@2", "R@3", "R@5", "R@10", "MedR")
LOWER_IS_BETTER = frozenset({"MedR"})
DIRECTION_LABELS = {
    "t2m": "Text-to-motion",
    "m2t": "Motion-to-text",
    "v2m": "Video-to-motion",
    "m2v": "Motion-to-video",
}
TEXT_DIRECTIONS = ("t2m", "m2t")
VIDEO_DIRECTIONS = ("v2m", "m2v")
NOT_EVALUATED = "not evaluated"


def number(value: Any) -> float | None:
    """``value`` as a finite float; None for anything else (bools, strings, NaN, ...)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def esc(value: Any) -> str:
    """``value`` as escaped HTML text (quotes included, for attributes)."""
    return html.escape(str(value), quote=True)


def fmt(value: float | None) -> str:
    """A metric with two decimals; "—" when absent."""
    return "—" if value is None else f"{value:.2f}"


def arrow(metric: str) -> str:
    """The HTML arrow beside a metric's name: down where lower is better, else up."""
    return "&#8595;" if metric in LOWER_IS_BETTER else "&#8593;"


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def dataset_label(name: str) -> str:
    """A dataset's display name ("kitml" -> "KIT-ML"); unknown names as they are."""
    return DATASET_LABELS.get(name, name)
