"""Preview strips of indexed clips and contact sheets of search results (numpy + Pillow; no bpy, no matplotlib).

A preview is one PNG strip of :data:`PREVIEW_FRAMES` square tiles of :data:`TILE` pixels side by side, in time
order: the clip's rendered frames (``{dataset}/frames/{clip_id}/00.png ..``) where they exist, otherwise a stick
figure of its joints seen from the front, drawn at index time. A page animates a strip as a sprite (show one
tile at a time, stepping through them); a contact sheet shows it whole.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from lavimo.frame_sampling import uniform_frame_indices
from lavimo.io import atomic_path
from lavimo.layout import FRAME_GLOB, clip_frames_dir
from lavimo.motion.skeleton import T2M_KINEMATIC_CHAINS

PREVIEW_FRAMES = 8
TILE = 96
BACKGROUND = (236, 238, 242)
CHAIN_COLOURS = (
    (200, 60, 50),
    (40, 90, 200),
    (40, 40, 40),
    (30, 150, 80),
    (230, 140, 20),
)  # r leg, l leg, spine, r/l arm
SHEET_LABEL = 18
VIEW_YAW_DEG = 35.0  # the stick figure's camera, off the body's facing direction
SHEET_PAD = 6


def strip(images: Sequence[Image.Image], tile: int = TILE) -> Image.Image:
    """``images`` fitted into ``tile`` x ``tile`` squares, side by side."""
    out = Image.new("RGB", (tile * len(images), tile), BACKGROUND)
    for k, image in enumerate(images):
        image = image.convert("RGB")
        image.thumbnail((tile, tile), Image.Resampling.LANCZOS)
        out.paste(image, (k * tile + (tile - image.width) // 2, (tile - image.height) // 2))
    return out


def rendered_frames(frames_dir: Path | None, clip_id: str, count: int = PREVIEW_FRAMES) -> list[Path]:
    """Up to ``count`` of a clip's rendered frames, uniformly spread ([] when it was not rendered)."""
    if frames_dir is None:
        return []
    folder = clip_frames_dir(frames_dir, clip_id)
    files = sorted(folder.glob(FRAME_GLOB)) if folder.is_dir() else []
    if len(files) <= count:
        return files
    return [files[i] for i in uniform_frame_indices(len(files), count)]


def skeleton_frames(joints: np.ndarray, count: int = PREVIEW_FRAMES, tile: int = TILE) -> list[Image.Image]:
    """``count`` poses of (T, 22, 3) joints (metres, Y up, facing +Z) as stick figures seen from the front-left
    (:data:`VIEW_YAW_DEG` off the facing direction, so that bends and steps show), one scale for the clip."""
    yaw = np.deg2rad(VIEW_YAW_DEG)
    poses = joints[uniform_frame_indices(len(joints), count)]
    across = poses[..., 0] * np.cos(yaw) + poses[..., 2] * np.sin(yaw)  # screen x
    across = across - across[:, :1]  # each pose centred on its root
    low, high = float(poses[..., 1].min()), float(poses[..., 1].max())
    scale = 0.86 * tile / max(high - low, 2 * float(np.abs(across).max()), 1e-3)
    images = []
    for xs, pose in zip(across, poses, strict=True):
        image = Image.new("RGB", (tile, tile), BACKGROUND)
        draw = ImageDraw.Draw(image)
        xy = [(tile / 2 + x * scale, tile * 0.93 - (y - low) * scale) for x, y in zip(xs, pose[:, 1], strict=True)]
        for chain, colour in zip(T2M_KINEMATIC_CHAINS, CHAIN_COLOURS, strict=True):
            draw.line([xy[j] for j in chain], fill=colour, width=max(2, tile // 40), joint="curve")
        head, radius = xy[15], tile / 28
        draw.ellipse([head[0] - radius, head[1] - radius, head[0] + radius, head[1] + radius], fill=CHAIN_COLOURS[2])
        images.append(image)
    return images


def make_preview(
    out: str | os.PathLike[str], clip_id: str, joints: np.ndarray | None, frames_dir: Path | None
) -> str | None:
    """Write a clip's preview strip to ``out`` (atomically): ``"rendered"``, ``"skeleton"``, or None if neither."""
    kind, images = "rendered", []
    for path in rendered_frames(frames_dir, clip_id):
        try:
            with Image.open(path) as image:
                images.append(image.convert("RGB"))
        except OSError:
            images = []
            break
    if not images:
        if joints is None or len(joints) == 0:
            return None
        kind, images = "skeleton", skeleton_frames(joints)
    with atomic_path(out) as tmp:
        strip(images).save(tmp, format="PNG")
    return kind


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):
        return ImageFont.load_default()


def contact_sheet(
    out: str | os.PathLike[str], title: str, rows: Sequence[tuple[str, str | None]], tile: int = TILE
) -> Path:
    """A PNG of one labelled preview strip per row (``(label, preview path or None)``) under a title line."""
    width = PREVIEW_FRAMES * tile + 2 * SHEET_PAD
    row_h = SHEET_LABEL + tile + SHEET_PAD
    sheet = Image.new("RGB", (width, SHEET_PAD + SHEET_LABEL + len(rows) * row_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = _font(13)

    def fitted(text: str) -> str:
        while len(text) > 4 and draw.textlength(text, font=font) > width - 2 * SHEET_PAD:
            text = text[:-4] + "..."
        return text

    draw.text((SHEET_PAD, SHEET_PAD), fitted(title), fill=(0, 0, 0), font=font)
    for r, (label, preview) in enumerate(rows):
        y = SHEET_PAD + SHEET_LABEL + r * row_h
        draw.text((SHEET_PAD, y + 2), fitted(label), fill=(40, 40, 40), font=font)
        try:
            with Image.open(preview) as image:  # type: ignore[arg-type]
                image = image.convert("RGB")
        except (OSError, TypeError, AttributeError):
            image = Image.new("RGB", (PREVIEW_FRAMES * tile, tile), BACKGROUND)
            ImageDraw.Draw(image).text((8, tile // 2 - 6), "no preview", fill=(90, 90, 90), font=font)
        if image.height != tile:
            image = image.resize((max(1, round(image.width * tile / image.height)), tile), Image.Resampling.LANCZOS)
        sheet.paste(image, (SHEET_PAD, y + SHEET_LABEL))
    with atomic_path(out) as tmp:
        sheet.save(tmp, format="PNG")
    return Path(out)
