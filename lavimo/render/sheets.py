"""Contact sheets for the report: the 13 avatars in rest pose, one clip on every avatar, sampled frames of clips."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from lavimo.frame_sampling import uniform_frame_indices
from lavimo.io import atomic_path
from lavimo.render.clip import AvatarBank, ClipJob, ClipOptions, check_joints, clip_images
from lavimo.render.framing import CameraRig, camera_path
from lavimo.render.scene import Studio, StudioSettings

LABEL_HEIGHT = 26
PAD = 4
SHEET_BACKGROUND = (255, 255, 255)
LABEL_COLOUR = (30, 30, 30)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's bundled font at ``size`` pixels (a bitmap font when FreeType is missing)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):
        return ImageFont.load_default()


def _fitted(
    draw: ImageDraw.ImageDraw, text: str, width: int
) -> tuple[str, ImageFont.ImageFont | ImageFont.FreeTypeFont]:
    """``text`` and a font that fit in ``width`` pixels: smaller type first, then an ellipsis."""
    for size in range(LABEL_HEIGHT - 10, 9, -1):
        font = _font(size)
        if draw.textlength(text, font=font) <= width:
            return text, font
    while len(text) > 1 and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "...", font


def compose(
    images: Sequence[np.ndarray],
    labels: Sequence[str],
    columns: int,
    tile: int,
    row_titles: Sequence[str] | None = None,
) -> np.ndarray:
    """A labelled grid of ``images`` (each resized to ``tile`` x ``tile``), row-major; (H, W, 3) uint8."""
    rows = -(-len(images) // columns)
    title_h = LABEL_HEIGHT if row_titles else 0
    cell_h = tile + LABEL_HEIGHT
    row_h = title_h + cell_h + PAD
    width = columns * (tile + PAD) + PAD
    sheet = Image.new("RGB", (width, rows * row_h + PAD), SHEET_BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for r, title in enumerate(row_titles or []):
        text, font = _fitted(draw, title, width - 2 * PAD)
        draw.text((PAD + 4, PAD + r * row_h + 4), text, fill=LABEL_COLOUR, font=font)
    for k, (image, label) in enumerate(zip(images, labels, strict=True)):
        x = PAD + (k % columns) * (tile + PAD)
        y = PAD + (k // columns) * row_h + title_h
        sheet.paste(Image.fromarray(image).resize((tile, tile), Image.Resampling.LANCZOS), (x, y))
        text, font = _fitted(draw, label, tile - 6)
        draw.text((x + 3, y + tile + 4), text, fill=LABEL_COLOUR, font=font)
    return np.asarray(sheet)


@contextlib.contextmanager
def studio_with_avatars(
    avatars_dir: str | os.PathLike[str], settings: StudioSettings
) -> Iterator[tuple[Studio, AvatarBank]]:
    """A studio holding the avatars of ``avatars_dir``, closed when the block ends."""
    studio = Studio(settings)
    try:
        yield studio, AvatarBank(avatars_dir, studio)
    finally:
        studio.close()


def save_sheet(path: str | os.PathLike[str], sheet: np.ndarray) -> Path:
    """Write a sheet PNG atomically."""
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, sheet, extension=".png")
    return Path(path)


def avatar_sheet(
    avatars_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    settings: StudioSettings,
    tile: int = 256,
    columns: int = 5,
) -> Path:
    """Every avatar in rest pose, seen from one camera at one distance so that heights compare."""
    with studio_with_avatars(avatars_dir, settings) as (studio, bank):
        avatars = [bank.get(i) for i in range(bank.count())]
        if not avatars:
            raise FileNotFoundError(f"{avatars_dir}: no avatar files")
        rig = CameraRig(fill=0.8, margin_m=0.1)
        tallest = max(avatars, key=lambda a: a.height)
        reference = camera_path(tallest.rest_joints[None], 20.0, tallest.height, rig, tallest.vertices[None], [0])
        studio.set_floor(np.zeros((1, 2)))
        images, labels = [], []
        for index, avatar in enumerate(avatars):
            studio.show(index)
            studio.pose(avatar.vertices)
            studio.aim(reference.locations[0], reference.targets[0], rig.fov_deg)
            images.append(studio.render())
            labels.append(f"{index:02d} {avatar.name} ({avatar.height:.2f} m)")
    return save_sheet(out, compose(images, labels, columns, tile))


def clip_on_avatars_sheet(
    joints: np.ndarray,
    fps: float,
    avatars_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    settings: StudioSettings,
    frame: int | None = None,
    tile: int = 256,
    columns: int = 5,
) -> Path:
    """One frame of one clip (default: its middle frame) on every avatar, framed as the dataset frames are."""
    joints = check_joints(joints)
    frame = len(joints) // 2 if frame is None else int(np.clip(frame, 0, len(joints) - 1))
    with studio_with_avatars(avatars_dir, settings) as (studio, bank):
        options = ClipOptions()
        images, labels = [], []
        for index in range(bank.count()):
            single = ClipJob(f"avatar{index:02d}", index, fps, joints)
            images.append(_one_frame(studio, bank, single, options, frame))
            labels.append(f"{index:02d} {bank.get(index).name}")
    return save_sheet(out, compose(images, labels, columns, tile))


def _one_frame(studio: Studio, bank: AvatarBank, job: ClipJob, options: ClipOptions, frame: int) -> np.ndarray:
    """Render frame ``frame`` of ``job`` with the clip's follow camera."""
    from lavimo.avatars.retarget import retarget
    from lavimo.avatars.skinning import skin

    avatar = bank.get(job.avatar)
    posed = retarget(avatar, job.joints)
    indices = np.unique(uniform_frame_indices(len(job.joints), options.num_frames))
    camera = camera_path(posed.joints, job.fps, avatar.height, options.rig, skin(avatar, posed, indices), indices)
    studio.set_floor(camera.targets[:, [0, 2]])
    studio.show(job.avatar)
    studio.pose(skin(avatar, posed, [frame])[0])
    studio.aim(camera.locations[frame], camera.targets[frame], camera.fov_deg)
    return studio.render()


def clip_frames_sheet(
    jobs: Sequence[ClipJob],
    avatars_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    settings: StudioSettings,
    num_frames: int = 8,
    tile: int = 192,
) -> Path:
    """The ``num_frames`` sampled frames (columns) of each clip (rows), exactly as the dataset renders them."""
    with studio_with_avatars(avatars_dir, settings) as (studio, bank):
        images, labels, titles = [], [], []
        for job in jobs:
            indices, frames, _ = clip_images(studio, bank, job, ClipOptions(num_frames=num_frames))
            images += frames
            labels += [f"frame {int(i)}" for i in indices]
            titles.append(f"{job.clip_id}  ({bank.get(job.avatar).name}, {len(job.joints)} frames)")
    return save_sheet(out, compose(images, labels, num_frames, tile, titles))
