"""Caption similarity: the one scale and threshold ε shared by the training targets and protocol (b).

The paper sets ε = 0.8 for its soft targets (section 4) and evaluates protocol (b) "with threshold ... 0.8,
same to the negative filtering threshold" (section 4.2), the negative filtering it adopts from TMR. TMR reads
that threshold on s = (1 + cos) / 2 of the captions' sentence embeddings, so both places here use s:
a training target keeps s(i, j) where s >= ε, and protocol (b) counts j as correct for i where s > ε.
Works on numpy arrays and torch tensors alike (plain arithmetic only).
"""

from __future__ import annotations

from typing import TypeVar

SCALE = "(1+cos)/2"  # the name recorded in metrics.json, ablation.json and the report
DEFAULT_EPSILON = 0.8  # paper, section 4: "set ϵ to 0.8"

ArrayT = TypeVar("ArrayT")


def caption_similarity(cos: ArrayT) -> ArrayT:
    """Cosine similarity of caption embeddings -> s = (1 + cos) / 2 in [0, 1], the scale ε is read on."""
    return (1 + cos) / 2  # type: ignore[operator, return-value]


def check_epsilon(epsilon: float, name: str = "--threshold") -> float:
    """``epsilon`` when it lies on the scale of s, [0, 1]; else :class:`LavimoInputError` naming ``name``."""
    from lavimo.io import LavimoInputError

    if not 0.0 <= epsilon <= 1.0:  # also refuses NaN
        raise LavimoInputError(name, f"{epsilon!r} is outside [0, 1], the scale of s = {SCALE} it is read on")
    return float(epsilon)


def similarity_record(epsilon: float) -> dict[str, object]:
    """What a result file records about ε: its scale, its value and where it is used."""
    return {"scale": SCALE, "threshold": float(epsilon), "used_for": ["training targets", "protocol (b)"]}
