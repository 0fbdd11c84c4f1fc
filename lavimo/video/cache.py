"""On-disk per-frame feature cache: sharded float16 arrays, an index and a meta that pins the encoder.

Layout under ``results/{ds}/features/``::

    current.json                {"encoder_id": ...}: the cache the last build wrote (the Snakemake target)
    {encoder_id}/               encoder_id = "{encoder name}-{first 10 hex of config_hash}"
        meta.json               encoder (name, dim, weights source + sha256, preprocessing), frames per clip,
                                views, augmentation + seed, config_hash, layout
        index.json              {"columns": [shard, row, n_views, split], "clips": {clip_id: [...]},
                                "shard_sha256": {shard: sha256 of {shard}.npy}} (checked at a shard's first use)
        {shard}.npy             float16 (clips, V, T, D); V = the training view count for every clip.
                                Train clips fill all V views; val/test clips have n_views = 1 (the clean
                                centre view) and their padding views are NaN, so a stray read shows.
        {shard}.json            the shard's clips in row order, n_views, splits, frame indices, rejects,
                                config_hash, sha256 of the .npy (written after it: marks a finished shard)

Features are the encoder's raw image embeddings (CLIP: the projected 512-d embedding), not normalised.
Any change of encoder, weights, preprocessing, frame count, views or augmentation changes config_hash and
therefore the folder: caches never mix; opening one with a different expected hash is an input error.
A shard whose bytes no longer match its recorded sha256 is an input error naming the shard. A cache built
before checksums were recorded is read unverified, with a warning; rerunning its build records them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from lavimo.io import LavimoInputError, file_sha256, load_npy, read_json
from lavimo.layout import CURRENT, FEATURES_POINTER_KEY, pointer_path, read_pointer
from lavimo.video.draws import HFLIP_DRAW, view_flipped

log = logging.getLogger(__name__)
FORMAT_VERSION = 1
INDEX_COLUMNS = ("shard", "row", "n_views", "split")
SHARD_SHA256 = "shard_sha256"  # index.json key: {shard: sha256 of {shard}.npy}


def config_hash(config: dict[str, Any]) -> str:
    """SHA-256 of a canonical JSON dump of everything that determines the cached numbers."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def make_encoder_id(encoder_name: str, full_hash: str) -> str:
    """The cache folder name: encoder name plus a short config hash."""
    return f"{encoder_name}-{full_hash[:10]}"


def resolve_cache_dir(path: str | os.PathLike[str], pointer: str = CURRENT) -> Path:
    """A cache folder itself, or a features folder whose ``{pointer}.json`` names one."""
    path = Path(path)
    if (path / "meta.json").is_file() or (pointer == CURRENT and not pointer_path(path, pointer).is_file()):
        return path
    return path / read_pointer(path, FEATURES_POINTER_KEY, pointer, f"feature cache pointer {pointer!r}")


class FeatureCache:
    """Read access to a feature cache; shards are memory-mapped (``np.load(mmap_mode='r')``) on first use."""

    def __init__(self, path: str | os.PathLike[str], expect_config_hash: str | None = None) -> None:
        self.path = resolve_cache_dir(path)
        self.meta: dict[str, Any] = read_json(self.path / "meta.json", "feature cache meta")
        self._check_meta(expect_config_hash)
        index = read_json(self.path / "index.json", "feature cache index")
        if tuple(index.get("columns", ())) != INDEX_COLUMNS:
            raise LavimoInputError(self.path / "index.json", f"index columns are not {list(INDEX_COLUMNS)}")
        self._index: dict[str, list] = index["clips"]
        self._sha256: dict[str, str] | None = index.get(SHARD_SHA256)
        if self._sha256 is None:
            log.warning(
                "%s: no shard checksums (built by an older lavimo): shards are read unverified; rerun the feature "
                "build (lavimo features build ...) to record them",
                self.path / "index.json",
            )
        self._shards: dict[str, np.ndarray] = {}

    def _check_meta(self, expect_config_hash: str | None) -> None:
        meta_path = self.path / "meta.json"
        if self.meta.get("format") != FORMAT_VERSION:
            raise LavimoInputError(meta_path, f"cache format {self.meta.get('format')}, expected {FORMAT_VERSION}")
        if self.meta.get("encoder_id") != self.path.name:
            raise LavimoInputError(
                meta_path, f"meta is for encoder_id {self.meta.get('encoder_id')!r} but lies in {self.path.name!r}"
            )
        if expect_config_hash is not None and self.meta.get("config_hash") != expect_config_hash:
            raise LavimoInputError(
                meta_path,
                f"cache was built by {self.meta['encoder']['name']} with config {self.meta.get('config_hash', '')[:10]}"
                f", expected config {expect_config_hash[:10]} (another encoder, weights or preprocessing)",
            )

    @property
    def encoder_id(self) -> str:
        """The folder name: encoder name plus short config hash."""
        return str(self.meta["encoder_id"])

    @property
    def dim(self) -> int:
        """Feature size D."""
        return int(self.meta["encoder"]["dim"])

    @property
    def num_frames(self) -> int:
        """Frames per clip T."""
        return int(self.meta["frames_per_clip"])

    @property
    def clip_ids(self) -> list[str]:
        """Every cached clip, in index order."""
        return list(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, clip_id: object) -> bool:
        return clip_id in self._index

    def _entry(self, clip_id: str) -> list:
        try:
            return self._index[clip_id]
        except KeyError:
            raise KeyError(f"clip {clip_id!r} is not in the feature cache {self.path}") from None

    def n_views(self, clip_id: str) -> int:
        """How many views the clip has (training views for train clips, 1 for val/test)."""
        return int(self._entry(clip_id)[2])

    def split(self, clip_id: str) -> str:
        """The clip's split when the cache was built."""
        return str(self._entry(clip_id)[3])

    def shard_array(self, shard: str) -> np.ndarray:
        """One shard, memory-mapped read-only, shape-checked against the meta."""
        if shard not in self._shards:
            path = self.path / f"{shard}.npy"
            if self._sha256 is not None and path.is_file() and file_sha256(path) != self._sha256.get(shard):
                raise LavimoInputError(
                    path,
                    "feature shard does not match its sha256 in index.json (corrupt or overwritten): "
                    "rerun the feature build to re-encode it",
                )
            array = load_npy(path, "feature shard", mmap=True)
            expected = (int(self.meta["views"]), self.num_frames, self.dim)
            if array.ndim != 4 or array.shape[1:] != expected or array.dtype != np.float16:
                want = ", ".join(map(str, expected))
                raise LavimoInputError(path, f"shard is {array.dtype}{array.shape}, expected float16 (clips, {want})")
            self._shards[shard] = array
        return self._shards[shard]

    def get(self, clip_id: str, view: int = 0) -> np.ndarray:
        """One view of one clip: (T, D) float16 (a read-only memory-mapped slice)."""
        shard, row, n_views, _ = self._entry(clip_id)
        if not 0 <= view < n_views:
            raise IndexError(f"clip {clip_id!r} has {n_views} view(s), asked for view {view}")
        return self.shard_array(shard)[row, view]

    def require_flip_records(self) -> None:
        """Refuse a cache that cannot tell which training views are flipped (:meth:`view_flipped`): one built before
        the flip got its own draw (``augmentation.hflip_draw``)."""
        if self.meta.get("augmentation", {}).get("hflip_draw") != HFLIP_DRAW:
            raise LavimoInputError(
                self.path / "meta.json",
                "this cache does not record which views are flipped (built before the flip had its own draw): "
                "rebuild it with `lavimo features build` to pair flipped views with mirrored motions",
            )

    def view_flipped(self, clip_id: str, view: int) -> bool:
        """Whether training view ``view`` of a clip shows its frames flipped left-right (val/test views never are)."""
        self.require_flip_records()
        if self.split(clip_id) != "train":
            return False
        augmentation = self.meta["augmentation"]
        return view_flipped(int(self.meta["augmentation_seed"]), clip_id, view, float(augmentation["hflip_p"]))

    def views(self, clip_id: str) -> np.ndarray:
        """All valid views of one clip: (n_views, T, D) float16."""
        shard, row, n_views, _ = self._entry(clip_id)
        return self.shard_array(shard)[row, :n_views]

    @classmethod
    def open_current(cls, features_dir: str | os.PathLike[str], pointer: str = CURRENT) -> FeatureCache:
        """The cache ``features_dir/{pointer}.json`` points at (``current``: the pipeline's own)."""
        return cls(resolve_cache_dir(features_dir, pointer))
