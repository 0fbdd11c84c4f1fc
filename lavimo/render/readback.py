"""Reading rendered frames back from Blender (numpy only).

Blender writes each frame as an uncompressed half-float OpenEXR (scene-linear RGB): it skips Blender's
colour management and 8-bit conversion, the slowest part of saving a frame. The frame is then encoded
here as Blender's "Standard" view on an sRGB display does (the piecewise sRGB transfer function, rounded
to 8 bits), through a lookup table indexed by the 16 bits of each half float. Half floats keep 11
significant bits, so an 8-bit code differs from the one of the full-precision value by at most one level,
and only where the value lies within 1/2048 of its size from a rounding boundary.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

EXR_MAGIC = 20000630
EXR_HALF, EXR_FLOAT = 1, 2  # channel pixel types
LUT_SIZE = 1 << 16  # linear values are binned at 1/65536: far below one 8-bit sRGB step


def _srgb_lut(size: int = LUT_SIZE) -> np.ndarray:
    """uint8 sRGB code of the centre of each of ``size`` linear bins over [0, 1]."""
    linear = (np.arange(size) + 0.5) / size
    encoded = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.clip(np.floor(encoded * 255 + 0.5), 0, 255).astype(np.uint8)


def _srgb_half_lut() -> np.ndarray:
    """uint8 sRGB code of every half float, indexed by its bit pattern (NaN and negatives: 0)."""
    linear = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float64)
    linear = np.clip(np.nan_to_num(linear, nan=0.0), 0.0, 1.0)
    encoded = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.clip(np.floor(encoded * 255 + 0.5), 0, 255).astype(np.uint8)


SRGB_LUT = _srgb_lut()
SRGB_HALF_LUT = _srgb_half_lut()


def linear_to_srgb8(linear: np.ndarray) -> np.ndarray:
    """uint8 sRGB codes of linear values (clipped to [0, 1]); half floats are looked up exactly."""
    linear = np.asarray(linear)
    if linear.dtype == np.float16:
        return SRGB_HALF_LUT.take(linear.view(np.uint16))
    bins = np.asarray(np.multiply(linear, np.float32(LUT_SIZE), dtype=np.float32))
    np.clip(bins, 0, LUT_SIZE - 1, out=bins)
    return SRGB_LUT.take(bins.astype(np.intp))


def _cstring(data: bytes, pos: int) -> tuple[str, int]:
    end = data.index(b"\0", pos)
    return data[pos:end].decode("ascii"), end + 1


def read_exr_planes(path: str | os.PathLike[str]) -> np.ndarray:
    """(H, 3, W) linear R, G, B planes, row by row, of an uncompressed scanline OpenEXR: float16 for a half
    float file, float32 for a full float one.

    That is how the file stores them (each scanline holds one row per channel), so reading is one copy.
    Only the layout Blender writes with codec NONE is read; anything else raises ValueError.
    """
    data = Path(path).read_bytes()
    if len(data) < 8 or struct.unpack_from("<i", data)[0] != EXR_MAGIC:
        raise ValueError(f"{path}: not an OpenEXR file")
    if struct.unpack_from("<i", data, 4)[0] & 0x1E00:  # tiled, long names, deep or multi-part
        raise ValueError(f"{path}: only single-part scanline OpenEXR is read")
    pos, header = 8, {}
    while data[pos] != 0:
        name, pos = _cstring(data, pos)
        _, pos = _cstring(data, pos)  # attribute type
        size = struct.unpack_from("<i", data, pos)[0]
        header[name] = data[pos + 4 : pos + 4 + size]
        pos += 4 + size
    pos += 1
    if header.get("compression") != b"\x00" or header.get("lineOrder") != b"\x00":
        raise ValueError(f"{path}: only uncompressed, increasing-Y OpenEXR is read")
    xmin, ymin, xmax, ymax = struct.unpack("<4i", header["dataWindow"])
    width, height = xmax - xmin + 1, ymax - ymin + 1
    channels, types, spec = [], set(), header["channels"]
    cursor = 0
    while spec[cursor] != 0:
        name, cursor = _cstring(spec, cursor)
        pixel_type, _, x_sampling, y_sampling = struct.unpack_from("<iB3xii", spec, cursor)
        cursor += 16
        if pixel_type not in (EXR_HALF, EXR_FLOAT) or x_sampling != 1 or y_sampling != 1:
            raise ValueError(f"{path}: channel {name} is not full-resolution half or 32-bit float")
        channels.append(name)
        types.add(pixel_type)
    if not {"R", "G", "B"} <= set(channels):
        raise ValueError(f"{path}: no R, G, B channels ({channels})")
    if len(types) != 1:
        raise ValueError(f"{path}: channels mix half and 32-bit floats")
    dtype = np.dtype("<f2" if types == {EXR_HALF} else "<f4")
    first = struct.unpack_from("<Q", data, pos)[0]  # offset table: one entry per scanline
    line = 8 + dtype.itemsize * width * len(channels)  # y, byte count, then each channel's row (sorted by name)
    if len(data) < first + height * line or struct.unpack_from("<i", data, first + 4)[0] != line - 8:
        raise ValueError(f"{path}: truncated or unexpected scanline layout")
    rows = np.frombuffer(data, np.uint8, height * line, first).reshape(height, line)[:, 8:]
    planes = np.ascontiguousarray(rows).view(dtype).reshape(height, len(channels), width)
    order = [channels.index(name) for name in "RGB"]
    return planes[:, ::-1] if order == [2, 1, 0] else planes[:, order]  # Blender: B, G, R


def encode_srgb(planes: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 sRGB of linear (H, 3, W) R, G, B planes."""
    codes = linear_to_srgb8(planes)  # the lookup runs along contiguous rows: much faster than on interleaved pixels
    image = np.empty((codes.shape[0], codes.shape[2], 3), np.uint8)
    for channel in range(3):
        image[..., channel] = codes[:, channel]
    return image
