"""H.264 mp4 writing through the ffmpeg binary that imageio-ffmpeg ships (no bpy)."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

import imageio_ffmpeg
import numpy as np

from lavimo.io import atomic_path

CRF = 20  # visually clean, small files


class VideoWriter:
    """Context manager streaming (H, W, 3) uint8 frames into an mp4 that appears atomically on success."""

    def __init__(self, path: str | os.PathLike[str], fps: float) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self._atomic = atomic_path(self.path)
        self._writer = None
        self._tmp: Path | None = None

    def __enter__(self) -> VideoWriter:
        self._tmp = self._atomic.__enter__()
        return self

    def append(self, image: np.ndarray) -> None:
        """Add one frame (all frames must share one size)."""
        if self._writer is None:
            height, width = image.shape[:2]
            self._writer = imageio_ffmpeg.write_frames(
                str(self._tmp),
                (width, height),
                fps=self.fps,
                codec="libx264",
                pix_fmt_in="rgb24",
                pix_fmt_out="yuv420p",
                macro_block_size=16,
                ffmpeg_log_level="error",
                output_params=["-crf", str(CRF), "-preset", "veryfast", "-movflags", "+faststart"],
            )
            self._writer.send(None)
        self._writer.send(np.ascontiguousarray(image[..., :3], dtype=np.uint8))

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._writer is not None:
            self._writer.close()
        if kind is None and self._writer is None:
            error = ValueError(f"{self.path}: no frames to write")
            self._atomic.__exit__(type(error), error, None)
            raise error
        self._atomic.__exit__(kind, error, trace)
