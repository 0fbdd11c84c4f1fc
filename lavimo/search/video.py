"""Query videos: a video file (mp4, webm, mov, gif, ...) or a folder of images -> 8 uniformly sampled RGB frames.

Files are decoded with the ffmpeg binary that ``imageio-ffmpeg`` ships (the project's video I/O; it writes the
renders' mp4s too, :mod:`lavimo.render.video`): the frames are counted first, then decoded once, keeping only
the sampled ones at full resolution (a long video never sits in memory). A folder is read as its image files
(png, jpg, jpeg, bmp, webp) in name order. The frames picked are :func:`lavimo.frame_sampling.uniform_frame_indices`,
as for the rendered training frames.

A video with fewer frames than the model samples (8) is refused: the model learnt from 8 distinct moments of
clips of at least one second, and a repeated still would be a different input.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from lavimo.frame_sampling import uniform_frame_indices
from lavimo.search.encode import SearchInputError

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".gif", ".mkv", ".avi", ".m4v", ".mpg", ".mpeg")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def _ffmpeg_problem(error: Exception) -> str:
    """The last line of an ffmpeg failure (its banner and configuration come first)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def _too_few(path: Path, count: int, num_frames: int) -> SearchInputError:
    what = "no frames" if count == 0 else f"{count} frame{'s' if count > 1 else ''}"
    return SearchInputError(
        path, f"video has {what}; a video query needs at least {num_frames} (one per sampled frame)"
    )


def read_image_folder(path: Path, num_frames: int) -> torch.Tensor:
    """``num_frames`` images of a folder, uniformly sampled in name order: (T, 3, H, W) uint8."""
    from PIL import Image

    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise SearchInputError(path, f"folder holds no images ({', '.join(s[1:] for s in IMAGE_SUFFIXES)})")
    if len(files) < num_frames:
        raise _too_few(path, len(files), num_frames)
    frames = []
    for index in uniform_frame_indices(len(files), num_frames):
        try:
            with Image.open(files[index]) as image:
                frames.append(np.asarray(image.convert("RGB")))
        except (OSError, ValueError) as error:
            raise SearchInputError(files[index], f"unreadable image ({error})") from error
        if frames[-1].shape != frames[0].shape:
            (h, w), (h0, w0) = frames[-1].shape[:2], frames[0].shape[:2]
            raise SearchInputError(files[index], f"image is {w}x{h}, the first one {w0}x{h0}")
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()


def read_video_file(path: Path, num_frames: int) -> torch.Tensor:
    """``num_frames`` uniformly sampled frames of a video file: (T, 3, H, W) uint8."""
    import imageio_ffmpeg

    if path.stat().st_size == 0:
        raise SearchInputError(path, "video file is empty (0 bytes)")
    try:
        count, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    except (RuntimeError, OSError, ValueError) as error:
        raise SearchInputError(path, f"unreadable video ({_ffmpeg_problem(error)})") from error
    if count < num_frames:
        raise _too_few(path, count, num_frames)
    wanted = {int(i): k for k, i in enumerate(uniform_frame_indices(count, num_frames))}  # distinct: count >= T
    frames: dict[int, np.ndarray] = {}
    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        width, height = next(reader)["size"]
        for index, raw in enumerate(reader):
            if index in wanted:
                frames[wanted[index]] = np.frombuffer(raw, np.uint8).reshape(height, width, 3)
                if len(frames) == num_frames:
                    break
        reader.close()
    except (RuntimeError, OSError, ValueError, StopIteration) as error:
        raise SearchInputError(path, f"unreadable video ({_ffmpeg_problem(error)})") from error
    if len(frames) < num_frames:
        raise SearchInputError(path, f"video decoded to fewer frames than the {count} its container lists")
    stack = np.stack([frames[k] for k in range(num_frames)])
    return torch.from_numpy(stack).permute(0, 3, 1, 2).contiguous()


def read_query_video(path: str | os.PathLike[str], num_frames: int = 8) -> torch.Tensor:
    """``num_frames`` uniformly sampled frames of a video file or an image folder: (T, 3, H, W) uint8 RGB."""
    path = Path(path)
    if not path.exists():
        raise SearchInputError(path, "video does not exist")
    if path.is_dir():
        return read_image_folder(path, num_frames)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        kinds = ", ".join(s[1:] for s in VIDEO_SUFFIXES)
        raise SearchInputError(path, f"not a video file (expected one of {kinds}, or a folder of images)")
    return read_video_file(path, num_frames)
