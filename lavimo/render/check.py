"""Is the body in the frame? A colour key on rendered frames, and an audit of a folder of rendered clips (numpy only).

Everything in the studio but the body is neutral grey: the background, the floor, its grid lines and the contact
shadow (R, G and B within 5 levels of each other, no darker than level 70 on the demo's 512x512 frames). Every
avatar has chromatic skin and clothes (or black ones), so a pixel counts as *body* when its channels spread at
least ``CHROMA_MIN`` levels apart or its brightest channel is at most ``DARK_MAX``. A whole body covers thousands
of such pixels (8,400 or more of about 16,000 silhouette pixels on the demo clips, all 13 avatars); an empty
studio none. Only every ``STRIDE``-th row and column is looked at, which keeps the check well under a millisecond.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lavimo.layout import FRAME_GLOB, FRAME_META

CHROMA_MIN = 16  # max - min of R, G, B (8-bit sRGB) at or above which a pixel is coloured (the studio's: <= 5)
DARK_MAX = 48  # brightest channel at or below which a pixel is dark (the studio's darkest: about 70)
MIN_BODY_SHARE = 0.005  # share of the frame's pixels that must be body (a whole body: 3% or more at 512x512)
STRIDE = 2  # rows and columns sampled


def body_mask(image: np.ndarray, stride: int = STRIDE) -> np.ndarray:
    """(H/stride, W/stride) bool: which sampled pixels of an (H, W, 3+) uint8 sRGB frame are body, by colour key."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] < 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    r, g, b = (image[::stride, ::stride, c] for c in range(3))
    high = np.maximum(np.maximum(r, g), b)
    low = np.minimum(np.minimum(r, g), b)
    return (high - low >= CHROMA_MIN) | (high <= DARK_MAX)


def body_share(image: np.ndarray, stride: int = STRIDE) -> float:
    """Share of the frame's (sampled) pixels that are body."""
    return float(body_mask(image, stride).mean())


def has_body(image: np.ndarray, min_share: float = MIN_BODY_SHARE) -> bool:
    """Whether the frame shows the body (at least ``min_share`` of its pixels)."""
    return body_share(image) >= min_share


@dataclass
class FrameAudit:
    """What an audit of rendered clips found."""

    clips: int = 0
    frames: int = 0
    without_body: list[str] = field(default_factory=list)  # "clip/NN.png"
    wrong_size: list[str] = field(default_factory=list)
    blank: list[str] = field(default_factory=list)  # one flat colour
    unreadable: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)  # clips with fewer frames than their meta says
    bad_meta: list[str] = field(default_factory=list)  # "clip: problem" of clips whose meta.json is unreadable

    @property
    def clips_without_body(self) -> list[str]:
        """Clips with at least one frame without body pixels."""
        return sorted({name.split("/")[0] for name in self.without_body})

    @property
    def ok(self) -> bool:
        """Whether every frame is readable, of the right size, not blank and shows the body."""
        problems = (self.without_body, self.wrong_size, self.blank, self.unreadable, self.incomplete, self.bad_meta)
        return not any(problems)

    def summary(self) -> dict:
        """JSON-able counts and the offending items."""
        return {"ok": self.ok, "clips_without_body": self.clips_without_body, **asdict(self)}


def rendered_clips(frames_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """Folders of finished clips under ``frames_dir`` (those with a meta.json, shard folders included)."""
    for meta in sorted(Path(frames_dir).rglob(FRAME_META)):
        if not any(part.startswith(".") for part in meta.parent.relative_to(frames_dir).parts):
            yield meta.parent


def expected_frames(meta_path: Path) -> int:
    """How many sampled frames a clip's meta.json lists; ValueError saying why when it cannot be read."""
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"unreadable {meta_path.name} ({type(error).__name__})") from error
    except ValueError as error:
        raise ValueError(f"{meta_path.name} is not JSON") from error
    indices = meta.get("indices", []) if isinstance(meta, dict) else None
    if not isinstance(indices, list):
        raise ValueError(f"{meta_path.name} lacks its frame 'indices' list")
    return len(indices)


def audit_frames(frames_dir: str | os.PathLike[str], resolution: int = 512) -> FrameAudit:
    """Check every sampled frame of every finished clip under ``frames_dir``: readable, ``resolution`` square RGB,
    not one flat colour, and showing the body."""
    import imageio.v3 as iio

    audit = FrameAudit()
    for clip in rendered_clips(frames_dir):
        audit.clips += 1
        pngs = sorted(clip.glob(FRAME_GLOB))
        try:
            expected = expected_frames(clip / FRAME_META)
        except ValueError as error:  # one garbage meta.json is one clip's problem: the others are audited
            audit.bad_meta.append(f"{clip.name}: {error}")
        else:
            if len(pngs) < expected:
                audit.incomplete.append(clip.name)
        for png in pngs:
            name = f"{clip.name}/{png.name}"
            audit.frames += 1
            try:
                image = iio.imread(png)
            except (OSError, ValueError):
                audit.unreadable.append(name)
                continue
            if image.ndim != 3 or image.shape[:2] != (resolution, resolution) or image.shape[2] < 3:
                audit.wrong_size.append(name)
                continue
            if image.dtype != np.uint8 or image.min() == image.max():
                audit.blank.append(name)
                continue
            if not has_body(image):
                audit.without_body.append(name)
    return audit
