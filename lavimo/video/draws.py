"""The seeded draws of one training view, torch-free: its augmentation seed and whether it is flipped left-right.

Both are pure functions of (cache seed, clip id, view), so a cache rebuild reproduces its views whatever the worker
scheduling, and training can tell which cached views show the mirrored motion without opening a frame.
"""

from __future__ import annotations

import hashlib

HFLIP_DRAW = "sha256(seed:clip:view:hflip)"  # view_flipped's draw, recorded in the cache meta


def view_seed(seed: int, clip_id: str, view: int) -> int:
    """A 63-bit seed for one view of one clip, stable across processes and runs."""
    digest = hashlib.sha256(f"{seed}:{clip_id}:{view}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def view_flipped(seed: int, clip_id: str, view: int, hflip_p: float) -> bool:
    """Whether training view ``view`` of a clip is flipped left-right: a uniform draw from its own hash < hflip_p."""
    digest = hashlib.sha256(f"{seed}:{clip_id}:{view}:hflip".encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2**64 < hflip_p
