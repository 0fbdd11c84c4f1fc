"""Left/right mirroring of motions and captions, as HumanML3D builds its ``M``-prefixed clips.

The ids of mirrored clips are :func:`lavimo.layout.mirror_clip_id`.
"""

from __future__ import annotations

import re

import numpy as np

from lavimo.io import LavimoInputError
from lavimo.motion.skeleton import NUM_JOINTS, mirror_permutation

# "left"/"right" at the start of a word, alone or as leftward(s)/rightmost/left-hand...; not "bright", "upright"
_SIDE_WORD = re.compile(r"\b(left|right)(?=(?:wards?|most)?\b)", re.IGNORECASE)
_SWAP = {"left": "right", "right": "left"}


def mirror_joints(joints: np.ndarray, source: str = "<array>") -> np.ndarray:
    """Mirror t2m joints (..., 22, 3) in the YZ plane: swap left/right joints and negate x."""
    joints = np.asarray(joints)
    if joints.ndim < 2 or joints.shape[-2:] != (NUM_JOINTS, 3):
        raise LavimoInputError(source, f"expected joints of shape (..., {NUM_JOINTS}, 3), got {joints.shape}")
    mirrored = joints[..., mirror_permutation(), :].copy()
    mirrored[..., 0] *= -1
    return mirrored


def _swap_case_preserving(match: re.Match[str]) -> str:
    word = match.group(1)
    swapped = _SWAP[word.lower()]
    if word.isupper():
        return swapped.upper()
    if word[0].isupper():
        return swapped.capitalize()
    return swapped


def mirror_text(text: str) -> str:
    """Swap the words left and right in a caption, keeping their case ("Left" -> "Right", "LEFT" -> "RIGHT").

    Only left/right are swapped, as in HumanML3D; (counter)clockwise is left alone.
    """
    return _SIDE_WORD.sub(_swap_case_preserving, text)
