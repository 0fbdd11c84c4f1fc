"""Render one clip: retarget onto its avatar, follow it with the camera, write sampled frames (+ optional mp4).

Output of a clip (the frames layout of :mod:`lavimo.layout`): ``{frames_dir}/{clip_id}/00.png .. {n-1}.png`` and
``meta.json`` (written in a temporary folder renamed into place, so the folder exists only when complete) and, with
``video``, the H.264 ``{renders_dir}/{clip_id}.mp4`` at the clip's fps (written before the frame folder).
``meta.json`` keeps the clip's :class:`RenderSignature`: a clip counts as done only when it was rendered from the
same joints, avatar file and settings, so a rerun with other settings renders it again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from lavimo import __version__
from lavimo.avatars.body import Avatar
from lavimo.avatars.build import load_avatar
from lavimo.avatars.retarget import retarget
from lavimo.avatars.simplify import simplify_avatar
from lavimo.avatars.skinning import skin
from lavimo.frame_sampling import uniform_frame_indices
from lavimo.io import LavimoInputError, save_json
from lavimo.layout import FRAME_META, clip_frames_dir, frame_file
from lavimo.motion.skeleton import NUM_JOINTS
from lavimo.render import floor
from lavimo.render.check import MIN_BODY_SHARE, body_share
from lavimo.render.floor import GridLayout
from lavimo.render.framing import CameraPath, CameraRig, camera_path
from lavimo.render.png import encode_png
from lavimo.render.scene import Studio, StudioSettings
from lavimo.render.video import VideoWriter

MODES = ("frames", "video")
SKIN_CHUNK = 32  # frames skinned at once in video mode
LOOKAHEAD = 3  # frames prepared (contact shadow) and finished (FXAA, PNG) ahead in the helper thread

T = TypeVar("T")
R = TypeVar("R")


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
    signature: str | None = None  # RenderSignature of the clip, recorded in its meta.json


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


class RenderSignature:
    """Digest of everything a clip's frames depend on: its joints, fps and avatar file, the studio settings and
    the clip options (not the thread count, which changes nothing in the pictures), and lavimo's version."""

    def __init__(self, settings: StudioSettings, options: ClipOptions, avatars_dir: str | os.PathLike[str]) -> None:
        studio = {k: v for k, v in dataclasses.asdict(settings).items() if k not in ("threads", "force_engine")}
        self._base = json.dumps(
            {"settings": studio, "options": dataclasses.asdict(options), "lavimo": __version__}, sort_keys=True
        )
        self._avatars_dir = Path(avatars_dir)
        self._avatar_digests: dict[int, str] = {}

    def avatar_digest(self, index: int) -> str:
        """SHA-1 of avatar file ``index`` (read once); "missing" when there is no such file."""
        if index not in self._avatar_digests:
            path = self._avatars_dir / f"{index:02d}.npz"
            self._avatar_digests[index] = _sha1(path.read_bytes()) if path.exists() else "missing"
        return self._avatar_digests[index]

    def __call__(self, avatar: int, fps: float, joints: np.ndarray) -> str:
        """The signature of a clip."""
        motion = _sha1(np.ascontiguousarray(joints, dtype=np.float32).tobytes())
        clip = json.dumps({"avatar": self.avatar_digest(avatar), "fps": float(fps), "joints": motion})
        return _sha1((self._base + clip).encode())[:20]


class AvatarBank:
    """Avatars of one folder ``{00..12}.npz``, each loaded once (simplified to the studio's ``mesh_detail``)
    and added to the studio on first use.

    ``data`` (numpy only) may be called from another thread; ``get`` (adds the mesh to Blender) may not.
    """

    def __init__(self, avatars_dir: str | os.PathLike[str], studio: Studio) -> None:
        self.dir = Path(avatars_dir)
        self.studio = studio
        self._loaded: dict[int, Avatar] = {}
        self._lock = threading.Lock()
        if not self.dir.is_dir():
            raise LavimoInputError(self.dir, "avatar folder does not exist: run `lavimo avatars build` first")

    def count(self) -> int:
        """How many avatar files the folder holds."""
        return len(sorted(self.dir.glob("[0-9][0-9].npz")))

    def data(self, index: int) -> Avatar:
        """Avatar ``index``, loaded once (not added to the studio)."""
        with self._lock:
            if index not in self._loaded:
                path = self.dir / f"{index:02d}.npz"
                if not path.exists():
                    raise LavimoInputError(path, "avatar file missing")
                self._loaded[index] = simplify_avatar(load_avatar(path), self.studio.settings.mesh_detail)
            return self._loaded[index]

    def get(self, index: int) -> Avatar:
        """Avatar ``index``, loaded once and added to the studio."""
        avatar = self.data(index)
        self.studio.add_avatar(index, avatar)  # once: a no-op when it is there already
        return avatar


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


def video_path(renders_dir: str | os.PathLike[str], clip_id: str) -> Path:
    """Path of a clip's mp4."""
    return Path(renders_dir) / f"{clip_id}.mp4"


def is_done(
    frames_dir: str | os.PathLike[str],
    clip_id: str,
    renders_dir: str | os.PathLike[str] | None,
    signature: str | None = None,
) -> bool:
    """Whether the clip's frames (and its mp4 when ``renders_dir`` is given) are complete and, when a
    ``signature`` is given, rendered with it."""
    meta = clip_frames_dir(frames_dir, clip_id) / FRAME_META
    if not meta.exists():
        return False
    if signature is not None:
        try:
            if json.loads(meta.read_text()).get("signature") != signature:
                return False
        except (OSError, ValueError):  # unreadable: render it again
            return False
    return renders_dir is None or video_path(renders_dir, clip_id).exists()


def _skinned(avatar: Avatar, posed: Any, frames: np.ndarray) -> Iterator[np.ndarray]:
    """Skinned vertices of ``frames``, one (V, 3) array at a time, computed in chunks (long clips fit in memory)."""
    for start in range(0, len(frames), SKIN_CHUNK):
        yield from skin(avatar, posed, frames[start : start + SKIN_CHUNK])


def ahead(pool: Executor | None, fn: Callable[[T], R], items: Iterable[T], depth: int = LOOKAHEAD) -> Iterator[R]:
    """``fn(item)`` for each item, in order; with a ``pool``, run there up to ``depth`` items ahead of the consumer.

    The numpy work of a frame (its contact shadow before, FXAA and PNG encoding after) thus overlaps Blender
    rendering the next one. ``fn`` must not touch bpy.
    """
    if pool is None:
        yield from map(fn, items)
        return
    pending: deque = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) > depth:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _render_frames(
    studio: Studio,
    avatar_key: int,
    vertices: Iterable[np.ndarray],
    camera: CameraPath,
    frames: np.ndarray,
    pool: Executor | None = None,
    shadows: Sequence[floor.ShadowPatch] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame index, raw image) for each of ``frames``; ``vertices`` are their skinned meshes, in order.

    ``shadows``: their contact shadows, when computed already (else computed here, ahead, on ``pool``).
    """
    studio.show(avatar_key)
    prepared: Iterable[tuple[np.ndarray, floor.ShadowPatch | None]]
    if shadows is not None:
        prepared = zip(vertices, shadows, strict=True)
    elif not studio.draws_shadow:
        prepared = ((v, None) for v in vertices)
    else:
        shadow = studio.shadow_maker()
        prepared = ahead(pool, lambda v: (v, shadow(v)), vertices)
    for frame, (posed_vertices, patch) in zip(frames, prepared, strict=True):
        studio.pose(posed_vertices, patch)
        studio.aim(camera.locations[frame], camera.targets[frame], camera.fov_deg)
        yield int(frame), studio.render_raw()


@dataclass(frozen=True)
class ClipPlan:
    """Everything about a clip that is computed before Blender renders it (numpy only)."""

    job: ClipJob
    posed: Any  # lavimo.avatars.retarget.Posed
    indices: np.ndarray  # sampled frame indices (num_frames, possibly repeated)
    frames: np.ndarray  # frames to render, increasing
    sampled_vertices: np.ndarray  # (len(unique(indices)), V, 3) skinned meshes of the sampled frames
    camera: CameraPath
    layout: GridLayout  # where the floor grid lies
    grid: np.ndarray | None = None  # its texture, when computed ahead
    shadows: tuple[floor.ShadowPatch, ...] | None = None  # contact shadows of the sampled frames, when asked for


def plan_clip(
    job: ClipJob,
    avatar: Avatar,
    options: ClipOptions,
    grid_needed: Callable[[GridLayout], bool] | None = None,
    shadows: bool = False,
) -> ClipPlan:
    """Retarget, choose frames, skin the sampled ones, place the camera and the floor grid.

    numpy only: a batch plans the next clip in a helper thread while Blender renders this one. The grid
    texture is computed too when ``grid_needed(layout)`` says so (the studio does not hold it yet), and with
    ``shadows`` the contact shadows of the sampled frames.
    """
    joints = check_joints(job.joints)
    posed = retarget(avatar, joints)
    if not np.isfinite(posed.joints).all():
        raise ValueError("retargeting produced non-finite joints")
    indices = uniform_frame_indices(len(joints), options.num_frames)
    sampled = np.unique(indices)
    frames = np.arange(len(joints)) if options.every_frame else sampled
    vertices = skin(avatar, posed, sampled)
    camera = camera_path(posed.joints, job.fps, avatar.height, options.rig, vertices, sampled)
    layout = floor.grid_layout(camera.targets[:, [0, 2]])
    grid = floor.grid_texture(layout) if grid_needed is not None and grid_needed(layout) else None
    patches = tuple(floor.body_shadow(layout, v) for v in vertices) if shadows else None
    return ClipPlan(job, posed, indices, frames, vertices, camera, layout, grid, patches)


@dataclass(frozen=True)
class Frame:
    """One finished frame: the image and, when asked for, its PNG bytes and the share of its pixels that are body."""

    image: np.ndarray
    png: bytes | None = None
    body: float | None = None


class NoBodyError(ValueError):
    """Rendered frames of a clip show no body (see :mod:`lavimo.render.check`)."""


def missing_body(rendered: dict[int, float], min_share: float = MIN_BODY_SHARE) -> list[int]:
    """Frame indices among ``rendered`` (frame -> body share) whose body share is below ``min_share``."""
    return sorted(frame for frame, share in rendered.items() if share < min_share)


def clip_frames(
    studio: Studio,
    bank: AvatarBank,
    job: ClipJob,
    options: ClipOptions,
    writer: VideoWriter | None = None,
    pool: Executor | None = None,
    encode: bool = False,
    plan: ClipPlan | None = None,
    check_body: bool = False,
) -> tuple[np.ndarray, list[Frame], CameraPath]:
    """Render ``job``: (sampled indices, their frames in that order, camera); every frame goes to ``writer``.

    ``encode``: also PNG-encode the sampled frames. ``pool``: a one-thread executor for the per-frame numpy
    work. ``plan``: the clip's :func:`plan_clip`, when computed ahead. ``check_body``: raise :class:`NoBodyError`
    when any rendered frame (every frame in video mode) shows no body.
    """
    avatar = bank.get(job.avatar)
    plan = plan if plan is not None else plan_clip(job, avatar, options)
    studio.lay_grid(plan.layout, plan.grid)
    camera = plan.camera
    vertices = _skinned(avatar, plan.posed, plan.frames) if options.every_frame else plan.sampled_vertices
    wanted = set(plan.indices.tolist())

    def finish(item: tuple[int, np.ndarray]) -> tuple[int, Frame]:
        frame, raw = item
        image = studio.finish(raw)
        body = body_share(image) if check_body else None
        return frame, Frame(image, encode_png(image) if encode and frame in wanted else None, body)

    shadows = None if options.every_frame else plan.shadows  # they cover the sampled frames only
    rendered = _render_frames(studio, job.avatar, vertices, camera, plan.frames, pool, shadows)
    depth = LOOKAHEAD if options.every_frame else len(plan.frames)  # frames mode: never wait before the last
    kept: dict[int, Frame] = {}
    shares: dict[int, float] = {}
    for frame, done in ahead(pool, finish, rendered, depth):
        if writer is not None:
            writer.append(done.image)
        if frame in wanted:
            kept[frame] = done
        if done.body is not None:
            shares[frame] = done.body
    empty = missing_body(shares)
    if empty:
        shown = ", ".join(map(str, empty[:10])) + (", ..." if len(empty) > 10 else "")
        raise NoBodyError(
            f"no body pixels in {len(empty)} of {len(shares)} rendered frames (motion frames {shown}; "
            f"body share {min(shares[f] for f in empty):.4f} < {MIN_BODY_SHARE})"
        )
    return plan.indices, [kept[int(frame)] for frame in plan.indices], camera


def clip_images(
    studio: Studio, bank: AvatarBank, job: ClipJob, options: ClipOptions, writer: VideoWriter | None = None
) -> tuple[np.ndarray, list[np.ndarray], CameraPath]:
    """Render ``job``: (sampled indices, their images in that order, camera); every frame goes to ``writer``."""
    indices, frames, camera = clip_frames(studio, bank, job, options, writer)
    return indices, [f.image for f in frames], camera


def render_clip(
    studio: Studio,
    bank: AvatarBank,
    job: ClipJob,
    frames_dir: str | os.PathLike[str],
    renders_dir: str | os.PathLike[str] | None,
    options: ClipOptions,
    pool: Executor | None = None,
    plan: ClipPlan | None = None,
) -> dict[str, Any]:
    """Render ``job`` and write its frames (and mp4 if ``options.video``); returns the meta written.

    ``pool``: a one-thread executor that does each frame's numpy work while Blender renders the next.
    ``plan``: the clip's :func:`plan_clip`, when computed ahead.
    """
    start = time.perf_counter()
    final = clip_frames_dir(frames_dir, job.clip_id)
    tmp = final.parent / f".{job.clip_id}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        writer = VideoWriter(video_path(renders_dir, job.clip_id), job.fps) if options.video and renders_dir else None
        with writer if writer else contextlib.nullcontext():
            indices, frames, camera = clip_frames(
                studio, bank, job, options, writer, pool, encode=True, plan=plan, check_body=True
            )
        for k, frame in enumerate(frames):
            (tmp / frame_file(k)).write_bytes(frame.png)
        meta = _meta(job, bank.get(job.avatar), studio, options, indices, camera, time.perf_counter() - start)
        meta["video"] = str(video_path(renders_dir, job.clip_id)) if writer else None
        meta["body_share_min"] = round(min(f.body for f in frames if f.body is not None), 4)
        save_json(tmp / FRAME_META, meta)
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
        "avatar_triangles": len(avatar.faces),
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
        "signature": job.signature,
        "seconds": round(seconds, 3),
    }
