"""argparse ``type`` functions for bounded numbers: a bad value is refused while the command line is parsed, before
anything is loaded or created (``--views 0`` would otherwise load an encoder and leave an empty cache folder)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _number(text: str, kind: Callable[[str], float]) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if kind is int else ''}number") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_int(text: str) -> int:
    """A whole number of at least 1 (``--limit -5`` would slice off the last five sources)."""
    value = int(_number(text, int))
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def nonnegative_int(text: str) -> int:
    """A whole number of at least 0 (a count where 0 means none, or "all cores")."""
    value = int(_number(text, int))
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def nonnegative_float(text: str) -> float:
    """A finite number of at least 0 (a duration in seconds)."""
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value:g} is negative")
    return value


def positive_float(text: str) -> float:
    """A finite number above 0 (a frame rate)."""
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value:g} is not above 0")
    return value


def probability(text: str) -> float:
    """A number in [0, 1]."""
    value = _number(text, float)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value:g} is not a probability in [0, 1]")
    return value


def fraction(text: str) -> float:
    """A number in (0, 1] (a share of something that cannot be none)."""
    value = _number(text, float)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value:g} is not in (0, 1]")
    return value


def int_range(low: int, high: int) -> Callable[[str], int]:
    """A ``type`` for a whole number in [low, high] (an avatar index)."""

    def parse(text: str) -> int:
        value = int(_number(text, int))
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not in {low}..{high}")
        return value

    parse.__name__ = f"int in {low}..{high}"
    return parse
