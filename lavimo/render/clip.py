"""Render one clip: retarget onto its avatar, follow it with the camera, write sampled frames (+ optional mp4).

Output of a clip: ``{frames_dir}/{clip_id}/00.png .. {n-1}.png`` and ``meta.json`` (written in a temporary
folder renamed into place, so the folder exists only when complete) and, with ``video``, the H.264
``{renders_dir}/{clip_id}.mp4`` at the clip's fps (written before the frame folder).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np

from lavimo import __version__
from lavimo.avatars.build import Avatar, load_avatar
from lavimo.avatars.retarget import retarget
from lavimo.avatars.skinning import skin
from lavimo.io import LavimoInputError, save_json
from lavimo.motion.skeleton import NUM_JOINTS
from lavimo.render.framing import CameraPath, CameraRig, camera_path, sample_frame_indices
from lavimo.render.scene import Studio
from lavimo.render.video import VideoWriter

MODES = ("frames", "video")
SKIN_CHUNK = 32  # frames skinned at once in video mode
PNG_COMPRESSION = 3  # zlib level: 3x faster than the default 6 for files 15% larger
META = "meta.json"


@dataclass(frozen=True)
class ClipOptions:
    """What to write per clip."""

    num_frames: int = 8
    mode: str = "frames"  # frames: render only the sampled frames | video: every frame, then sample
    video: bool = False  # also write an mp4 (every frame is then rendered, whatever the mode)
    rig: CameraRig = field(default_factory=CameraRig)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be at least 1, got {self.num_frames}")

    @property
    def every_frame(self) -> bool:
        """Whether every frame of the clip is rendered."""
        return self.mode == "video" or self.video


@dataclass(frozen=True)
class ClipJob:
    """One clip to render."""

    clip_id: str
    avatar: int
    fps: float
    joints: np.ndarray  # (T, 22, 3) canonical joints, metres, Y up


class AvatarBank:
    """Avatars of one folder ``{00..12}.npz``, each loaded and added to the studio on first use."""

    def __init__(self, avatars_dir: str | os.PathLike[str], studio: Studio) -> None:
        self.dir = Path(avatars_dir)
        self.studio = studio
        self._loaded: dict[int, Avatar] = {}
        if not self.dir.is_dir():
            raise LavimoInputError(self.dir, "avatar folder does not exist: run `lavimo avatars build` first")

    def count(self) -> int:
        """How many avatar files the folder holds."""
        return len(sorted(self.dir.glob("[0-9][0-9].npz")))

    def get(self, index: int) -> Avatar:
        """Avatar ``index``, loaded once and added to the studio."""
        if index not in self._loaded:
            path = self.dir / f"{index:02d}.npz"
            if not path.exists():
                raise LavimoInputError(path, "avatar file missing")
            self._loaded[index] = load_avatar(path)
            self.studio.add_avatar(index, self._loaded[index])
        return self._loaded[index]


def check_joints(joints: np.ndarray) -> np.ndarray:
    """The joints as float64 (T, 22, 3); ValueError naming the problem otherwise."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"joints must have shape (T, {NUM_JOINTS}, 3), got {joints.shape}")
    if len(joints) < 1:
        raise ValueError("clip has no frames")
    bad = ~np.isfinite(joints).all(axis=(1, 2))
    if bad.any():
        raise ValueError(f"joints are not finite (NaN/inf) in {int(bad.sum())} of {len(joints)} frames")
    return joints


def clip_dir(frames_dir: str | os.PathLike[str], clip_id: str) -> Path:
    """Folder of a clip's frames."""
    return Path(frames_dir) / clip_id


def video_path(renders_dir: str | os.PathLike[str], clip_id: str) -> Path:
    """Path of a clip's mp4."""
    return Path(renders_dir) / f"{clip_id}.mp4"


def is_done(frames_dir: str | os.PathLike[str], clip_id: str, renders_dir: str | os.PathLike[str] | None) -> bool:
    """Whether the clip's frames (and its mp4 when ``renders_dir`` is given) are complete."""
    if not (clip_dir(frames_dir, clip_id) / META).exists():
        return False
    return renders_dir is None or video_path(renders_dir, clip_id).exists()


def _skinned(avatar: Avatar, posed: Any, frames: np.ndarray) -> Iterator[np.ndarray]:
    """Skinned vertices of ``frames``, one (V, 3) array at a time, computed in chunks (long clips fit in memory)."""
    for start in range(0, len(frames), SKIN_CHUNK):
        yield from skin(avatar, posed, frames[start : start + SKIN_CHUNK])


def _render_frames(
    studio: Studio, avatar_key: int, vertices: Iterable[np.ndarray], camera: CameraPath, frames: np.ndarray
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame index, image) for each of ``frames``; ``vertices`` are their skinned meshes, in order."""
    studio.show(avatar_key)
    for frame, posed_vertices in zip(frames, vertices, strict=True):
        studio.pose(posed_vertices)
        studio.aim(camera.locations[frame], camera.targets[frame], camera.fov_deg)
        yield int(frame), studio.render()


def _plan(job: ClipJob, avatar: Avatar, options: ClipOptions) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """Retarget and choose frames: (posed, sampled indices, frames to render, skinned vertices of the sampled)."""
    joints = check_joints(job.joints)
    posed = retarget(avatar, joints)
    if not np.isfinite(posed.joints).all():
        raise ValueError("retargeting produced non-finite joints")
    indices = sample_frame_indices(len(joints), options.num_frames)
    frames = np.arange(len(joints)) if options.every_frame else np.unique(indices)
    return posed, indices, frames, skin(avatar, posed, np.unique(indices))


def clip_images(
    studio: Studio, bank: AvatarBank, job: ClipJob, options: ClipOptions, writer: VideoWriter | None = None
) -> tuple[np.ndarray, list[np.ndarray], CameraPath]:
    """Render ``job``: (sampled indices, their images in that order, camera); every frame goes to ``writer``."""
    avatar = bank.get(job.avatar)
    posed, indices, frames, sampled_vertices = _plan(job, avatar, options)
    camera = camera_path(posed.joints, job.fps, avatar.height, options.rig, sampled_vertices, np.unique(indices))
    studio.set_floor(camera.targets[:, [0, 2]])
    vertices = _skinned(avatar, posed, frames) if options.every_frame else sampled_vertices
    wanted = set(indices.tolist())
    kept: dict[int, np.ndarray] = {}
    for frame, image in _render_frames(studio, job.avatar, vertices, camera, frames):
        if writer is not None:
            writer.append(image)
        if frame in wanted:
            kept[frame] = image
    return indices, [kept[int(frame)] for frame in indices], camera


def render_clip(
    studio: Studio,
    bank: AvatarBank,
    job: ClipJob,
    frames_dir: str | os.PathLike[str],
    renders_dir: str | os.PathLike[str] | None,
    options: ClipOptions,
) -> dict[str, Any]:
    """Render ``job`` and write its frames (and mp4 if ``options.video``); returns the meta written."""
    start = time.perf_counter()
    final = clip_dir(frames_dir, job.clip_id)
    tmp = final.parent / f".{job.clip_id}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        writer = VideoWriter(video_path(renders_dir, job.clip_id), job.fps) if options.video and renders_dir else None
        with writer if writer else contextlib.nullcontext():
            indices, images, camera = clip_images(studio, bank, job, options, writer)
        for k, image in enumerate(images):
            iio.imwrite(tmp / f"{k:02d}.png", image, compress_level=PNG_COMPRESSION)
        meta = _meta(job, bank.get(job.avatar), studio, options, indices, camera, time.perf_counter() - start)
        meta["video"] = str(video_path(renders_dir, job.clip_id)) if writer else None
        save_json(tmp / META, meta)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta


def _meta(
    job: ClipJob,
    avatar: Avatar,
    studio: Studio,
    options: ClipOptions,
    indices: np.ndarray,
    camera: CameraPath,
    seconds: float,
) -> dict[str, Any]:
    """What a clip's meta.json records."""
    settings = studio.settings
    return {
        "clip_id": job.clip_id,
        "indices": [int(i) for i in indices],
        "n_frames": len(job.joints),
        "fps": job.fps,
        "avatar": job.avatar,
        "avatar_name": avatar.name,
        "engine": settings.engine,
        "resolution": [settings.resolution, settings.resolution],
        "mode": "video" if options.every_frame else "frames",
        "camera": {
            "distance_m": round(camera.distance, 4),
            "azimuth_deg": options.rig.azimuth_deg,
            "elevation_deg": options.rig.elevation_deg,
            "fov_deg": options.rig.fov_deg,
        },
        "lavimo": __version__,
        "seconds": round(seconds, 3),
    }
