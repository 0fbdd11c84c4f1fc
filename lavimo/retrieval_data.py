"""Retrieval samples of a prepared dataset, held in memory for training and evaluation.

One sample = one clip: its normalised HumanML3D motion features (cropped to ``max_frames``), one caption,
the cached frame features of one rendered view (3-modal) and the caption's sentence embedding (soft
targets, threshold protocol). Nothing is re-encoded per epoch: motions come from the motion shards,
video features from the feature cache, sentence embeddings from the sentence cache.

Randomness (which caption, which crop, which augmented view) is a pure function of (seed, epoch, clip
index), so a run resumed at an epoch boundary sees exactly the samples an uninterrupted run would, with
any number of DataLoader workers or processes.
"""

from __future__ import annotations

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
from lavimo.text.sentences import SentenceCache
from lavimo.video.cache import FeatureCache

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
    for _, features in _iter_features(dataset_dir, wanted):
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
    ) -> None:
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
        motion = self.motions[index]
        excess = len(motion) - self.max_frames
        if excess > 0:
            start = int(rng.integers(excess + 1)) if rng is not None else excess // 2
            motion = motion[start : start + self.max_frames]
        caption = self.caption_index(index, rng)
        sample: dict[str, Any] = {
            "clip_id": self.clip_ids[index],
            "motion": torch.from_numpy(np.ascontiguousarray(motion)),
            "text": self.captions[index][caption],
        }
        if self.sentence_rows is not None:
            row = self.sentence_rows[index][caption]
            sample["sentence_emb"] = torch.from_numpy(np.array(self.sentences.embeddings[row], dtype=np.float32))
        if self.features is not None:
            sample["video"], sample["video_valid"] = self._video(self.clip_ids[index], rng)
        return sample

    def _video(self, clip_id: str, rng: np.random.Generator | None) -> tuple[Tensor, bool]:
        """(F, D) float32 features of one view, or zeros and False when the clip was not rendered/encoded."""
        if clip_id not in self.features:
            return torch.zeros(self.features.num_frames, self.features.dim), False
        views = self.features.n_views(clip_id)
        if self.max_views > 0:
            views = min(views, self.max_views)
        view = int(rng.integers(views)) if rng is not None else 0
        return torch.from_numpy(np.array(self.features.get(clip_id, view), dtype=np.float32)), True


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
