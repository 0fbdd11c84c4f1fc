"""Build a feature cache from rendered frames: decode, augment (DataLoader workers), encode, write shards.

Resumable per shard: a shard whose ``{shard}.json`` records the same config hash and clip list is skipped.
A build runs in one go (:func:`build_feature_cache`) or as one job per render shard (:func:`encode_shards`
with ``shards``, each job starting once its shard is rendered) and one small merge
(:func:`merge_feature_cache`: ``index.json``, the dataset's ``features`` rejections, the pointer). Shard
jobs write only their own files (and the same meta.json, atomically), never what the shards share.
A clip whose frames are missing, unreadable or wrongly sized is rejected (``rejected.csv``, stage
``features``, the reason naming the file) and the build goes on, unless ``strict``; clips the renderer
already rejected are skipped quietly.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from lavimo import __version__
from lavimo.io import (
    LavimoInputError,
    Rejection,
    file_sha256,
    read_json,
    read_rejections,
    save_json,
    save_npy,
    write_rejections,
)
from lavimo.layout import CURRENT, FEATURES_POINTER_KEY, clip_frames_dir, read_pointer, write_pointer
from lavimo.render.rejects import STAGE as RENDER_STAGE
from lavimo.render.rejects import shard_rejections_path
from lavimo.video.augment import AugmentConfig, make_views
from lavimo.video.cache import (
    FORMAT_VERSION,
    INDEX_COLUMNS,
    SHARD_SHA256,
    FeatureCache,
    config_hash,
    make_encoder_id,
)
from lavimo.video.encoders import FrameEncoder, load_frame_encoder
from lavimo.video.frames import load_clip_frames

log = logging.getLogger(__name__)
STAGE = "features"
SHARD_POINTERS = "shards"  # {out}/shards/{pointer}-{shard}.json: the cache a shard job encoded into


@dataclass(frozen=True)
class BuildOptions:
    """What a cache build does (everything but the encoder)."""

    views: int = 4
    num_frames: int = 8
    seed: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    frame_size: int | None = None  # expected frame size; None: what each clip's meta.json says
    batch_size: int = 8  # clips per encoder batch (a train clip is views x num_frames images)
    workers: int = 2
    augment_on: str = "auto"  # workers | device | auto (device when the encoder runs on a GPU)
    strict: bool = False
    limit: int | None = None
    progress: bool = True
    pointer: str = CURRENT  # {out}/{pointer}.json names the built cache (other names: ablation caches)


@dataclass(frozen=True)
class ClipItem:
    """One clip to encode: where its row goes and how many views it gets."""

    clip_id: str
    split: str
    shard: str
    row: int
    n_views: int


def cache_config(encoder: FrameEncoder, options: BuildOptions) -> dict[str, Any]:
    """Everything that determines the cached numbers (hashed into the encoder id)."""
    return {
        "format": FORMAT_VERSION,
        "encoder": encoder.name,
        "weights_sha256": encoder.weights.sha256,
        "preprocessing": encoder.describe()["preprocessing"],
        "frames_per_clip": options.num_frames,
        "views": options.views,
        "augmentation": options.augment.to_dict(),
        "augmentation_seed": options.seed,
    }


def cache_meta(encoder: FrameEncoder, options: BuildOptions) -> dict[str, Any]:
    """The cache's meta.json."""
    config = cache_config(encoder, options)
    full = config_hash(config)
    return {
        "format": FORMAT_VERSION,
        "encoder_id": make_encoder_id(encoder.name, full),
        "config_hash": full,
        "encoder": encoder.describe(),
        "frames_per_clip": options.num_frames,
        "views": options.views,
        "eval_views": 1,
        "augmentation": options.augment.to_dict(),
        "augmentation_seed": options.seed,
        "dtype": "float16",
        "layout": "{shard}.npy: (clips, views, frames, dim); val/test clips: view 0 = clean view, others NaN",
        "index_columns": list(INDEX_COLUMNS),
        "lavimo_version": __version__,
    }


class ClipViews(Dataset):
    """Decoded clips and, if ``augment``, their views (uint8 at the encoder's input size).

    Errors are returned, not raised, so one bad clip does not stop the loader.
    """

    def __init__(
        self, items: list[ClipItem], frames_dir: Path, options: BuildOptions, input_size: int, augment: bool = True
    ) -> None:
        self.items = items
        self.frames_dir = frames_dir
        self.options = options
        self.input_size = input_size
        self.augment = augment

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.items[i]
        opts = self.options
        try:
            clip_dir = clip_frames_dir(self.frames_dir, item.clip_id)
            frames, indices = load_clip_frames(clip_dir, opts.num_frames, opts.frame_size, opts.augment.crop_size)
        except LavimoInputError as error:  # sent as plain values: the exception does not survive pickling
            return {"i": i, "error": (error.path, error.problem)}
        if not self.augment:
            return {"i": i, "frames": frames, "indices": indices}
        return {"i": i, "views": self.views(item, frames), "indices": indices}

    def views(self, item: ClipItem, frames: torch.Tensor) -> torch.Tensor:
        """(V,T,3,S,S) uint8 views of one clip, on the frames' device."""
        opts = self.options
        train = item.split == "train"
        return make_views(frames, item.clip_id, item.n_views, opts.augment, self.input_size, opts.seed, train)


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def make_loader(dataset: ClipViews, options: BuildOptions) -> DataLoader:
    """Ordered DataLoader over clips; workers decode and augment while the model encodes."""
    return DataLoader(
        dataset,
        batch_size=options.batch_size,
        shuffle=False,
        num_workers=options.workers,
        collate_fn=list,
        worker_init_fn=_worker_init if options.workers else None,
        prefetch_factor=4 if options.workers else None,
        persistent_workers=False,
    )


def rejected_upstream(dataset_dir: Path, frames_dir: Path, shards: Sequence[str] | None = None) -> set[str]:
    """Clips an earlier stage already rejected: the dataset log's rows of the stages before rendering
    (prepare) and the render shards' own lists (``shards``: only theirs; None: every list there is).

    The log's render rows are not read: they merge the shards' lists, which a shard's features job may
    read before that merge has run.
    """
    if shards is None:
        files = sorted(frames_dir.glob("*.rejected.csv"))
    else:
        files = [shard_rejections_path(frames_dir, s) for s in shards]
    earlier = {r.item for r in read_rejections(dataset_dir / "rejected.csv") if r.stage not in (STAGE, RENDER_STAGE)}
    return earlier | {r.item for path in files for r in read_rejections(path) if r.stage == RENDER_STAGE}


def plan_items(
    manifest: pd.DataFrame, views: int, skip: set[str], limit: int | None, source: str = "manifest.parquet"
) -> dict[str, list[ClipItem]]:
    """Clips grouped by shard, in manifest order; train clips get ``views`` views, val/test one."""
    for column in ("clip_id", "split", "shard"):
        if column not in manifest.columns:
            raise LavimoInputError(source, f"manifest lacks column {column!r}")
    rows = manifest[~manifest["clip_id"].isin(skip)]
    if limit is not None:
        rows = rows.head(limit)
    plan: dict[str, list[ClipItem]] = {}
    for clip_id, split, shard in zip(rows["clip_id"], rows["split"], rows["shard"], strict=True):
        shard = str(shard)
        if "/" in shard or shard.startswith("."):
            raise LavimoInputError(source, f"shard name {shard!r} is not a plain file name")
        items = plan.setdefault(shard, [])
        items.append(ClipItem(str(clip_id), str(split), shard, len(items), views if split == "train" else 1))
    return plan


def _shard_done(cache_dir: Path, shard: str, items: list[ClipItem], full_hash: str, frames_dir: Path) -> bool:
    """Whether a shard is already encoded with this config for exactly these clips.

    A shard with rejected clips is redone when one of their frame folders changed after it was written.
    """
    record_path = cache_dir / f"{shard}.json"
    if not record_path.is_file() or not (cache_dir / f"{shard}.npy").is_file():
        return False
    record = read_json(record_path, "shard record")
    if record.get("config_hash") != full_hash or record.get("planned") != [[i.clip_id, i.n_views] for i in items]:
        return False
    written = record_path.stat().st_mtime
    if not _shard_intact(cache_dir, shard, record, record_path):
        return False
    for rejected in record["rejected"]:
        folder = clip_frames_dir(frames_dir, rejected["item"])
        if folder.exists() and folder.stat().st_mtime > written:
            return False
    return True


def _shard_intact(cache_dir: Path, shard: str, record: dict[str, Any], record_path: Path) -> bool:
    """Whether ``{shard}.npy`` still has the sha256 its record holds (a corrupt shard is re-encoded).

    A record from before lavimo recorded checksums gets the shard's present checksum added (its mtime kept).
    """
    npy = cache_dir / f"{shard}.npy"
    digest = file_sha256(npy)
    if "sha256" not in record:
        log.warning("%s: no checksum recorded (older cache): recording the shard's present one", npy)
        stat = record_path.stat()
        save_json(record_path, {**record, "sha256": digest})
        os.utime(record_path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        return True
    if digest != record["sha256"]:
        log.warning(
            "%s: does not match the sha256 in %s (corrupt or overwritten): re-encoding it", npy, record_path.name
        )
        return False
    return True


class ShardWriter:
    """Collects encoded clips of one shard and writes ``{shard}.npy`` + ``{shard}.json`` once all are in."""

    def __init__(self, cache_dir: Path, shard: str, items: list[ClipItem], meta: dict[str, Any]) -> None:
        self.cache_dir, self.shard, self.items, self.meta = cache_dir, shard, items, meta
        self.shape = (len(items), meta["views"], meta["frames_per_clip"], meta["encoder"]["dim"])
        self._array: np.ndarray | None = None  # allocated on first use: only the shards in flight hold memory
        self.indices: dict[int, list[int]] = {}
        self.rejected: list[Rejection] = []
        self.pending = len(items)

    @property
    def array(self) -> np.ndarray:
        """The shard's (clips, V, T, D) float16 buffer, NaN where nothing was written."""
        if self._array is None:
            self._array = np.full(self.shape, np.nan, dtype=np.float16)
        return self._array

    def add(self, row: int, features: np.ndarray, indices: list[int]) -> None:
        """Store one clip's (n_views, T, D) features."""
        self.array[row, : len(features)] = features
        self.indices[row] = indices
        self.pending -= 1

    def reject(self, row: int, error: LavimoInputError) -> None:
        """Record a clip that could not be encoded."""
        self.rejected.append(Rejection(self.items[row].clip_id, STAGE, error.path, error.problem))
        self.pending -= 1

    def write(self) -> None:
        """Write the shard (only encoded clips, rows compacted), then its record."""
        rows = sorted(self.indices)
        npy = self.cache_dir / f"{self.shard}.npy"
        save_npy(npy, np.ascontiguousarray(self.array[rows]))
        record = {
            "config_hash": self.meta["config_hash"],
            "sha256": file_sha256(npy),
            "planned": [[i.clip_id, i.n_views] for i in self.items],
            "clips": [self.items[r].clip_id for r in rows],
            "n_views": [self.items[r].n_views for r in rows],
            "splits": [self.items[r].split for r in rows],
            "frame_indices": [self.indices[r] for r in rows],
            "rejected": [{"item": r.item, "source": r.source, "reason": r.reason} for r in self.rejected],
        }
        save_json(self.cache_dir / f"{self.shard}.json", record)


def encode_views(encoder: FrameEncoder, batch: list[dict[str, Any]]) -> list[np.ndarray]:
    """Encode the views of a batch of clips in one forward pass: per clip (V, T, D) float16."""
    shapes = [b["views"].shape[:2] for b in batch]
    frames = torch.cat([b["views"].flatten(0, 1) for b in batch])
    features = encoder(frames).to(torch.float16).cpu().numpy()
    out, start = [], 0
    for n_views, n_frames in shapes:
        out.append(features[start : start + n_views * n_frames].reshape(n_views, n_frames, -1))
        start += n_views * n_frames
    return out


def run_items(
    encoder: FrameEncoder,
    writers: dict[str, ShardWriter],
    items: list[ClipItem],
    frames_dir: Path,
    options: BuildOptions,
    on_batch: Callable[[int, float], None] | None = None,
) -> None:
    """Encode ``items`` (ordered by shard) and flush each shard as soon as it is complete.

    ``on_batch(n_frames, encode_seconds)`` is called after each batch is encoded (the bench uses it).
    """
    device = encoder.mean.device
    on_device = options.augment_on == "device" or (options.augment_on == "auto" and device.type == "cuda")
    dataset = ClipViews(items, frames_dir, options, encoder.preprocessing.input_size, augment=not on_device)
    bar = tqdm(total=len(items), unit="clip", desc="features", disable=not options.progress)
    for batch in make_loader(dataset, options):
        good = [b for b in batch if "error" not in b]
        for b in good if on_device else []:
            b["views"] = dataset.views(items[b["i"]], b.pop("frames").to(device, non_blocking=True))
        for b in batch:
            if "error" in b:
                error = LavimoInputError(*b["error"])
                if options.strict:
                    raise error
                log.warning("rejected %s: %s", items[b["i"]].clip_id, error)
                writers[items[b["i"]].shard].reject(items[b["i"]].row, error)
        start = time.perf_counter()
        encoded = encode_views(encoder, good) if good else []
        if on_batch is not None:
            on_batch(sum(f.shape[0] * f.shape[1] for f in encoded), time.perf_counter() - start)
        for b, features in zip(good, encoded, strict=True):
            writers[items[b["i"]].shard].add(items[b["i"]].row, features, b["indices"])
        for shard in {items[b["i"]].shard for b in batch}:
            if writers[shard].pending == 0:
                writers.pop(shard).write()
        bar.update(len(batch))
    bar.close()


def open_cache_dir(out_dir: Path, meta: dict[str, Any]) -> Path:
    """The cache folder of ``meta`` under ``out_dir``, with its meta.json (written when new).

    Shard jobs of one build may start at once: each writes the same meta.json atomically, so the file is
    whole and the same whichever rename lands last.
    """
    cache_dir = out_dir / meta["encoder_id"]
    meta_path = cache_dir / "meta.json"
    if meta_path.exists():
        old = read_json(meta_path, "feature cache meta")
        if old.get("config_hash") != meta["config_hash"]:
            raise LavimoInputError(meta_path, "existing cache has another config hash; remove the folder to rebuild")
    else:
        save_json(meta_path, meta)
    return cache_dir


def plan_build(
    dataset_dir: Path, frames_dir: Path, views: int, limit: int | None = None, shards: Sequence[str] | None = None
) -> tuple[dict[str, list[ClipItem]], int]:
    """(clips to encode grouped by shard, clips skipped upstream) of a build; ``shards``: only those shards.

    A shard's plan is the same whether it is built alone or with the others (``limit`` is for whole builds).
    """
    from lavimo.datasets.manifest import load_manifest

    if shards is not None and limit is not None:
        raise ValueError("limit applies to a whole build, not to single shards")
    manifest_path = dataset_dir / "manifest.parquet"
    manifest = load_manifest(dataset_dir)
    skip = rejected_upstream(dataset_dir, frames_dir, shards)
    plan = plan_items(manifest, views, skip, limit, str(manifest_path))
    if shards is None:
        return plan, len(skip)
    unknown = sorted(set(shards) - set(manifest["shard"].astype(str)))
    if unknown:
        raise LavimoInputError(manifest_path, f"the manifest has no shard {unknown[0]!r}")
    return {s: items for s, items in plan.items() if s in shards}, len(skip)


def encode_shards(
    dataset_dir: str | os.PathLike[str],
    frames_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    encoder: FrameEncoder | None = None,
    options: BuildOptions | None = None,
    shards: Sequence[str] | None = None,
    on_batch: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """Encode every shard (``shards``: only these) that the cache lacks; returns the cache's meta.

    Writes each shard's ``{shard}.npy`` + ``{shard}.json`` and the shared meta.json (see
    :func:`open_cache_dir`), so shard jobs can run at once; :func:`merge_feature_cache` writes the rest.
    With ``shards``, also ``{out}/shards/{pointer}-{shard}.json`` per shard: which cache it was encoded into.
    """
    dataset_dir, frames_dir, out_dir = Path(dataset_dir), Path(frames_dir), Path(out_dir)
    options = options or BuildOptions()
    if not frames_dir.is_dir():
        raise LavimoInputError(frames_dir, "frames folder does not exist (render the dataset first)")
    encoder = encoder or load_frame_encoder()
    meta = cache_meta(encoder, options)
    cache_dir = open_cache_dir(out_dir, meta)
    plan, skipped = plan_build(dataset_dir, frames_dir, options.views, options.limit, shards)
    todo = {
        s: items for s, items in plan.items() if not _shard_done(cache_dir, s, items, meta["config_hash"], frames_dir)
    }
    log.info(
        "features %s: %d clips in %d shards (%d to encode, %d skipped upstream)",
        meta["encoder_id"],
        sum(map(len, plan.values())),
        len(plan),
        sum(map(len, todo.values())),
        skipped,
    )
    writers = {s: ShardWriter(cache_dir, s, items, meta) for s, items in todo.items()}
    for shard in [s for s, w in writers.items() if w.pending == 0]:
        writers.pop(shard).write()
    run_items(encoder, writers, [i for items in todo.values() for i in items], frames_dir, options, on_batch)
    for shard in shards or []:
        write_pointer(out_dir / SHARD_POINTERS, FEATURES_POINTER_KEY, meta["encoder_id"], f"{options.pointer}-{shard}")
    return meta


def shards_encoder_id(out_dir: str | os.PathLike[str], shards: Sequence[str], pointer: str = CURRENT) -> str:
    """The one cache that the shard jobs of ``shards`` recorded in ``{out}/shards/{pointer}-{shard}.json``."""
    folder = Path(out_dir) / SHARD_POINTERS
    found: dict[str, str] = {}
    for shard in shards:
        found.setdefault(
            read_pointer(folder, FEATURES_POINTER_KEY, f"{pointer}-{shard}", "features shard pointer"), shard
        )
    if len(found) != 1:
        named = ", ".join(f"{shard}: {encoder_id}" for encoder_id, shard in found.items())
        raise LavimoInputError(folder, f"the shards were encoded into different caches ({named}); rebuild them")
    return next(iter(found))


def write_index(cache_dir: Path, shards: list[str]) -> tuple[int, list[Rejection]]:
    """Gather the shard records into ``index.json``; returns (clips indexed, rejections)."""
    clips: dict[str, list] = {}
    checksums: dict[str, str] = {}
    rejected: list[Rejection] = []
    for shard in shards:
        record = read_json(cache_dir / f"{shard}.json", "shard record")
        checksums[shard] = record.get("sha256") or file_sha256(cache_dir / f"{shard}.npy")
        for row, (clip_id, n_views, split) in enumerate(
            zip(record["clips"], record["n_views"], record["splits"], strict=True)
        ):
            clips[clip_id] = [shard, row, n_views, split]
        rejected += [Rejection(r["item"], STAGE, r["source"], r["reason"]) for r in record["rejected"]]
    save_json(cache_dir / "index.json", {"columns": list(INDEX_COLUMNS), "clips": clips, SHARD_SHA256: checksums})
    return len(clips), rejected


def merge_feature_cache(
    dataset_dir: str | os.PathLike[str],
    frames_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    encoder_id: str,
    limit: int | None = None,
    pointer: str = CURRENT,
) -> FeatureCache:
    """Finish a cache whose shards are encoded: ``index.json``, the ``features`` rows of the dataset's
    rejected.csv, then ``{out}/{pointer}.json``; returns the cache opened.

    Every shard of the plan must be encoded for exactly its clips with the cache's config, else an input
    error names it. Encodes nothing: no encoder is loaded.
    """
    dataset_dir, frames_dir, out_dir = Path(dataset_dir), Path(frames_dir), Path(out_dir)
    cache_dir = out_dir / encoder_id
    meta = read_json(cache_dir / "meta.json", "feature cache meta")
    plan, _ = plan_build(dataset_dir, frames_dir, int(meta["views"]), limit)
    for shard, items in plan.items():
        if not _shard_done(cache_dir, shard, items, meta["config_hash"], frames_dir):
            raise LavimoInputError(
                cache_dir / f"{shard}.json",
                f"shard {shard} is not encoded for its current clips (features build --shard)",
            )
    n_clips, rejected = write_index(cache_dir, sorted(plan))
    write_rejections(dataset_dir / "rejected.csv", rejected, STAGE)
    if n_clips == 0 and rejected:
        raise LavimoInputError(rejected[0].source, f"no clip could be encoded; first problem: {rejected[0].reason}")
    write_pointer(out_dir, FEATURES_POINTER_KEY, encoder_id, pointer, weights=meta["encoder"]["weights"])
    log.info("features %s: %d clips cached, %d rejected -> %s", encoder_id, n_clips, len(rejected), cache_dir)
    return FeatureCache(cache_dir, expect_config_hash=meta["config_hash"])


def build_feature_cache(
    dataset_dir: str | os.PathLike[str],
    frames_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    encoder: FrameEncoder | None = None,
    options: BuildOptions | None = None,
    on_batch: Callable[[int, float], None] | None = None,
) -> FeatureCache:
    """Build (or resume) the feature cache of a dataset in one go; returns it opened. ``encoder`` defaults to CLIP."""
    options = options or BuildOptions()
    meta = encode_shards(dataset_dir, frames_dir, out_dir, encoder, options, on_batch=on_batch)
    return merge_feature_cache(dataset_dir, frames_dir, out_dir, meta["encoder_id"], options.limit, options.pointer)
