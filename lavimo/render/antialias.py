"""FXAA (Lottes' fast approximate anti-aliasing, quality variant) on a rendered frame, in numpy.

Workbench's own anti-aliasing re-renders the frame once per sample, which software OpenGL pays for in
full; this post-process smooths the stair steps of a single aliased render for a few milliseconds.
"""

from __future__ import annotations

import numpy as np

EDGE_THRESHOLD = 0.125  # relative local contrast below which a pixel is left alone
EDGE_THRESHOLD_MIN = 0.0312  # absolute contrast below which a pixel is left alone (dark areas)
SUBPIXEL_QUALITY = 0.75
SEARCH_STEPS = 12


def _luma(image: np.ndarray) -> np.ndarray:
    """Perceived brightness in [0, 1] of an (H, W, 3) uint8 image."""
    return (image[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255.0


def _end_search(
    flat: np.ndarray, base: np.ndarray, side: np.ndarray, along: np.ndarray, average: np.ndarray, gradient: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Walk along the edge (flat index step ``along``) until it ends; (distance, luma difference at the end).

    ``flat`` is the luma padded by more than SEARCH_STEPS on every side, raveled; ``base`` are pixel indices in it.
    """
    distance = np.full(base.shape, float(SEARCH_STEPS), np.float32)
    end_luma = np.zeros(base.shape, np.float32)
    done = np.zeros(base.shape, bool)
    for step in range(1, SEARCH_STEPS + 1):
        index = base + step * along
        delta = 0.5 * (flat[index] + flat[index + side]) - average
        hit = ~done & (np.abs(delta) >= gradient)
        distance[hit] = step
        end_luma[hit] = delta[hit]
        done |= hit
        if done.all():
            return distance, end_luma
    end_luma[~done] = delta[~done]
    return distance, end_luma


def fxaa(image: np.ndarray) -> np.ndarray:
    """Anti-aliased copy of an (H, W, 3) uint8 image."""
    luma = _luma(image)
    pad = SEARCH_STEPS + 2
    p = np.pad(luma, pad, mode="edge")
    width = p.shape[1]
    core = (slice(pad, -pad), slice(pad, -pad))
    m = p[core]
    n, s = p[pad - 1 : -pad - 1, pad:-pad], p[pad + 1 : -pad + 1, pad:-pad]
    w, e = p[pad:-pad, pad - 1 : -pad - 1], p[pad:-pad, pad + 1 : -pad + 1]
    hi = np.maximum(np.maximum(np.maximum(m, n), np.maximum(s, w)), e)
    lo = np.minimum(np.minimum(np.minimum(m, n), np.minimum(s, w)), e)
    contrast = hi - lo
    row, col = np.nonzero(contrast >= np.maximum(EDGE_THRESHOLD_MIN, hi * EDGE_THRESHOLD))
    if len(row) == 0:
        return image.copy()
    flat = p.ravel()
    base = (row + pad) * width + (col + pad)
    M, N, S, W, E = flat[base], flat[base - width], flat[base + width], flat[base - 1], flat[base + 1]
    NW, NE, SW, SE = flat[base - width - 1], flat[base - width + 1], flat[base + width - 1], flat[base + width + 1]
    horizontal = (
        np.abs(0.25 * NW - 0.5 * W + 0.25 * SW)
        + np.abs(0.5 * N - M + 0.5 * S)
        + np.abs(0.25 * NE - 0.5 * E + 0.25 * SE)
    ) >= (
        np.abs(0.25 * NW - 0.5 * N + 0.25 * NE)
        + np.abs(0.5 * W - M + 0.5 * E)
        + np.abs(0.25 * SW - 0.5 * S + 0.25 * SE)
    )
    luma1 = np.where(horizontal, N, W)  # neighbour before the pixel across the edge
    luma2 = np.where(horizontal, S, E)  # neighbour after it
    grad1, grad2 = luma1 - M, luma2 - M
    first = np.abs(grad1) >= np.abs(grad2)
    gradient = 0.25 * np.maximum(np.abs(grad1), np.abs(grad2))
    across = np.where(first, -1, 1)  # towards the steeper side
    average = 0.5 * (np.where(first, luma1, luma2) + M)
    side_rows, side_cols = np.where(horizontal, across, 0), np.where(horizontal, 0, across)
    side = side_rows * width + side_cols
    along = np.where(horizontal, 1, width)
    d1, end1 = _end_search(flat, base, side, -along, average, gradient)
    d2, end2 = _end_search(flat, base, side, along, average, gradient)
    toward1 = d1 < d2
    pixel_offset = 0.5 - np.minimum(d1, d2) / (d1 + d2)
    correct = (np.where(toward1, end1, end2) < 0) != (average > M)
    offset = np.where(correct, pixel_offset, 0.0)
    neighbours = (2 * (N + S + E + W) + NW + NE + SW + SE) / 12
    sub = np.clip(np.abs(neighbours - M) / np.maximum(contrast[row, col], 1e-6), 0, 1)
    sub = ((-2 * sub + 3) * sub * sub) ** 2 * SUBPIXEL_QUALITY
    offset = np.maximum(offset, sub)[:, None]
    h, wd = luma.shape
    other = image[np.clip(row + side_rows, 0, h - 1), np.clip(col + side_cols, 0, wd - 1)].astype(np.float32)
    out = image.copy()
    blended = (1 - offset) * image[row, col].astype(np.float32) + offset * other
    out[row, col] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out
