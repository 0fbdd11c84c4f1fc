"""The floor: a plain plane, a gridded texture patch around a clip's path, and a soft contact shadow (numpy only).

Software OpenGL samples textures without mipmaps, so a grid texture tiled to the horizon sparkles. The
grid therefore lives on one texture per clip that covers the clip's path and fades out a few metres
around it, sampled at about one texel per pixel near the camera. Workbench has no soft shadows: a small
patch lying just above the grid is re-textured every frame with the same texels, darkened by a soft
occlusion from the body points near the floor; it equals the grid at its borders, so no seam shows.
Texture rows run along +Z and columns along +X (motion coordinates).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

FLOOR_SRGB = np.array([0.80, 0.80, 0.81], np.float32)
LINE_SRGB = np.array([0.68, 0.68, 0.70], np.float32)
LINE_WIDTH_M = 0.012  # one line per metre along X and along Z
GRID_FULL_M = 3.0  # lines at full strength this close to the path
GRID_GONE_M = 8.0  # and gone this far from it
BOX_STEP_M = 2.0  # the path box is rounded out to this step, so that clips on similar paths share one texture
MIN_TEXEL_M = 0.0125
MAX_TEXELS = 2048
SHADOW_SIZE_M = 3.0
SHADOW_STRENGTH = 0.55  # darkest shading at full occlusion
SHADOW_FADE_M = 0.25  # border band of the shadow patch where the shadow fades to nothing
SHADOW_POINTS = 320  # occluder points sampled from an avatar's vertices


def srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded colour -> linear."""
    srgb = np.asarray(srgb, dtype=np.float64)
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


@dataclass(frozen=True, eq=False)
class GridLayout:
    """Where the grid texture of one clip lies: lower (x, z) corner, texel size, texel counts, full-strength box."""

    origin: np.ndarray  # (2,) x, z of the texture's lower corner
    texel: float
    shape: tuple[int, int]  # (rows along z, columns along x)
    box: np.ndarray  # (4,) xmin, zmin, xmax, zmax of the path

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, GridLayout)
            and self.shape == other.shape
            and self.texel == other.texel
            and np.array_equal(self.origin, other.origin)
            and np.array_equal(self.box, other.box)
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def key(self) -> tuple:
        """A hashable key: equal layouts have equal keys."""
        return (self.shape, self.texel, tuple(self.origin.tolist()), tuple(self.box.tolist()))

    @property
    def size(self) -> np.ndarray:
        """(x extent, z extent) in metres."""
        return np.array([self.shape[1], self.shape[0]]) * self.texel


def grid_layout(path_xz: np.ndarray) -> GridLayout:
    """Grid texture placement covering ``path_xz`` (T, 2) plus the fade-out margin."""
    path_xz = np.asarray(path_xz, dtype=np.float64).reshape(-1, 2)
    low = np.floor(path_xz.min(axis=0) / BOX_STEP_M) * BOX_STEP_M
    high = np.ceil(path_xz.max(axis=0) / BOX_STEP_M) * BOX_STEP_M
    box = np.concatenate([low, high])
    low, high = box[:2] - GRID_GONE_M, box[2:] + GRID_GONE_M
    texel = max(MIN_TEXEL_M, float((high - low).max()) / MAX_TEXELS)
    low = np.floor(low / texel) * texel  # texel lattice fixed in the world
    columns, rows = np.ceil((high - low) / texel).astype(int)
    return GridLayout(origin=low, texel=texel, shape=(int(rows), int(columns)), box=box)


def line_coverage(coords: np.ndarray, texel: float, width: float = LINE_WIDTH_M) -> np.ndarray:
    """Fraction of each texel [c - texel/2, c + texel/2] covered by the lines [k - width/2, k + width/2], k integer."""
    lo = coords - texel / 2 + width / 2
    hi = coords + texel / 2 + width / 2
    covered = np.zeros_like(coords)
    for shift in range(int(np.ceil(texel)) + 2):  # lines the texel may meet
        start = np.floor(lo) + shift
        covered += np.clip(np.minimum(hi, start + width) - np.maximum(lo, start), 0.0, None)
    return np.clip(covered / texel, 0.0, 1.0)


def _fade(coords: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Distance of ``coords`` outside [lo, hi] in metres (0 inside)."""
    return np.maximum(lo - coords, 0.0) + np.maximum(coords - hi, 0.0)


def texel_centres(layout: GridLayout, row0: int = 0, col0: int = 0, rows: int | None = None, cols: int | None = None):
    """(xs, zs) of texel centres of a window of the layout."""
    rows = layout.shape[0] - row0 if rows is None else rows
    cols = layout.shape[1] - col0 if cols is None else cols
    xs = layout.origin[0] + (col0 + np.arange(cols) + 0.5) * layout.texel
    zs = layout.origin[1] + (row0 + np.arange(rows) + 0.5) * layout.texel
    return xs, zs


def _strength(distance: np.ndarray) -> np.ndarray:
    """Grid line strength (smoothstep) at ``distance`` metres outside the path box."""
    x = np.clip((GRID_GONE_M - distance) / (GRID_GONE_M - GRID_FULL_M), 0.0, 1.0)
    return x * x * (3 - 2 * x)


def grid_texture(layout: GridLayout, window: tuple[int, int, int] | None = None) -> np.ndarray:
    """(rows, cols, 4) RGBA sRGB texture of the grid patch (float32), or only the square ``window`` (row0, col0, n).

    A window's texels equal the same texels of the whole patch (the same arithmetic per texel).
    """
    row0, col0, n = window if window is not None else (0, 0, None)
    xs, zs = texel_centres(layout, row0, col0, n, n)
    fade_x = _strength(_fade(xs, layout.box[0], layout.box[2])).astype(np.float32)
    fade_z = _strength(_fade(zs, layout.box[1], layout.box[3])).astype(np.float32)
    line_x = line_coverage(xs, layout.texel).astype(np.float32)
    line_z = line_coverage(zs, layout.texel).astype(np.float32)
    lines = np.maximum(line_x[None, :], line_z[:, None])
    lines *= fade_z[:, None]
    lines *= fade_x[None, :]
    texture = np.empty((*lines.shape, 4), np.float32)
    for channel in range(3):  # channel by channel: numpy broadcasts over a trailing axis of 4 many times slower
        texture[..., channel] = FLOOR_SRGB[channel] + (LINE_SRGB[channel] - FLOOR_SRGB[channel]) * lines
    texture[..., 3] = 1.0
    return texture


def shadow_window(layout: GridLayout, centre_xz: np.ndarray, size: float = SHADOW_SIZE_M) -> tuple[int, int, int]:
    """(row0, col0, n): the square window of grid texels, about ``size`` wide, centred near ``centre_xz``."""
    n = min(int(np.ceil(size / layout.texel)), *layout.shape)
    col0, row0 = np.rint((np.asarray(centre_xz) - layout.origin) / layout.texel - n / 2).astype(int)
    row0 = int(np.clip(row0, 0, layout.shape[0] - n))
    col0 = int(np.clip(col0, 0, layout.shape[1] - n))
    return row0, col0, n


@lru_cache(maxsize=32)
def occluder_indices(n_vertices: int, count: int = SHADOW_POINTS) -> np.ndarray:
    """Evenly spread vertex indices used as shadow casters (read-only)."""
    indices = np.unique(np.linspace(0, n_vertices - 1, min(count, n_vertices)).astype(np.int64))
    indices.flags.writeable = False
    return indices


def contact_occlusion(xs: np.ndarray, zs: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(len(zs), len(xs)) occlusion in [0, 1] from body ``points`` (P, 3): dark under low points, fading with height.

    It fades to nothing over the border band of the window so that the patch meets the grid without a seam.
    Points that barely count are left out: those high above the floor (all of them together weigh less than
    1e-3, which shades the floor by less than a quarter of an 8-bit level) and those more than six Gaussian
    widths outside the window.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    heights = np.clip(points[:, 1], 0.0, None)
    weight = 0.35 * np.exp(-heights / 0.10)
    sigma = 0.045 + 0.35 * heights
    reach = 6.0 * sigma  # the Gaussian is below 1.6e-8 beyond 6 sigma
    near = (
        (weight > 1e-3 / max(len(points), 1))
        & (points[:, 0] > xs[0] - reach)
        & (points[:, 0] < xs[-1] + reach)
        & (points[:, 2] > zs[0] - reach)
        & (points[:, 2] < zs[-1] + reach)
    )
    points, weight, sigma = points[near], weight[near], sigma[near]
    gx = np.exp(-0.5 * ((xs[None, :] - points[:, 0:1]) / sigma[:, None]) ** 2)  # (P, X)
    gz = np.exp(-0.5 * ((zs[None, :] - points[:, 2:3]) / sigma[:, None]) ** 2)  # (P, Z)
    occlusion = 1.0 - np.exp(-((gz * weight[:, None]).T @ gx))
    fade_x = np.clip(np.minimum(xs - xs[0], xs[-1] - xs) / SHADOW_FADE_M, 0.0, 1.0)
    fade_z = np.clip(np.minimum(zs - zs[0], zs[-1] - zs) / SHADOW_FADE_M, 0.0, 1.0)
    return occlusion * np.outer(fade_z, fade_x)


@dataclass(frozen=True)
class ShadowPatch:
    """A contact-shadow patch ready to lay on the floor: its lower (x, z) corner, side length and texture."""

    origin: np.ndarray  # (2,)
    size: float
    texture: np.ndarray  # (n, n, 4) RGBA sRGB


def contact_shadow(layout: GridLayout, points: np.ndarray) -> ShadowPatch:
    """The shadow patch of body ``points`` (P, 3) on the grid of ``layout``, centred under their low part."""
    points = np.asarray(points).reshape(-1, 3)
    low = points[points[:, 1] < 0.6]
    centre = (low if len(low) else points)[:, [0, 2]].mean(axis=0)
    window = shadow_window(layout, centre)
    row0, col0, n = window
    origin = layout.origin + np.array([col0, row0]) * layout.texel
    return ShadowPatch(origin, n * layout.texel, shadow_texture(layout, window, points))


def body_shadow(layout: GridLayout, vertices: np.ndarray) -> ShadowPatch:
    """The contact shadow of a posed body mesh (V, 3), cast by its ``occluder_indices``."""
    vertices = np.asarray(vertices)
    return contact_shadow(layout, vertices[occluder_indices(len(vertices))])


def shadow_texture(layout: GridLayout, window: tuple[int, int, int], points: np.ndarray) -> np.ndarray:
    """(n, n, 4) RGBA: the grid texels of ``window`` darkened by the contact shadow of ``points``."""
    row0, col0, n = window
    xs, zs = texel_centres(layout, row0, col0, n, n)
    shade = 1.0 - SHADOW_STRENGTH * contact_occlusion(xs, zs, points)
    patch = grid_texture(layout, window)
    shade = shade.astype(np.float32)
    for channel in range(3):
        patch[..., channel] *= shade
    return patch
