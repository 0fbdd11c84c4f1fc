"""Retrieval samples of a prepared dataset, held in memory for training and evaluation.

One sample = one clip: its normalised HumanML3D motion features (cropped to ``max_frames``), one caption,
the cached frame features of one rendered view (3-modal) and the caption's sentence embedding (soft
targets, threshold protocol). Nothing is re-encoded per epoch: motions come from the motion shards,
video features from the feature cache, sentence embeddings from the sentence cache.

Randomness (which caption, which crop, which augmented view) is a pure function of (seed, epoch, clip
index), so a run resumed at an epoch boundary sees exactly the samples an uninterrupted run would, with
any number of DataLoader workers or processes.

A training view flipped left-right shows the mirrored motion. ``hflip_pairing="original"`` pairs it with the
clip's own motion and caption anyway (the paper flips at random and says no more); ``"mirror"`` pairs it with the
mirrored clip's motion and caption (the ``M`` clip of the same source, same length and caption count), so the pair
stays true ("raises the left arm" with a video of the left arm rising).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lavimo.datasets.manifest import MANIFEST, iter_shard, load_manifest
from lavimo.datasets.splits import read_split
from lavimo.io import LavimoInputError, load_npy
from lavimo.layout import MIRROR_PREFIX, mirror_clip_id, unmirrored_id
from lavimo.text.sentences import SentenceCache
from lavimo.train_config import HFLIP_PAIRINGS
from lavimo.video.cache import FeatureCache

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]
STD_FLOOR = 1e-2  # features with a smaller spread (e.g. constant contacts) are not blown up by normalisation


@dataclass(frozen=True)
class MotionStats:
    """Per-feature mean and std used to normalise the 263-d motion features."""

    mean: np.ndarray
    std: np.ndarray
    source: str  # "dataset:Mean.npy/Std.npy" or "train-split:{n} clips"

    def normalise(self, features: np.ndarray) -> np.ndarray:
        """(T, 263) raw -> normalised float32."""
        return ((features - self.mean) / self.std).astype(np.float32)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """For saving in an npz or a checkpoint."""
        return {"mean": self.mean.astype(np.float32), "std": self.std.astype(np.float32)}


def compute_motion_stats(dataset_dir: PathLike, train_ids: Sequence[str]) -> MotionStats:
    """The dataset's own Mean.npy/Std.npy when it ships them (HumanML3D), else statistics of the train clips."""
    dataset_dir = Path(dataset_dir)
    mean_path, std_path = dataset_dir / "Mean.npy", dataset_dir / "Std.npy"
    if mean_path.is_file() and std_path.is_file():
        mean = load_npy(mean_path, "motion mean", ndim=1, finite=True).astype(np.float32)
        std = load_npy(std_path, "motion std", ndim=1, finite=True).astype(np.float32)
        return MotionStats(mean, np.maximum(std, 1e-8), "dataset:Mean.npy/Std.npy")
    wanted = set(train_ids)
    total, total_sq, count = None, None, 0
    for clip_id, features in _iter_features(dataset_dir, wanted):
        if not np.isfinite(features).all():  # one such clip would make every clip's normalised features NaN
            raise LavimoInputError(
                dataset_dir / MANIFEST, f"clip {clip_id} has NaN/Inf motion features: rerun `lavimo prepare`"
            )
        f = features.astype(np.float64)
        total = f.sum(0) if total is None else total + f.sum(0)
        total_sq = (f**2).sum(0) if total_sq is None else total_sq + (f**2).sum(0)
        count += len(f)
    if not count:
        raise LavimoInputError(dataset_dir / MANIFEST, "no train clips to compute motion statistics from")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    return MotionStats(mean.astype(np.float32), np.maximum(std, STD_FLOOR).astype(np.float32), f"train:{count}fr")


def _iter_features(dataset_dir: Path, wanted: set[str]) -> Iterator[tuple[str, np.ndarray]]:
    """(clip_id, features) of the wanted clips, reading each motion shard once."""
    manifest = load_manifest(dataset_dir)
    for shard in sorted(manifest.loc[manifest["clip_id"].isin(wanted), "shard"].unique()):
        for clip_id, _, features in iter_shard(dataset_dir, shard):
            if clip_id in wanted:
                yield clip_id, features


def split_ids(dataset_dir: PathLike, split: str) -> list[str]:
    """Clip ids of a split: ``splits/{split}.txt`` when present, else the manifest's split column."""
    dataset_dir = Path(dataset_dir)
    path = dataset_dir / "splits" / f"{split}.txt"
    if path.is_file():
        return read_split(path)
    manifest = load_manifest(dataset_dir)
    return manifest.loc[manifest["split"] == split, "clip_id"].tolist()


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random stream of one sample in one epoch (independent of worker and process layout)."""
    return np.random.default_rng([seed, epoch, index])


class RetrievalDataset(torch.utils.data.Dataset):
    """Clips of one split with motion, captions, video features and caption sentence embeddings, in memory.

    ``train=True``: a random caption, a random ``max_frames`` crop and a random augmented view per sample
    and epoch (call ``set_epoch``). ``train=False``: the first caption, the centre crop and the clean view 0.
    """

    def __init__(
        self,
        dataset_dir: PathLike,
        split: str,
        stats: MotionStats,
        *,
        features: FeatureCache | None = None,
        sentences: SentenceCache | None = None,
        max_frames: int = 196,
        train: bool = False,
        seed: int = 0,
        ids: Sequence[str] | None = None,
        max_views: int = 0,
        hflip_pairing: str = "original",
    ) -> None:
        if hflip_pairing not in HFLIP_PAIRINGS:
            raise ValueError(f"hflip_pairing must be one of {list(HFLIP_PAIRINGS)}, got {hflip_pairing!r}")
        self.dataset_dir = Path(dataset_dir)
        self.max_views = max_views  # training draws from the first max_views cached views (0 = all)
        self.split, self.train, self.seed, self.max_frames = split, train, seed, max_frames
        self.features, self.sentences = features, sentences
        self.epoch = 0
        manifest = load_manifest(self.dataset_dir).set_index("clip_id")
        wanted = list(ids) if ids is not None else split_ids(self.dataset_dir, split)
        missing = [i for i in wanted if i not in manifest.index]
        if missing:
            raise LavimoInputError(
                self.dataset_dir / MANIFEST, f"{len(missing)} {split} clip(s) not in the manifest, e.g. {missing[:3]}"
            )
        motions = dict(_iter_features(self.dataset_dir, set(wanted)))
        self.clip_ids = [i for i in wanted if i in motions]
        if not self.clip_ids:
            raise LavimoInputError(self.dataset_dir / MANIFEST, f"the {split} split has no clips with motion")
        self.motions = [stats.normalise(motions[i]) for i in self.clip_ids]
        self.captions = [[t["text"] for t in manifest.at[i, "texts"]] for i in self.clip_ids]
        empty = [i for i, c in zip(self.clip_ids, self.captions, strict=True) if not c]
        if empty:
            raise LavimoInputError(self.dataset_dir / MANIFEST, f"clips without captions: {empty[:3]}")
        self.sentence_rows = None
        if sentences is not None:
            self.sentence_rows = [[sentences.rows[c.strip()] for c in caps] for caps in self.captions]
        self.mirror_of = self._mirrors() if train and features is not None and hflip_pairing == "mirror" else None

    def _mirrors(self) -> dict[int, int]:
        """{index: index of its mirrored clip} for the clips whose mirror is in this split with as many captions
        and frames; a flipped view of any other clip keeps its own motion (counted in a warning)."""
        assert self.features is not None
        self.features.require_flip_records()
        position = {clip_id: i for i, clip_id in enumerate(self.clip_ids)}
        pairs = {}
        for i, clip_id in enumerate(self.clip_ids):
            other = unmirrored_id(clip_id) if clip_id.startswith(MIRROR_PREFIX) else mirror_clip_id(clip_id)
            j = position.get(other)
            same_shape = j is not None and len(self.captions[j]) == len(self.captions[i])
            if same_shape and len(self.motions[j]) == len(self.motions[i]):
                pairs[i] = j
        if len(pairs) < len(self.clip_ids):
            log.warning(
                "hflip_pairing=mirror: %d of %d %s clips have no mirror here; their flipped views keep their motion",
                len(self.clip_ids) - len(pairs),
                len(self.clip_ids),
                self.split,
            )
        return pairs

    def __len__(self) -> int:
        return len(self.clip_ids)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose captions, crops and views __getitem__ returns."""
        self.epoch = epoch

    @property
    def video_coverage(self) -> float:
        """Fraction of clips that have cached video features."""
        if self.features is None:
            return 0.0
        return sum(i in self.features for i in self.clip_ids) / len(self.clip_ids)

    def caption_index(self, index: int, rng: np.random.Generator | None) -> int:
        """Which of the clip's captions this sample uses."""
        return int(rng.integers(len(self.captions[index]))) if rng is not None else 0

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = sample_rng(self.seed, self.epoch, index) if self.train else None
        excess = len(self.motions[index]) - self.max_frames
        start = 0
        if excess > 0:
            start = int(rng.integers(excess + 1)) if rng is not None else excess // 2
        caption = self.caption_index(index, rng)
        clip_id = self.clip_ids[index]
        video = None
        if self.features is not None:
            video, video_valid, flipped = self._video(clip_id, rng)
            if flipped and self.mirror_of is not None and index in self.mirror_of:
                index = self.mirror_of[index]  # the mirrored clip's motion and caption: what the flipped view shows
        sample: dict[str, Any] = {
            "clip_id": clip_id,
            "motion": torch.from_numpy(np.ascontiguousarray(self.motions[index][start : start + self.max_frames])),
            "text": self.captions[index][caption],
        }
        if self.sentence_rows is not None:
            row = self.sentence_rows[index][caption]
            sample["sentence_emb"] = torch.from_numpy(np.array(self.sentences.embeddings[row], dtype=np.float32))
        if video is not None:
            sample["video"], sample["video_valid"] = video, video_valid
        return sample

    def _video(self, clip_id: str, rng: np.random.Generator | None) -> tuple[Tensor, bool, bool]:
        """(F, D) float32 features of one view, whether the clip has any (zeros and False when it was not
        rendered/encoded), and whether the view is flipped (only looked up when flipped views are re-paired)."""
        if clip_id not in self.features:
            return torch.zeros(self.features.num_frames, self.features.dim), False, False
        views = self.features.n_views(clip_id)
        if self.max_views > 0:
            views = min(views, self.max_views)
        view = int(rng.integers(views)) if rng is not None else 0
        flipped = self.mirror_of is not None and self.features.view_flipped(clip_id, view)
        return torch.from_numpy(np.array(self.features.get(clip_id, view), dtype=np.float32)), True, flipped


class Collate:
    """Pads motions, tokenizes captions and stacks the rest into a model batch (picklable for workers)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        lengths = torch.tensor([len(s["motion"]) for s in samples])
        motion = torch.zeros(len(samples), int(lengths.max()), samples[0]["motion"].shape[-1])
        for row, s in enumerate(samples):
            motion[row, : len(s["motion"])] = s["motion"]
        texts = [s["text"] for s in samples]
        batch: dict[str, Any] = {
            "clip_ids": [s["clip_id"] for s in samples],
            "text": texts,
            "text_tokens": self.tokenizer(texts),
            "motion": motion,
            "lengths": lengths,
        }
        if "sentence_emb" in samples[0]:
            batch["sentence_emb"] = torch.stack([s["sentence_emb"] for s in samples])
        if "video" in samples[0]:
            batch["video"] = torch.stack([s["video"] for s in samples])
            batch["video_valid"] = torch.tensor([s["video_valid"] for s in samples])
        return batch


class EpochBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Global batches from a seeded per-epoch permutation; each process takes its slice of every batch.

    The global batch composition depends only on (seed, epoch, batch_size), not on the number of processes,
    and the incomplete last batch is dropped (contrastive batches need negatives).
    """

    def __init__(self, size: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        if batch_size % world_size:
            raise ValueError(f"batch size {batch_size} is not divisible by {world_size} processes")
        if size < batch_size:
            raise ValueError(f"{size} training clips are fewer than one batch of {batch_size}")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the permutation of this epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        order = np.random.default_rng([self.seed, self.epoch, 7919]).permutation(self.size)
        local = self.batch_size // self.world_size
        for step in range(len(self)):
            start = step * self.batch_size + self.rank * local
            yield order[start : start + local].tolist()
