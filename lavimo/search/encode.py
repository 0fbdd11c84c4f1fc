"""A trained run's encoders as search uses them: motions, captions and video frames -> L2-normalised embeddings.

:class:`ModelIdentity` is what an index records about the model that embedded it (run folder, checkpoint file
and its SHA-256, variant, embedding size, text-encoder source, motion crop, and for a 3-modal run the
:class:`VideoPreprocessing` its feature cache used). :class:`RunEncoders` loads a run once and embeds:

- motions: raw (T, 263) HumanML3D features, normalised with the run's statistics and centre-cropped to the
  run's ``max_frames``, exactly as evaluation does (:class:`lavimo.retrieval_data.RetrievalDataset`);
- text: the run's text encoder;
- video: (T, 3, H, W) uint8 frames (8 of them, sampled uniformly) through the *clean view* of the feature cache
  (:func:`lavimo.video.augment.clean_transform`: shorter side to the crop size, centre crop, resize to the
  encoder's input), the frame encoder the cache was built with, float16 rounding as the cache stores features,
  then the run's video encoder.

A frame encoder other than the index's (another encoder, other weights or preprocessing) is refused with both
named (:func:`check_frame_encoder`).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lavimo.checkpoints import MODEL_FILE
from lavimo.io import LavimoInputError, file_sha256

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]


class SearchInputError(LavimoInputError):
    """Bad search input (query, index, model): ``str(error)`` is the one line to show (CLI) or return (4xx)."""


@dataclass(frozen=True)
class VideoPreprocessing:
    """How the run's cached training frames were made, so that a query video is made the same way."""

    encoder: str  # frame encoder name (lavimo.video.encoders.ENCODERS, or a test encoder)
    weights_sha256: str
    weights_source: str  # checkpoint | hub-cache | package | package-fallback | random-init
    weights_path: str | None
    input_size: int
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    crop_size: int  # the clean view's square crop before the encoder resize
    num_frames: int  # frames sampled uniformly per clip
    feature_dtype: str = "float16"  # the cache stores features at this precision
    encoder_id: str = ""  # the feature cache folder name

    def describe(self) -> str:
        """``name (weights 1234abcd5678)``: how an error names this encoder."""
        return f"{self.encoder} (weights {self.weights_sha256[:12]})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able record."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoPreprocessing:
        """Read back from an index."""
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**values, "mean": tuple(data["mean"]), "std": tuple(data["std"])})


@dataclass(frozen=True)
class ModelIdentity:
    """The model that embedded an index."""

    run: str
    checkpoint: str
    checkpoint_sha256: str
    variant: str
    dim: int
    max_frames: int
    text_encoder: str
    video: VideoPreprocessing | None = None
    model_config: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """``run (model.pt sha256 1234abcd5678)``."""
        return f"{self.run} ({Path(self.checkpoint).name} sha256 {self.checkpoint_sha256[:12]})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able record (stored in the index)."""
        data = asdict(self)
        data["video"] = None if self.video is None else self.video.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelIdentity:
        """Read back from an index."""
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        video = data.get("video")
        return cls(**{**values, "video": None if video is None else VideoPreprocessing.from_dict(video)})


def model_file(run: PathLike) -> Path:
    """The weights a run folder (or a model/checkpoint file) designates."""
    path = Path(run)
    return path / MODEL_FILE if path.is_dir() else path


def run_dataset_dir(run_dir: Path) -> Path | None:
    """The prepared dataset a run was trained on: its config's ``dataset_dir`` (relative to here), else
    ``{run}/../..`` (the results layout), whichever holds a manifest; None when neither does."""
    from lavimo.datasets.manifest import MANIFEST

    config_path = run_dir / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    for candidate in (Path(config.get("dataset_dir") or run_dir / "missing"), run_dir.parent.parent):
        if (candidate / MANIFEST).is_file():
            return candidate
    return None


def video_preprocessing(run_dir: Path, model_config: Any) -> VideoPreprocessing | None:
    """The frame preprocessing of a 3-modal run, from its config.json and feature cache meta (None for 2-modal)."""
    if model_config.variant != "3modal":
        return None
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise SearchInputError(config_path, "the run has no config.json: cannot tell which frame encoder it used")
    config = json.loads(config_path.read_text())
    features = (config.get("data") or {}).get("features")
    if not features:
        raise SearchInputError(config_path, "the 3-modal run records no frame-feature cache (data.features)")
    from lavimo.layout import features_dir
    from lavimo.video.augment import AugmentConfig

    dataset_dir = run_dataset_dir(run_dir)
    cache_meta = features_dir(dataset_dir or run_dir) / features["encoder_id"] / "meta.json"
    meta = json.loads(cache_meta.read_text()) if cache_meta.is_file() else {}
    if not meta:
        log.warning("%s not found: assuming the default crop size and %d frames", cache_meta, model_config.num_frames)
    prep, weights = features["preprocessing"], features["weights"]
    return VideoPreprocessing(
        encoder=features["name"],
        weights_sha256=weights["sha256"],
        weights_source=weights["source"],
        weights_path=weights.get("path"),
        input_size=int(prep["input_size"]),
        interpolation=prep["interpolation"],
        mean=tuple(prep["mean"]),
        std=tuple(prep["std"]),
        crop_size=int(meta.get("augmentation", {}).get("crop_size", AugmentConfig().crop_size)),
        num_frames=int(meta.get("frames_per_clip", model_config.num_frames)),
        feature_dtype=str(meta.get("dtype", "float16")),
        encoder_id=features["encoder_id"],
    )


def check_frame_encoder(encoder: Any, expected: VideoPreprocessing) -> None:
    """Refuse a frame encoder that is not the one the index's cache used (name, weights, preprocessing)."""
    prep = encoder.preprocessing
    same = (
        encoder.name == expected.encoder
        and encoder.weights.sha256 == expected.weights_sha256
        and (prep.input_size, prep.interpolation) == (expected.input_size, expected.interpolation)
        and np.allclose(prep.mean, expected.mean)
        and np.allclose(prep.std, expected.std)
    )
    if not same:
        found = f"{encoder.name} (weights {encoder.weights.sha256[:12]})"
        raise SearchInputError(
            "video query",
            f"encoded with {found}, but the index's model was trained on {expected.describe()} features; "
            "pass --frame-checkpoint with the index's frame-encoder weights",
        )


def resolve_frame_encoder(expected: VideoPreprocessing, checkpoint: PathLike | None = None, device: str = "cpu") -> Any:
    """The index's frame encoder, resolved as the feature build resolves it (checked against ``expected``)."""
    from lavimo.video.encoders import ENCODERS, load_frame_encoder

    if expected.encoder not in ENCODERS and not expected.encoder.startswith("clip-vit-b32"):
        raise SearchInputError(
            "video query", f"the index's frame encoder {expected.describe()} is not one lavimo can load ({ENCODERS})"
        )
    name = "clip-vit-b32" if expected.encoder.startswith("clip-vit-b32") else expected.encoder
    if checkpoint is None and expected.weights_source == "checkpoint" and expected.weights_path:
        checkpoint = expected.weights_path if Path(expected.weights_path).is_file() else None
    try:
        encoder = load_frame_encoder(name, checkpoint, random_init=expected.weights_source == "random-init")
    except LavimoInputError as error:
        raise SearchInputError(error.path, error.problem) from error
    check_frame_encoder(encoder, expected)
    return encoder.to(device)


class RunEncoders:
    """A trained run loaded once: embeds motions, captions and video frames into its joint space."""

    def __init__(self, run: PathLike, device: str = "auto") -> None:
        from lavimo.embed import load_trained

        path = model_file(run)
        try:
            self.model, self.stats, state = load_trained(path, device)
        except LavimoInputError as error:
            raise SearchInputError(error.path, error.problem) from error
        self.device = next(self.model.parameters()).device
        self.max_frames = int(state.get("train_config", {}).get("max_frames", 196))
        run_dir = path.parent if path.name == MODEL_FILE else path.parent.parent
        self.identity = ModelIdentity(
            run=str(run_dir.resolve()),
            checkpoint=str(path.resolve()),
            checkpoint_sha256=file_sha256(path),
            variant=self.model.config.variant,
            dim=int(self.model.config.latent_dim),
            max_frames=self.max_frames,
            text_encoder=self.model.text_encoder_source,
            video=video_preprocessing(run_dir, self.model.config),
            model_config=self.model.config.to_dict(),
        )
        self._frame_encoder: Any = None

    @torch.no_grad()
    def motions(self, features: list[np.ndarray], batch_size: int = 64) -> np.ndarray:
        """(N, C) float32 embeddings of raw (T_i, 263) features (normalised, centre-cropped, batched by length)."""
        out = np.zeros((len(features), self.identity.dim), np.float32)
        order = np.argsort([len(f) for f in features], kind="stable")
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            clips = [self._crop(self.stats.normalise(features[i])) for i in rows]
            lengths = torch.tensor([len(c) for c in clips])
            batch = torch.zeros(len(clips), int(lengths.max()), clips[0].shape[1])
            for row, clip in enumerate(clips):
                batch[row, : len(clip)] = torch.from_numpy(clip)
            emb = self.model.encode_motion(batch.to(self.device), lengths.to(self.device))
            out[rows] = emb.float().cpu().numpy()
        return out

    def _crop(self, motion: np.ndarray) -> np.ndarray:
        excess = len(motion) - self.max_frames
        return motion[excess // 2 : excess // 2 + self.max_frames] if excess > 0 else motion

    @torch.no_grad()
    def texts(self, texts: list[str]) -> np.ndarray:
        """(N, C) float32 embeddings of captions."""
        return self.model.encode_text(list(texts)).float().cpu().numpy()

    def frame_encoder(self, encoder: Any = None, checkpoint: PathLike | None = None) -> Any:
        """The checked frame encoder: ``encoder`` if given, else the index's own, resolved once."""
        video = self.identity.video
        if video is None:
            raise SearchInputError("video query", f"the run {self.identity.run} is 2-modal: it has no video encoder")
        if encoder is not None:
            check_frame_encoder(encoder, video)
            return encoder.to(self.device)
        if self._frame_encoder is None:
            self._frame_encoder = resolve_frame_encoder(video, checkpoint, str(self.device))
        return self._frame_encoder

    @torch.no_grad()
    def video(self, frames: torch.Tensor, encoder: Any) -> np.ndarray:
        """(1, C) float32 embedding of (T, 3, H, W) uint8 frames, preprocessed as the cache's clean view."""
        from torchvision import tv_tensors

        from lavimo.video.augment import AugmentConfig, clean_transform

        video = self.identity.video
        view = clean_transform(AugmentConfig(crop_size=video.crop_size), video.input_size)(tv_tensors.Video(frames))
        features = encoder(view.as_subclass(torch.Tensor)).to(getattr(torch, video.feature_dtype)).float()
        return self.model.encode_video(features[None].to(self.device)).float().cpu().numpy()
