"""Clip-consistent frame augmentation (torchvision.transforms.v2).

One *view* of a clip is its T frames pushed through one draw of the random transform: the frames are
wrapped as a ``tv_tensors.Video`` so every random parameter (crop box, jitter factors, flip, RandAugment
ops...) is drawn once per view and shared by all frames. Each view is seeded from (seed, clip id, view),
so a cache rebuild reproduces the same views whatever the worker scheduling.

Training views follow the paper (section 4): random resize then a 256x256 crop, colour jitter, random
grayscale, Gaussian blur, horizontal flip, RandAugment. The flip of a view is drawn from its own hash of (seed,
clip id, view) (:func:`view_flipped`), not from the transform's random stream, so training can tell which views
show the mirrored motion (``hflip_pairing: mirror`` pairs them with the mirrored clip's motion and caption). It is
applied after the other ops: they are symmetric under a flip (RandAugment's shear, translation and rotation take
either sign), so the distribution of views is the same. The clean view (val/test) is the whole frame
resized to 256x256. The encoder's own resize (256 -> e.g. 224) comes right after the crop, before the
photometric ops: they commute with a resize up to interpolation, and run ~1.3x faster on the smaller
frames. Normalisation happens on the model's device (:class:`lavimo.video.encoders.FrameEncoder`).
The Gaussian blur truncates its kernel at 3 sigma (at most ``blur_kernel``): the same output as
torchvision's fixed 23-tap kernel to within 1 grey level, 3-8x faster on a CPU.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F  # noqa: N812
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode, v2

from lavimo.video.draws import HFLIP_DRAW, view_flipped, view_seed


@dataclass(frozen=True)
class AugmentConfig:
    """Parameters of the training-view augmentation (all recorded in the cache meta)."""

    crop_size: int = 256
    resize_min: int = 256  # shorter side drawn uniformly in [resize_min, resize_max] before the crop
    resize_max: int = 320
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    grayscale_p: float = 0.2
    blur_p: float = 0.5
    blur_kernel: int = 23
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    hflip_p: float = 0.5
    hflip_draw: str = HFLIP_DRAW  # how a view's flip is decided (recorded: views of another draw are other views)
    randaugment_ops: int = 2
    randaugment_magnitude: int = 9

    def to_dict(self) -> dict:
        """Plain JSON-able dict."""
        return dataclasses.asdict(self)


def gaussian_blur_fast(frames: torch.Tensor, sigma: float, max_kernel: int) -> torch.Tensor:
    """Separable Gaussian blur of (...,C,H,W) uint8 with reflection padding, kernel truncated at 3 sigma."""
    radius = max(1, min(math.ceil(3 * sigma), max_kernel // 2, min(frames.shape[-2:]) - 1))
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32, device=frames.device)
    weights = torch.exp(-0.5 * (taps / sigma) ** 2)
    weights = (weights / weights.sum()).tolist()
    height, width = frames.shape[-2:]
    padded = F.pad(frames.reshape(-1, 1, height, width).float(), (radius,) * 4, mode="reflect")
    rows = padded[..., :, :width] * weights[0]
    for i, w in enumerate(weights[1:], start=1):
        rows.add_(padded[..., :, i : i + width], alpha=w)
    out = rows[..., :height, :] * weights[0]
    for i, w in enumerate(weights[1:], start=1):
        out.add_(rows[..., i : i + height, :], alpha=w)
    return out.round_().clamp_(0, 255).to(frames.dtype).reshape(frames.shape)


class FastGaussianBlur(v2.GaussianBlur):
    """``v2.GaussianBlur`` (one sigma per call) with :func:`gaussian_blur_fast` for uint8 images and videos."""

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, torch.Tensor) and inpt.dtype == torch.uint8:
            out = gaussian_blur_fast(inpt.as_subclass(torch.Tensor), params["sigma"][0], self.kernel_size[0])
            return tv_tensors.wrap(out, like=inpt) if isinstance(inpt, tv_tensors.TVTensor) else out
        return super().transform(inpt, params)


def train_transform(cfg: AugmentConfig, out_size: int) -> v2.Transform:
    """The random training-view transform; frames come out at the encoder's ``out_size``."""
    return v2.Compose(
        [
            v2.RandomResize(cfg.resize_min, cfg.resize_max + 1, antialias=True),
            v2.RandomCrop(cfg.crop_size),
            v2.Resize(out_size, interpolation=InterpolationMode.BICUBIC, antialias=True),
            v2.RandomApply([v2.ColorJitter(cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue)], p=cfg.jitter_p),
            v2.RandomGrayscale(p=cfg.grayscale_p),
            v2.RandomApply([FastGaussianBlur(cfg.blur_kernel, cfg.blur_sigma)], p=cfg.blur_p),
            # p = 0: never flips here (view_flipped decides), but keeps its draw, so the random stream of the ops
            # after it is the one of caches built before the flip had a draw of its own
            v2.RandomHorizontalFlip(p=0.0),
            v2.RandAugment(num_ops=cfg.randaugment_ops, magnitude=cfg.randaugment_magnitude),
        ]
    )


def clean_transform(cfg: AugmentConfig, out_size: int) -> v2.Transform:
    """The deterministic view: whole frame to ``crop_size`` (centre crop if not square), then the encoder resize."""
    return v2.Compose(
        [
            v2.Resize(cfg.crop_size, antialias=True),
            v2.CenterCrop(cfg.crop_size),
            v2.Resize(out_size, interpolation=InterpolationMode.BICUBIC, antialias=True),
        ]
    )


def augment_view(frames: torch.Tensor, transform: v2.Transform, seed: int, flip: bool = False) -> torch.Tensor:
    """One view of ``frames`` (T,3,H,W) uint8: the same random draw for all T frames, seeded, global RNG untouched;
    then flipped left-right if ``flip``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out = transform(tv_tensors.Video(frames))
    out = out.as_subclass(torch.Tensor)
    return out.flip(-1) if flip else out


def make_views(
    frames: torch.Tensor,
    clip_id: str,
    n_views: int,
    cfg: AugmentConfig,
    out_size: int,
    seed: int,
    train: bool,
) -> torch.Tensor:
    """Views of one clip, (V,T,3,out,out) uint8: ``n_views`` augmented views if ``train``, else one clean view."""
    if not train:
        return clean_transform(cfg, out_size)(tv_tensors.Video(frames)).as_subclass(torch.Tensor)[None]
    transform = train_transform(cfg, out_size)
    return torch.stack(
        [
            augment_view(frames, transform, view_seed(seed, clip_id, v), view_flipped(seed, clip_id, v, cfg.hflip_p))
            for v in range(n_views)
        ]
    )
