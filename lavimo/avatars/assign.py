"""Deterministic avatar choice per clip."""

from __future__ import annotations

import hashlib

from lavimo.layout import NUM_AVATARS, unmirrored_id


def avatar_for_clip(clip_id: str, seed: int = 0, num_avatars: int = NUM_AVATARS) -> int:
    """Avatar index for a clip, stable across runs and machines; a mirror (`M` prefix) uses its source's avatar."""
    digest = hashlib.sha256(f"{seed}:{unmirrored_id(clip_id)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % num_avatars
