"""The report's images, each a base64 PNG data URI: frame strips, training curves, the per-seed ablation figure."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from lavimo.layout import FRAME_GLOB, clip_frames_dir
from lavimo.report.common import ABLATION_ARMS, DIRECTION_LABELS, VARIANT_LABELS, number
from lavimo.report.load import Ablation, Run, best_epoch

PALETTE = ("#2557a7", "#d0582b", "#2e8b57", "#8e44ad", "#b8860b", "#c0392b")
LOSS_KEYS = ("loss", "loss_align", "loss_mt", "loss_mv", "loss_tv", "loss_recon")


def _png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def png_data_uri(image: Image.Image) -> str:
    """``image`` as a base64 PNG data URI."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return _png_uri(buffer.getvalue())


def figure_uri(fig: Any) -> str:
    """A matplotlib figure as a base64 PNG data URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return _png_uri(buffer.getvalue())


def image_file_uri(path: Path, max_px: int = 1600) -> str:
    """The image at ``path``, shrunk to fit ``max_px``, as a data URI; OSError when unreadable."""
    with Image.open(path) as image:
        picture = image.convert("RGB")
    picture.thumbnail((max_px, max_px), Image.Resampling.LANCZOS)
    return png_data_uri(picture)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):
        return ImageFont.load_default()


def placeholder_tile(px: int, text: str = "no frame") -> Image.Image:
    """A grey square with ``text`` in its middle (stands in for a missing frame)."""
    tile = Image.new("RGB", (px, px), (205, 208, 214))
    draw = ImageDraw.Draw(tile)
    font = _font(max(9, px // 9))
    width = draw.textlength(text, font=font)
    draw.text(((px - width) / 2, px / 2 - px // 14), text, fill=(95, 100, 112), font=font)
    return tile


class FrameStrips:
    """Frame strips (``count`` of a clip's frames side by side) of one dataset, as data URIs, cached."""

    def __init__(self, frames_dir: Path, count: int = 4, px: int = 96) -> None:
        self.frames_dir = frames_dir
        self.count = count
        self.px = px
        self.cache: dict[str, str] = {}
        self.missing_clips: list[str] = []

    def frame_paths(self, clip_id: str) -> list[Path]:
        """Up to ``count`` of the clip's rendered frames, evenly spread."""
        folder = clip_frames_dir(self.frames_dir, clip_id)
        files = sorted(folder.glob(FRAME_GLOB)) if folder.is_dir() else []
        if len(files) <= self.count:
            return files
        picks = np.unique(np.round(np.linspace(0, len(files) - 1, self.count)).astype(int))
        return [files[i] for i in picks]

    def uri(self, clip_id: str) -> str:
        """The clip's strip as a data URI (made once)."""
        if clip_id not in self.cache:
            self.cache[clip_id] = png_data_uri(self.strip(clip_id))
        return self.cache[clip_id]

    def strip(self, clip_id: str) -> Image.Image:
        """The clip's frames side by side; grey placeholders for frames that are absent or unreadable."""
        paths = self.frame_paths(clip_id)
        if not paths:
            self.missing_clips.append(clip_id)
        tiles: list[Image.Image] = []
        for k in range(self.count):
            tile = None
            if k < len(paths):
                try:
                    with Image.open(paths[k]) as frame:
                        tile = frame.convert("RGB")
                        tile.thumbnail((self.px, self.px), Image.Resampling.LANCZOS)
                except OSError:
                    tile = None
            if tile is None:
                tile = placeholder_tile(self.px, "no frames" if not paths else "unreadable")
            tiles.append(tile)
        gap = 2
        strip = Image.new("RGB", (self.count * self.px + (self.count - 1) * gap, self.px), (255, 255, 255))
        for k, tile in enumerate(tiles):
            x = k * (self.px + gap) + (self.px - tile.width) // 2
            strip.paste(tile, (x, (self.px - tile.height) // 2))
        return strip


def training_curves(run: Run) -> str | None:
    """Loss and validation R@1 per epoch of one run as a PNG data URI (None without history)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    rows = sorted((r for r in run.history if number(r.get("epoch")) is not None), key=lambda r: r["epoch"])
    if not rows:
        return None
    epochs = [int(r["epoch"]) for r in rows]
    fig = Figure(figsize=(10.5, 3.4), dpi=110, layout="constrained")
    ax_loss, ax_val = fig.subplots(1, 2)
    plotted = 0
    for key, colour in zip(LOSS_KEYS, PALETTE, strict=False):
        values = [number(r.get(key)) for r in rows]
        if all(v is None for v in values):
            continue
        ys = [np.nan if v is None else v for v in values]
        ax_loss.plot(epochs, ys, color=colour, lw=2.2 if key == "loss" else 1.2, label=key, marker="o", ms=2.5)
        plotted += 1
    ax_loss.set_title("training loss", fontsize=11)
    ax_loss.set_xlabel("epoch")
    if plotted:
        ax_loss.legend(fontsize=8, frameon=False)
    val_rows = [(int(r["epoch"]), r["val"]) for r in rows if isinstance(r.get("val"), dict)]
    drawn = 0
    for direction, colour in zip(DIRECTION_LABELS, PALETTE, strict=False):
        points = [(e, number((v.get(direction) or {}).get("R@1"))) for e, v in val_rows]
        points = [(e, y) for e, y in points if y is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            ax_val.plot(xs, ys, color=colour, lw=1.6, marker="o", ms=3, label=f"{direction} R@1")
            drawn += 1
    best = best_epoch(run)
    if best is not None and drawn:
        ax_val.axvline(best[0], color="#999999", lw=0.8, ls="--")
        ax_val.annotate(
            f"best epoch {best[0]}", (best[0], 0.02), xycoords=("data", "axes fraction"), fontsize=8,
            color="#555555", ha="right", xytext=(-4, 0), textcoords="offset points",
        )  # fmt: skip
    if drawn:
        ax_val.legend(fontsize=8, frameon=False)
    else:
        ax_val.text(0.5, 0.5, "no validation metrics recorded", ha="center", va="center", transform=ax_val.transAxes)
        ax_val.set_xticks([])
        ax_val.set_yticks([])
    ax_val.set_title("validation R@1 (%)", fontsize=11)
    ax_val.set_xlabel("epoch")
    for ax, has_data in ((ax_loss, plotted), (ax_val, drawn)):
        ax.grid(alpha=0.25)
        ax.spines[["top", "right"]].set_visible(False)
        if has_data:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return figure_uri(fig)


def _values(stats: Any) -> list[float]:
    values = stats.get("values") if isinstance(stats, dict) else None
    if not isinstance(values, list):
        return []
    return [v for v in map(number, values) if v is not None]


def ablation_figure(ablations: Sequence[Ablation]) -> str | None:
    """Per-seed t2m and m2t R@1 (protocol (a)) of each study, 3-modal beside 2-modal, seeds joined; a data URI."""
    from matplotlib.figure import Figure

    panels = ("t2m", "m2t")
    if not any(ablation.cell("normal", d, "R@1") for ablation in ablations for d in panels):
        return None
    fig = Figure(figsize=(min(4.0 + 1.6 * len(ablations), 12.0), 3.3), dpi=110, layout="constrained")
    axes = fig.subplots(1, len(panels))
    colours = dict(zip(ABLATION_ARMS, PALETTE, strict=False))
    for ax, direction in zip(axes, panels, strict=True):
        for x, ablation in enumerate(ablations):
            cell = ablation.cell("normal", direction, "R@1")
            series = {arm: _values(cell.get(arm)) for arm in ABLATION_ARMS}
            offsets = {"3modal": -0.15, "2modal": 0.15}
            for arm, values in series.items():
                if values:
                    ax.scatter([x + offsets[arm]] * len(values), values, color=colours[arm], s=18, zorder=3,
                               label=VARIANT_LABELS[arm] if x == 0 else None)  # fmt: skip
                    mean = float(np.mean(values))
                    ax.hlines(mean, x + offsets[arm] - 0.1, x + offsets[arm] + 0.1, color=colours[arm], lw=2)
            if len(series["3modal"]) == len(series["2modal"]):  # paired by seed
                for a, b in zip(series["3modal"], series["2modal"], strict=True):
                    ax.plot([x - 0.15, x + 0.15], [a, b], color="#aab2c0", lw=0.8, zorder=2)
        ax.set_xticks(range(len(ablations)), [a.study for a in ablations], fontsize=8)
        ax.set_title(f"{direction} R@1 (a), per seed", fontsize=10)
        ax.grid(alpha=0.25, axis="y")
        ax.spines[["top", "right"]].set_visible(False)
        ax.set_ylabel("R@1 (%)")
    axes[0].legend(fontsize=8, frameon=False)
    return figure_uri(fig)
