"""Fast PNG encoding of rendered frames (no bpy, no Pillow).

Rows are stored unfiltered and deflated at zlib level 3: for these flat-shaded renders that is about three
times faster than Pillow's per-row adaptive filtering and gives slightly smaller files. Any PNG reader
decodes them; the bytes depend only on the pixels (deterministic).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

ZLIB_LEVEL = 3
SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (grey, grey+alpha, RGB, RGBA)


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def encode_png(image: np.ndarray, level: int = ZLIB_LEVEL) -> bytes:
    """PNG bytes of an (H, W) or (H, W, C) uint8 image, C in 1..4."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"PNG frames must be uint8, got {image.dtype}")
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in COLOUR_TYPES or 0 in image.shape:
        raise ValueError(f"expected an (H, W) or (H, W, 1..4) image, got shape {image.shape}")
    height, width, channels = image.shape
    rows = np.zeros((height, width * channels + 1), np.uint8)  # each row: filter type 0, then the pixels
    rows[:, 1:] = image.reshape(height, -1)
    header = struct.pack(">IIBBBBB", width, height, 8, COLOUR_TYPES[channels], 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows, level)) + _chunk(b"IEND", b"")
