"""Motion libraries an index is built from: a prepared dataset, or a folder of the user's own BVH files.

Both list their clips cheaply first (:meth:`entries`: id, caption, source, duration, and a *signature* that
changes when the clip's motion does), so that an index rebuild converts and embeds only new or changed clips
(:meth:`motions`).

- :class:`DatasetLibrary`: every clip of ``manifest.parquet`` (mirrors optional), motions from the shards;
  caption = the clip's first caption; signature = the shard's prepare fingerprint. Rendered frames, where the
  dataset has them, serve as previews.
- :class:`BvhLibrary`: every ``*.bvh`` under a folder (recursively); clip id = the path relative to the folder
  without ``.bvh``; caption = the first line of a ``.txt`` beside it, if any; signature = the file's SHA-256.
  Each file goes through ``lavimo motion from-bvh``'s conversion (:func:`lavimo.motion.pipeline.bvh_to_clip`);
  a file that fails is skipped and recorded with its reason in :attr:`rejected`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lavimo.io import LavimoInputError, Rejection, file_sha256
from lavimo.search.encode import SearchInputError

STAGE = "index"
PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Entry:
    """One clip of a library, before its motion is read."""

    clip_id: str
    caption: str
    source: str
    duration: float  # seconds (NaN until a BVH file is converted)
    signature: str


@dataclass(frozen=True)
class Motion:
    """One clip's motion: (T, 22, 3) joints and (T, 263) features at 20 fps."""

    clip_id: str
    joints: np.ndarray
    features: np.ndarray
    duration: float


class DatasetLibrary:
    """The clips of a prepared dataset (``lavimo prepare``)."""

    kind = "dataset"

    def __init__(self, dataset_dir: PathLike, mirrors: bool = True) -> None:
        from lavimo.datasets.manifest import load_manifest
        from lavimo.layout import MIRROR_PREFIX, frames_dir

        self.root = Path(dataset_dir)
        try:
            manifest = load_manifest(self.root)
        except LavimoInputError as error:
            raise SearchInputError(error.path, error.problem) from error
        if not mirrors:
            mirrored = manifest["mirrored_from"].astype(str) != ""
            manifest = manifest[~(mirrored & manifest["clip_id"].str.startswith(MIRROR_PREFIX))]
        self.manifest = manifest
        self.mirrors = mirrors
        self.frames_dir: Path | None = frames_dir(self.root) if frames_dir(self.root).is_dir() else None
        self.rejected: list[Rejection] = []

    def entries(self) -> list[Entry]:
        """Every clip, in manifest order."""
        from lavimo.datasets.manifest import read_shard_meta, shard_path

        fingerprints: dict[str, str] = {}
        out = []
        for row in self.manifest.itertuples(index=False):
            shard = str(row.shard)
            if shard not in fingerprints:
                meta = read_shard_meta(shard_path(self.root, shard)) or {}
                fingerprints[shard] = str(meta.get("fingerprint", ""))
            texts = list(row.texts) if row.texts is not None else []
            caption = str(texts[0]["text"]) if texts else ""
            duration = float(row.n_frames) / float(row.fps) if row.fps else float("nan")
            signature = f"{shard}:{fingerprints[shard]}"
            out.append(Entry(str(row.clip_id), caption, str(row.source), duration, signature))
        return out

    def motions(self, clip_ids: list[str]) -> Iterator[Motion]:
        """The motions of ``clip_ids``, shard by shard (each shard read once)."""
        from lavimo.datasets.manifest import iter_shard

        wanted = set(clip_ids)
        rows = self.manifest[self.manifest["clip_id"].isin(wanted)]
        fps = dict(zip(rows["clip_id"], rows["fps"], strict=True))
        for shard in sorted(rows["shard"].unique()):
            for clip_id, joints, features in iter_shard(self.root, shard):
                if clip_id in wanted:
                    yield Motion(clip_id, joints, features, len(joints) / float(fps[clip_id] or 20))

    def describe(self) -> dict[str, object]:
        """What the index records about its library."""
        return {"kind": self.kind, "root": str(self.root.resolve()), "mirrors": self.mirrors}


class BvhLibrary:
    """The ``*.bvh`` files under a folder, converted without rendering."""

    kind = "bvh"

    def __init__(self, folder: PathLike, min_seconds: float = 1.0) -> None:
        self.root = Path(folder)
        if not self.root.is_dir():
            raise SearchInputError(self.root, "BVH folder does not exist")
        self.files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() == ".bvh" and p.is_file())
        if not self.files:
            raise SearchInputError(self.root, "folder holds no .bvh files")
        self.min_seconds = min_seconds
        self.frames_dir: Path | None = None
        self.rejected: list[Rejection] = []
        self._paths = {self.clip_id(p): p for p in self.files}

    def clip_id(self, path: Path) -> str:
        """The file's path under the folder, without ``.bvh`` (``/`` separated)."""
        return path.relative_to(self.root).with_suffix("").as_posix()

    @staticmethod
    def caption(path: Path) -> str:
        """The first non-empty line of ``{name}.txt`` beside the file ("" when there is none)."""
        text_file = path.with_suffix(".txt")
        if not text_file.is_file():
            return ""
        lines = [line.strip() for line in text_file.read_text(errors="replace").splitlines() if line.strip()]
        return lines[0] if lines else ""

    def entries(self) -> list[Entry]:
        """Every file (unreadable ones are rejected here)."""
        out = []
        for clip_id, path in self._paths.items():
            try:
                signature = file_sha256(path)
            except OSError as error:
                self.rejected.append(Rejection(clip_id, STAGE, str(path), f"unreadable file ({error.strerror})"))
                continue
            out.append(Entry(clip_id, self.caption(path), str(path.resolve()), float("nan"), signature))
        return out

    def motions(self, clip_ids: list[str]) -> Iterator[Motion]:
        """Each file converted to canonical 20 fps joints and features; failures are recorded and skipped."""
        from lavimo.motion.pipeline import bvh_to_clip

        for clip_id in clip_ids:
            path = self._paths[clip_id]
            try:
                clip = bvh_to_clip(path, min_seconds=self.min_seconds)
            except LavimoInputError as error:
                self.rejected.append(Rejection(clip_id, STAGE, str(path), error.problem))
                continue
            except (ValueError, IndexError, KeyError) as error:  # malformed content the reader did not name
                self.rejected.append(Rejection(clip_id, STAGE, str(path), f"{type(error).__name__}: {error}"))
                continue
            yield Motion(clip_id, clip.joints, clip.features, clip.seconds)

    def describe(self) -> dict[str, object]:
        """What the index records about its library."""
        return {"kind": self.kind, "root": str(self.root.resolve())}
