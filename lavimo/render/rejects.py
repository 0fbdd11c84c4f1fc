"""Merge the render shards' rejections into one list per dataset (no bpy).

Render shards run in parallel and each writes its own ``{frames_dir}/{shard}.rejected.csv`` (stage
``render``). Once every shard is done, :func:`merge_render_rejections` (``lavimo render merge-rejects``,
rule ``render_rejects``) writes

- ``{frames_dir}/rejected.csv``: every render rejection of the dataset (the rule's output), and
- the dataset's rejection log ``{dataset_dir}/rejected.csv``: its ``render`` rows are replaced by these,
  while the rows of other stages (prepare, features) stay as they are.

Both writes are atomic and a rerun gives the same files (idempotent).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from lavimo import layout
from lavimo.io import LavimoInputError, Rejection, read_rejections, write_rejections

STAGE = "render"  # as lavimo.render.shard.STAGE (that module imports bpy)
MERGED = "rejected.csv"


def shard_rejections_path(frames_dir: str | os.PathLike[str], shard: str) -> Path:
    """Where a render shard lists what it rejected."""
    return Path(frames_dir) / f"{shard}.rejected.csv"


def merge_render_rejections(
    dataset_dir: str | os.PathLike[str],
    frames_dir: str | os.PathLike[str] | None = None,
    shards: Sequence[str] | None = None,
    out: str | os.PathLike[str] | None = None,
) -> list[Rejection]:
    """Merge the render rejections of ``shards`` (default: every shard of the manifest); returns them.

    Writes ``out`` (default ``{frames_dir}/rejected.csv``) and the render rows of ``{dataset_dir}/rejected.csv``.
    A shard without its rejection list (not rendered yet) is an error.
    """
    dataset_dir = Path(dataset_dir)
    frames_dir = Path(frames_dir) if frames_dir is not None else layout.frames_dir(dataset_dir)
    if shards is None:
        from lavimo.datasets.manifest import shards as manifest_shards

        shards = manifest_shards(dataset_dir)
    rows: dict[tuple[str, str], Rejection] = {}
    for shard in shards:
        path = shard_rejections_path(frames_dir, shard)
        if not path.exists():
            raise LavimoInputError(path, f"shard {shard} has no rejection list: render it first (lavimo render shard)")
        for rejection in read_rejections(path):
            if rejection.stage == STAGE:
                rows[(rejection.item, rejection.source)] = rejection
    merged = sorted(rows.values(), key=lambda r: (r.item, r.source))
    write_rejections(out if out is not None else frames_dir / MERGED, merged, STAGE)
    write_rejections(dataset_dir / MERGED, merged, STAGE)
    return merged
