"""`lavimo bench flip`: how much a left-right flip changes the frame features of the current feature cache's encoder.

Over up to ``--limit`` (default 10) rendered demo clips that have a mirror (``M`` clip), the clean view's per-frame
features against: the same view flipped left-right, the mirror clip's own rendered view, and another clip's view
(cosine, averaged over the 8 frames). An encoder that barely sees a flip cannot tell a flipped view of X from X's
own, which is what the training setting ``hflip_pairing: mirror`` asks it to (README, "Flipped views").
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lavimo.bench.common import load_config
from lavimo.io import LavimoInputError
from lavimo.layout import MIRROR_PREFIX


def bench_flip(args: argparse.Namespace) -> int:
    """Print the three mean/least cosines."""
    import torch
    from torchvision import tv_tensors

    from lavimo.video.augment import AugmentConfig, clean_transform
    from lavimo.video.encoders import load_frame_encoder
    from lavimo.video.frames import load_clip_frames

    config = load_config(args.config)
    frames_dir = Path(config["results_dir"]) / "demo" / "frames"
    if not frames_dir.is_dir():
        raise LavimoInputError(frames_dir, "no rendered demo frames: run `snakemake render_all` first")
    sources = sorted(
        p.name
        for p in frames_dir.iterdir()
        if p.is_dir() and not p.name.startswith(MIRROR_PREFIX) and (frames_dir / f"{MIRROR_PREFIX}{p.name}").is_dir()
    )
    clips = sources[:: max(1, len(sources) // (args.limit or 10))][: args.limit or 10]
    if len(clips) < 2:
        raise LavimoInputError(frames_dir, "fewer than 2 rendered clips with a mirror")
    encoder = load_frame_encoder(config["features"]["encoder"], config["features"]["checkpoint"])
    size = encoder.preprocessing.input_size

    def features(clip: str, flip: bool = False) -> np.ndarray:
        frames, _ = load_clip_frames(frames_dir / clip)
        view = clean_transform(AugmentConfig(), size)(tv_tensors.Video(frames)).as_subclass(torch.Tensor)
        with torch.no_grad():
            out = encoder(view.flip(-1) if flip else view).numpy()
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    cosines: dict[str, list[float]] = {"its own flip": [], "the mirror clip": [], "another clip": []}
    for i, clip in enumerate(clips):
        view = features(clip)
        for name, other in (
            ("its own flip", features(clip, flip=True)),
            ("the mirror clip", features(MIRROR_PREFIX + clip)),
            ("another clip", features(clips[(i + 1) % len(clips)])),
        ):
            cosines[name].append(float((view * other).sum(axis=1).mean()))
    print(f"encoder {encoder.name}, {len(clips)} demo clips, cosine of a clean view's per-frame features with:")
    for name, values in cosines.items():
        print(f"  {name:16s} mean {np.mean(values):.3f}  least {np.min(values):.3f}")
    return 0
