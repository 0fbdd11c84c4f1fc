"""The self-contained HTML report of a results tree: paper-style tables, curves, qualitative retrieval, data.

``build_report(results, out)`` reads what the pipeline wrote (per dataset ``ds``):

- ``{results}/{ds}/manifest.parquet``, ``{results}/{ds}/rejected.csv`` (the dataset's one rejection list:
  prepare and features rows, and the render rows ``lavimo render merge-rejects`` merges in from the shards'
  ``frames/*.rejected.csv``, which are therefore not read again) and the rendered frames
  ``{results}/{ds}/frames/{clip_id}/00.png .. 07.png`` and the render contact sheets
  ``{results}/{ds}/render_avatars.png`` and ``render_clips.png``;
- ``{results}/{ds}/runs/{variant}/`` (variant ``3modal`` or ``2modal``): ``config.json``, ``history.jsonl``
  (one JSON object per epoch, optionally with ``val`` metrics), ``metrics.json`` (``protocols`` ->
  direction -> R@1 .. MedR) and ``retrieval.json`` (top-5 candidates per query);
- ``{results}/{ds}/ablation.json`` (the default 3-modal vs 2-modal study over seeds) and
  ``{results}/{ds}/ablation/{study}/ablation.json`` (other studies);
- ``{results}/{ds}/features/current.json`` and the cache's ``meta.json`` (the frame encoder, when a run's
  ``config.json`` does not say);
- ``{results}/avatars/{backend}/contact_sheet.png``;

The paper's Tables 1-4 (``lavimo.published``) stand beside our numbers, each row citing its table, with a
sentence per dataset saying which dataset, frame encoder and text backbone our runs used.

and writes ONE HTML file: every image is a base64 PNG data URI, the CSS is inline, there is no script and
nothing is fetched. Whatever is missing is drawn as a placeholder ("not evaluated", a grey frame, ...) and
listed in the report's "Missing" note; a missing or unreadable input never stops the report.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import logging
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from lavimo import __version__
from lavimo.io import Rejection, read_rejections, save_text
from lavimo.published import TRANSCRIPTION_NOTES, PublishedRow, published_rows
from lavimo.text.similarity import DEFAULT_EPSILON, SCALE

log = logging.getLogger(__name__)

DATASETS: tuple[str, ...] = ("demo", "humanml3d", "kitml")
DATASET_LABELS = {"demo": "Demo (Bandai-Namco)", "humanml3d": "HumanML3D", "kitml": "KIT-ML"}
VARIANTS: tuple[str, ...] = ("2modal", "3modal")  # table row order, as in the paper
VARIANT_LABELS = {"2modal": "ours 2-modal", "3modal": "ours 3-modal"}
RENDER_SHEETS = (  # (file in results/{ds}/, what it is, caption) written by the render rules
    (
        "render_avatars.png",
        "render contact sheet: one clip on every avatar",
        "One clip of the dataset rendered on each of the 13 avatars (Blender, the configured engine).",
    ),
    (
        "render_clips.png",
        "render contact sheet: the sampled frames of 4 clips",
        "The sampled frames of 4 clips, as the frame encoder sees them, each clip on its own avatar.",
    ),
)
PROTOCOLS: tuple[tuple[str, str], ...] = (
    ("normal", "(a) All"),
    ("threshold", "(b) All with threshold"),
    ("dissimilar", "(c) Dissimilar subset"),
    ("guo", "(d) Small batches of 32"),
)
METRICS: tuple[str, ...] = ("R@1", "R@2", "R@3", "R@5", "R@10", "MedR")
LOWER_IS_BETTER = frozenset({"MedR"})
DIRECTION_LABELS = {
    "t2m": "Text-to-motion",
    "m2t": "Motion-to-text",
    "v2m": "Video-to-motion",
    "m2v": "Motion-to-video",
}
TEXT_DIRECTIONS = ("t2m", "m2t")
VIDEO_DIRECTIONS = ("v2m", "m2v")
LOSS_KEYS = ("loss", "loss_align", "loss_mt", "loss_mv", "loss_tv", "loss_recon")

QUOTED = "quoted from the paper"
NOT_EVALUATED = "not evaluated"
NO_RUNS = '<p class="na">No training runs.</p>'

# The notice CC BY-NC 4.0 requires wherever the Bandai-Namco data (or anything derived from it) appears;
# the same text as resources/demo/ATTRIBUTION.md (a test keeps them in step).
BANDAI_NAMCO_NOTICE = (
    '"Bandai-Namco-Research-Motiondataset" by Bandai Namco Research Inc., licensed under CC BY-NC 4.0 '
    "(https://creativecommons.org/licenses/by-nc/4.0/). Changes: a subset of the clips was selected.",
    'Paper: Kobayashi et al., "Motion Capture Dataset for Practical Use of AI-based Motion Editing and '
    'Stylization", arXiv:2306.08861.',
    "Whatever is derived from it (captions, renders, features) is non-commercial and must carry that notice.",
)

# The paper's Tables 1-4, every row (lavimo/published.py holds the numbers).
PUBLISHED: tuple[PublishedRow, ...] = tuple(published_rows())
PAPER_DATASETS: tuple[str, ...] = tuple(dict.fromkeys(row.dataset for row in PUBLISHED))


# ---------------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------------
@dataclass
class Run:
    """What one training run left behind; absent pieces are None / empty."""

    dataset: str
    variant: str
    path: Path
    config: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] | None = None
    retrieval: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return VARIANT_LABELS.get(self.variant, self.variant)

    def metric(self, protocol: str, direction: str, name: str) -> float | None:
        """A test metric from ``metrics.json``; None when absent or not a finite number."""
        try:
            return _number(self.metrics["protocols"][protocol][direction][name])  # type: ignore[index]
        except (KeyError, TypeError):
            return None

    def has_protocol(self, protocol: str) -> bool:
        protocols = (self.metrics or {}).get("protocols")
        return isinstance(protocols, dict) and isinstance(protocols.get(protocol), dict)


@dataclass
class DatasetResults:
    """A dataset's folder under the results: manifest, rejects, runs."""

    name: str
    path: Path
    manifest: Any = None  # pandas.DataFrame
    rejections: list[Rejection] = field(default_factory=list)
    runs: dict[str, Run] = field(default_factory=dict)
    _captions: dict[str, str] | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return DATASET_LABELS.get(self.name, self.name)

    def first_caption(self, clip_id: str) -> str | None:
        """The first caption of a clip in the manifest (None without a manifest or caption)."""
        if self.manifest is None:
            return None
        if self._captions is None:
            self._captions = {}
            for cid, texts in zip(self.manifest["clip_id"], self.manifest["texts"], strict=False):
                if texts is not None and len(texts) and isinstance(texts[0], Mapping):
                    self._captions[str(cid)] = str(texts[0].get("text", ""))
        return self._captions.get(clip_id)


class Missing:
    """Everything the report could not show, in the order found (rendered as the "Missing" note)."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, text: str) -> None:
        if text not in self.items:
            log.debug("missing: %s", text)
            self.items.append(text)

    def __len__(self) -> int:
        return len(self.items)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _read_json(path: Path, missing: Missing, absent: str | None) -> Any:
    """Parsed JSON of ``path``; None (noted in ``missing``) when absent (``absent`` says why) or unreadable."""
    if not path.exists():
        if absent:
            missing.add(absent)
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        missing.add(f"{path}: unreadable ({error})")
        return None


def read_history(path: Path, missing: Missing) -> list[dict[str, Any]]:
    """Epoch records of ``history.jsonl``; unreadable lines are skipped (and noted), the rest kept."""
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        missing.add(f"{path}: unreadable ({error})")
        return []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            missing.add(f"{path}: line {number} is not JSON (skipped)")
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def load_run(results: Path, ds: str, variant: str, missing: Missing) -> Run | None:
    """A run folder's files (None when the folder does not exist)."""
    path = results / ds / "runs" / variant
    if not path.is_dir():
        return None
    name = f"{ds}/{variant}"
    run = Run(ds, variant, path)
    run.config = _read_json(path / "config.json", missing, f"{name}: no config.json")
    run.history = read_history(path / "history.jsonl", missing)
    if not run.history:
        missing.add(f"{name}: no training history (history.jsonl missing or empty)")
    run.metrics = _read_json(path / "metrics.json", missing, f"{name}: {NOT_EVALUATED} (no metrics.json)")
    if run.metrics is not None and not isinstance(run.metrics.get("protocols"), dict):
        missing.add(f"{name}: metrics.json has no 'protocols'")
        run.metrics = None
    if run.metrics is not None:
        for protocol, label in PROTOCOLS:
            if not run.has_protocol(protocol):
                missing.add(f"{name}: protocol {label} not in metrics.json")
    run.retrieval = _read_json(path / "retrieval.json", missing, f"{name}: no retrieval.json (no qualitative examples)")
    return run


def load_dataset(results: Path, ds: str, variants: Sequence[str], missing: Missing) -> DatasetResults:
    """Manifest, rejects (of every stage, from the dataset's ``rejected.csv``) and runs of one dataset."""
    path = results / ds
    data = DatasetResults(ds, path)
    if not path.is_dir():
        missing.add(f"{ds}: no results folder {path}")
        return data
    manifest = path / "manifest.parquet"
    if manifest.exists():
        try:
            from lavimo.datasets.manifest import load_manifest

            data.manifest = load_manifest(path)
        except Exception as error:  # a broken manifest must not stop the report
            missing.add(f"{manifest}: unreadable ({error})")
    else:
        missing.add(f"{ds}: no manifest.parquet (dataset not prepared)")
    # every stage's rows, render included (merged from the shards' lists): each rejection once
    data.rejections = _read_rejections(path / "rejected.csv", missing)
    for variant in variants:
        run = load_run(results, ds, variant, missing)
        if run is None:
            missing.add(f"{ds}/{variant}: no run (runs/{variant}/ missing)")
        else:
            data.runs[variant] = run
    return data


def _read_rejections(path: Path, missing: Missing) -> list[Rejection]:
    try:
        return read_rejections(path)
    except (OSError, KeyError, ValueError) as error:
        missing.add(f"{path}: unreadable ({error})")
        return []


# ---------------------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------------------
def png_data_uri(image: Image.Image) -> str:
    """``image`` as a base64 PNG data URI."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


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
        folder = self.frames_dir / clip_id
        files = sorted(folder.glob("[0-9][0-9].png")) if folder.is_dir() else []
        if len(files) <= self.count:
            return files
        picks = np.unique(np.round(np.linspace(0, len(files) - 1, self.count)).astype(int))
        return [files[i] for i in picks]

    def uri(self, clip_id: str) -> str:
        if clip_id not in self.cache:
            self.cache[clip_id] = png_data_uri(self.strip(clip_id))
        return self.cache[clip_id]

    def strip(self, clip_id: str) -> Image.Image:
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


def _figure_uri(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


PALETTE = ("#2557a7", "#d0582b", "#2e8b57", "#8e44ad", "#b8860b", "#c0392b")


def training_curves(run: Run) -> str | None:
    """Loss and validation R@1 per epoch of one run as a PNG data URI (None without history)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    rows = sorted((r for r in run.history if _number(r.get("epoch")) is not None), key=lambda r: r["epoch"])
    if not rows:
        return None
    epochs = [int(r["epoch"]) for r in rows]
    fig = Figure(figsize=(10.5, 3.4), dpi=110, layout="constrained")
    ax_loss, ax_val = fig.subplots(1, 2)
    plotted = 0
    for key, colour in zip(LOSS_KEYS, PALETTE, strict=False):
        values = [_number(r.get(key)) for r in rows]
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
        points = [(e, _number((v.get(direction) or {}).get("R@1"))) for e, v in val_rows]
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
    return _figure_uri(fig)


def best_epoch(run: Run) -> tuple[int, float] | None:
    """(epoch, validation t2m R@1) of the best validation epoch.

    Best by ``val_score`` (the trainer's model-selection score, the epoch of ``best.pt``) where the history
    records it, else by validation t2m R@1.
    """
    best: tuple[float, int, float] | None = None
    for row in run.history:
        val = row.get("val")
        epoch = _number(row.get("epoch"))
        if not isinstance(val, dict) or epoch is None:
            continue
        r1 = _number((val.get("t2m") or {}).get("R@1")) if isinstance(val.get("t2m"), dict) else None
        if r1 is None:
            continue
        score = _number(row.get("val_score"))
        key = score if score is not None else r1
        if best is None or key > best[0]:
            best = (key, int(epoch), r1)
    return None if best is None else (best[1], best[2])


# ---------------------------------------------------------------------------------------------------------
# HTML pieces
# ---------------------------------------------------------------------------------------------------------
def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _best(values: Iterable[float | None], metric: str) -> float | None:
    numbers = [v for v in values if v is not None]
    if len(numbers) < 2:
        return None  # nothing to compare with
    return min(numbers) if metric in LOWER_IS_BETTER else max(numbers)


@dataclass
class TableRow:
    """One row of a results table: our run or a published row (``quoted``, citing its table)."""

    label: str
    cell_id: str | None = None  # "{ds}/{variant}" for our runs, "table{n}/{method}" for the paper's
    values: Mapping[str, Mapping[str, Mapping[str, float | None]]] | None = None
    note: str | None = None  # shown across the row instead of numbers
    quoted: bool = False
    source: str | None = None
    citation: str | None = None  # "Table 1": shown beside a published row's method
    absent: str = "protocol not computed"  # shown for a protocol the row lacks


def run_row(run: Run, directions: Sequence[str]) -> TableRow:
    """Our run's row: numbers per protocol, or "not evaluated"."""
    if run.metrics is None:
        return TableRow(run.label, f"{run.dataset}/{run.variant}", note=NOT_EVALUATED)
    values = {
        p: {d: {m: run.metric(p, d, m) for m in METRICS} for d in directions}
        for p, _ in PROTOCOLS
        if run.has_protocol(p)
    }
    return TableRow(run.label, f"{run.dataset}/{run.variant}", values=values)


def published_row(row: PublishedRow) -> TableRow:
    """A row of the paper's tables, marked as quoted and citing its table."""
    values = {
        p: {d: {m: _number(row.values[p].get(d, {}).get(m)) for m in METRICS} for d in row.directions}
        for p, _ in PROTOCOLS
        if p in row.values
    }
    return TableRow(
        row.method,
        f"table{row.table}/{row.method}",
        values=values,
        quoted=True,
        source=row.source,
        citation=row.citation,
        absent=f"not in {row.citation}",
    )


def results_table(
    rows: Sequence[TableRow],
    directions: Sequence[str],
    caption: str,
    table_id: str,
    protocol_notes: Mapping[str, str] | None = None,
) -> str:
    """A paper-style table: protocol groups (a)-(d) x rows; per direction R@1 .. MedR; best value bold.

    ``protocol_notes`` (protocol -> HTML) are printed under a protocol's name (e.g. the threshold of (b)).
    """
    width = len(directions) * len(METRICS)
    head = ['<tr><th rowspan="2" class="proto">Protocol</th><th rowspan="2">Method</th>']
    head += [f'<th colspan="{len(METRICS)}" class="dir">{esc(DIRECTION_LABELS[d])}</th>' for d in directions]
    head.append("</tr><tr>")
    for _ in directions:
        head += [f"<th>{esc(m)}{'&#8595;' if m in LOWER_IS_BETTER else '&#8593;'}</th>" for m in METRICS]
    head.append("</tr>")
    body: list[str] = []
    for protocol, protocol_label in PROTOCOLS if rows else ():
        best = {
            (d, m): _best([r.values[protocol][d][m] if r.values and protocol in r.values else None for r in rows], m)
            for d in directions
            for m in METRICS
        }
        body.append(f'<tbody class="group" data-protocol="{protocol}">')
        for k, row in enumerate(rows):
            cells = []
            if k == 0:
                note = (protocol_notes or {}).get(protocol)
                extra = f'<div class="proto-note">{note}</div>' if note else ""
                cells.append(f'<td class="proto" rowspan="{len(rows)}">{esc(protocol_label)}{extra}</td>')
            cells.append(_method_cell(row))
            if row.note is not None:
                cells.append(f'<td class="na" colspan="{width}">{esc(row.note)}</td>')
            elif row.values is None or protocol not in row.values:
                cells.append(f'<td class="na" colspan="{width}">{esc(row.absent)}</td>')
            else:
                for d in directions:
                    for m in METRICS:
                        value = row.values[protocol][d][m]
                        text = fmt(value)
                        if value is not None and best[(d, m)] is not None and value == best[(d, m)]:
                            text = f"<b>{text}</b>"
                        attr = f' data-cell="{esc(row.cell_id)}/{protocol}/{d}/{m}"' if row.cell_id else ""
                        cells.append(f'<td class="num"{attr}>{text}</td>')
            body.append(f'<tr class="{"quoted" if row.quoted else "ours"}">{"".join(cells)}</tr>')
        body.append("</tbody>")
    return (
        f'<div class="tablewrap"><table class="results" id="{esc(table_id)}">'
        f"<caption>{caption}</caption><thead>{''.join(head)}</thead>{''.join(body)}</table></div>"
    )


def _method_cell(row: TableRow) -> str:
    if not row.quoted:
        return f'<td class="method">{esc(row.label)}</td>'
    badge = f'<span class="badge" title="{esc(row.source or "")}">paper, {esc(row.citation)}</span>'
    return f'<td class="method">{esc(row.label)} {badge}</td>'


def _sources_note(rows: Sequence[TableRow]) -> str:
    sources = list(dict.fromkeys(r.source for r in rows if r.quoted and r.source))
    if not sources:
        return ""
    items = "".join(f"<li>{esc(s)}</li>" for s in sources)
    notes = "".join(f"<li>{esc(n)}</li>" for n in TRANSCRIPTION_NOTES)
    return (
        f'<p class="note">Rows marked <span class="badge">paper, Table N</span> are {QUOTED}, not ours: the '
        f"numbers the paper prints, with its own protocols and encoders. Sources:</p>"
        f'<ul class="sources">{items}</ul><p class="note">Transcription:</p><ul class="sources">{notes}</ul>'
    )


# ---------------------------------------------------------------------------------------------------------
# What our runs used: encoders, dataset, caption similarity (so that no reader compares unlike things)
# ---------------------------------------------------------------------------------------------------------
PAPER_FRAMES = "CLIP ViT-B/32"
PAPER_TEXT = "DistilBERT"


@dataclass(frozen=True)
class Encoder:
    """One encoder of a run, in words, and whether it is the one the paper used (None: unknown)."""

    text: str
    as_paper: bool | None


def feature_cache_encoder(ds_path: Path) -> dict[str, Any] | None:
    """The ``encoder`` block of the dataset's current feature cache (``features/{current}/meta.json``)."""
    try:
        current = json.loads((ds_path / "features" / "current.json").read_text())
        meta = json.loads((ds_path / "features" / str(current["encoder_id"]) / "meta.json").read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None
    encoder = meta.get("encoder") if isinstance(meta, dict) else None
    return encoder if isinstance(encoder, dict) else None


def describe_frame_encoder(encoder: Mapping[str, Any]) -> Encoder:
    """A frame encoder description (the feature cache's ``encoder``) in words."""
    name = str(encoder.get("name", "unknown"))
    weights = encoder.get("weights") if isinstance(encoder.get("weights"), dict) else {}
    source = str(weights.get("source", "unknown weights"))
    if name.startswith("clip-vit-b32"):
        real = source not in ("random-init",) and not weights.get("fallback")
        return Encoder(f"{PAPER_FRAMES} (weights: {source})", real)
    if name.startswith("efficientnet-lite0"):
        why = "the offline fallback" if weights.get("fallback") else "chosen"
        return Encoder(f"EfficientNet-Lite0, ImageNet weights ({why} instead of the paper's {PAPER_FRAMES})", False)
    return Encoder(f"{name} (weights: {source})", False)


def describe_text_encoder(model: Mapping[str, Any]) -> Encoder:
    """The text backbone of a run (config.json ``model``: ``text_encoder_source``, ``model_config``) in words."""
    source = str(model.get("text_encoder_source") or "")
    config = model.get("model_config") if isinstance(model.get("model_config"), dict) else {}
    backbone = str(config.get("text_backbone") or "")
    if source.startswith("fallback:"):
        package = source[len("fallback:") :].split(" (")[0]  # the full reason is in the run's config.json
        return Encoder(f"MiniLM (the offline fallback: {PAPER_TEXT} was unavailable; {package})", False)
    if backbone == "distilbert" or "distilbert" in source.lower():
        return Encoder(f"{PAPER_TEXT} ({source or 'source not recorded'})", True)
    if backbone == "minilm" or "minilm" in source.lower():
        return Encoder(f"MiniLM ({source or 'source not recorded'}; the paper uses {PAPER_TEXT})", False)
    if backbone == "tiny" or source.startswith("tiny"):
        return Encoder(f"a tiny random BERT (tests only; the paper uses {PAPER_TEXT})", False)
    if not source and not backbone:
        return Encoder("not recorded", None)
    return Encoder(f"{backbone or source} ({source}; the paper uses {PAPER_TEXT})", False)


def run_encoders(run: Run, ds_path: Path) -> tuple[Encoder | None, Encoder]:
    """(frame encoder, text backbone) of a run; no frame encoder for a 2-modal run.

    The frame encoder comes from the run's config.json (``data.features``), else from the dataset's current
    feature cache; the text backbone from config.json ``model``.
    """
    config = run.config or {}
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    model = config.get("model") if isinstance(config.get("model"), dict) else {}
    text = describe_text_encoder(model) if config else Encoder("unknown (no config.json)", None)
    if run.variant != "3modal":
        return None, text
    features = data.get("features") if isinstance(data.get("features"), dict) else None
    if features is not None:
        return describe_frame_encoder(features), text
    cached = feature_cache_encoder(ds_path)
    if cached is not None:
        frames = describe_frame_encoder(cached)
        return Encoder(f"{frames.text}, read from the current feature cache", frames.as_paper), text
    return Encoder("unknown (not in config.json, no feature cache)", None), text


def encoders_note(ds: DatasetResults, runs: Sequence[Run]) -> str:
    """The sentence that says which dataset and encoders our rows used, and whether the paper's rows compare."""
    if not runs:
        return ""
    parts: list[str] = []
    unlike: set[str] = set()  # what differs from the paper
    for run in runs:
        frames, text = run_encoders(run, ds.path)
        said = f"frame encoder <b>{esc(frames.text)}</b>; " if frames is not None else "no frames; "
        parts.append(f"{esc(run.label)}: {said}text backbone <b>{esc(text.text)}</b>")
        if ds.name not in PAPER_DATASETS:
            unlike.add("dataset")
        if frames is not None and frames.as_paper is not True:
            unlike.add("frame encoder")
        if text.as_paper is not True:
            unlike.add("text backbone")
    if ds.name in PAPER_DATASETS:
        dataset = f"dataset <b>{esc(ds.label)}</b>, as in the paper"
    else:
        dataset = f"dataset <b>{esc(ds.label)}</b>, not the paper's HumanML3D or KIT-ML"
    differs = [kind for kind in ("dataset", "frame encoder", "text backbone") if kind in unlike]
    verdict = (
        f'<span class="unlike">Unlike the paper in: {", ".join(differs)}. The published rows are context, not a '
        "like-for-like comparison.</span>"
        if differs
        else '<span class="like">Same dataset and encoders as the paper.</span>'
    )
    return f'<p class="encoders">Our runs: {dataset}. {"; ".join(parts)}. {verdict}</p>'


def recorded_similarity(metrics: Mapping[str, Any] | None) -> tuple[str, float | None, list[str]]:
    """(scale, threshold ε, used for) of protocol (b) as metrics.json records it.

    Older metrics.json have only ``threshold``: then the scale is the one evaluation has always used.
    """
    metrics = metrics or {}
    record = metrics.get("caption_similarity")
    if isinstance(record, dict):
        threshold = _number(record.get("threshold"))
        used = record.get("used_for")
        used_for = [str(u) for u in used] if isinstance(used, list) else []
        return str(record.get("scale") or SCALE), threshold, used_for
    return SCALE, _number(metrics.get("threshold")), []


def epsilon_note(runs: Sequence[Run]) -> str | None:
    """HTML for protocol (b): the caption similarity scale and threshold our evaluated runs used."""
    seen: dict[tuple[str, float | None], list[str]] = {}
    for run in runs:
        if run.metrics is not None:
            scale, threshold, used_for = recorded_similarity(run.metrics)
            seen.setdefault((scale, threshold), used_for)
    if not seen:
        return None
    notes = []
    for (scale, threshold), used_for in seen.items():
        value = "?" if threshold is None else f"{threshold:g}"
        used = f" (also used for: {esc(', '.join(used_for))})" if used_for else ""
        notes.append(f"ours: s = {esc(scale)} &gt; &epsilon; = {value}{used}")
    return "; ".join(notes) + f"; paper: {DEFAULT_EPSILON:g}"


def _pre_json(obj: Any) -> str:
    return f"<pre>{esc(json.dumps(obj, indent=2, sort_keys=False, default=str))}</pre>"


# ---------------------------------------------------------------------------------------------------------
# Ablations: results/{ds}/ablation.json (the default study) and results/{ds}/ablation/*/ablation.json
# ---------------------------------------------------------------------------------------------------------
ABLATION_ARMS = ("3modal", "2modal")  # diff = 3modal - 2modal, paired by seed
VERDICT_CLASSES = {"better": "v-better", "worse": "v-worse", "within noise": "v-noise"}
ABLATION_HOWTO = (
    "No ablation yet: <code>snakemake ablation_demo</code> trains the 3-modal and 2-modal variants over several "
    "seeds and writes <code>results/demo/ablation.json</code>; other studies land in "
    "<code>results/{dataset}/ablation/{study}/ablation.json</code>."
)


@dataclass
class Ablation:
    """One study's ablation.json: 3-modal vs 2-modal over seeds, per protocol, direction and metric."""

    dataset: str
    study: str
    path: Path
    data: dict[str, Any]

    @property
    def results(self) -> dict[str, Any]:
        results = self.data.get("results")
        return results if isinstance(results, dict) else {}

    def cell(self, protocol: str, direction: str, metric: str) -> dict[str, Any]:
        """{"3modal": {...}, "2modal": {...}, "diff": {...}, "verdict": ...} of one metric ({} when absent)."""
        try:
            cell = self.results[protocol][direction][metric]
        except (KeyError, TypeError):
            return {}
        return cell if isinstance(cell, dict) else {}

    @property
    def seeds(self) -> list[Any]:
        seeds = self.data.get("seeds")
        return seeds if isinstance(seeds, list) else []


def load_ablations(results: Path, ds: str, missing: Missing) -> list[Ablation]:
    """The dataset's ablation studies: ``ablation.json`` first (the default study), then ``ablation/*/``."""
    paths = [results / ds / "ablation.json", *sorted((results / ds / "ablation").glob("*/ablation.json"))]
    studies: list[Ablation] = []
    for path in paths:
        data = _read_json(path, missing, None)
        if data is None:
            continue
        if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
            missing.add(f"{path}: not an ablation summary (no 'results')")
            continue
        study = str(data.get("study") or (path.parent.name if path.parent.name != ds else "default"))
        if any(s.study == study for s in studies):
            continue  # the same study found twice (e.g. also copied to ablation/default/)
        studies.append(Ablation(ds, study, path, data))
    return studies


def mean_std(stats: Any) -> str:
    """ "mean ± std" of a {mean, std} record; "—" when absent."""
    if not isinstance(stats, dict) or (mean := _number(stats.get("mean"))) is None:
        return "—"
    std = _number(stats.get("std"))
    return f"{mean:.2f} ± {std:.2f}" if std is not None else f"{mean:.2f}"


def interval(stats: Any) -> str:
    """ "[lo, hi]" of a record's ``ci``; "—" when absent."""
    ci = stats.get("ci") if isinstance(stats, dict) else None
    if not isinstance(ci, list | tuple) or len(ci) != 2 or any(_number(v) is None for v in ci):
        return "—"
    return f"[{float(ci[0]):.2f}, {float(ci[1]):.2f}]"


def verdict_cell(verdict: Any, attr: str = "") -> str:
    """A coloured verdict cell ("better", "worse", "within noise"); empty for 3-modal-only metrics."""
    if not isinstance(verdict, str):
        return f'<td class="na"{attr}>—</td>'
    css = VERDICT_CLASSES.get(verdict, "v-noise")
    return f'<td class="verdict {css}"{attr}>{esc(verdict)}</td>'


def ablation_table(ablation: Ablation, protocol: str, confidence: str) -> str:
    """Direction x metric: 3-modal and 2-modal mean ± std, the paired difference, its CI and the verdict."""
    by_direction = ablation.results.get(protocol)
    if not isinstance(by_direction, dict) or not by_direction:
        return '<p class="na">Not in ablation.json.</p>'
    directions = [d for d in DIRECTION_LABELS if d in by_direction] + sorted(set(by_direction) - set(DIRECTION_LABELS))
    rows: list[str] = []
    for direction in directions:
        metrics = [m for m in METRICS if ablation.cell(protocol, direction, m)]
        for k, metric in enumerate(metrics):
            cell = ablation.cell(protocol, direction, metric)
            key = f"{ablation.dataset}/{ablation.study}/{protocol}/{direction}/{metric}"
            first = (
                f'<td class="proto" rowspan="{len(metrics)}">{esc(DIRECTION_LABELS.get(direction, direction))}</td>'
                if k == 0
                else ""
            )
            arrow = "&#8595;" if metric in LOWER_IS_BETTER else "&#8593;"
            cells = [f'<td class="num" data-ablation="{esc(key)}/3modal">{mean_std(cell.get("3modal"))}</td>']
            if "2modal" in cell:
                cells.append(f'<td class="num" data-ablation="{esc(key)}/2modal">{mean_std(cell.get("2modal"))}</td>')
                cells.append(f'<td class="num" data-ablation="{esc(key)}/diff">{mean_std(cell.get("diff"))}</td>')
                cells.append(f'<td class="num">{interval(cell.get("diff"))}</td>')
                cells.append(verdict_cell(cell.get("verdict"), f' data-ablation="{esc(key)}/verdict"'))
            else:  # video directions: the 2-modal variant has no video
                cells.append(f'<td class="na" colspan="4" data-ablation="{esc(key)}/2modal">3-modal only</td>')
            rows.append(f"<tr>{first}<td>{esc(metric)}{arrow}</td>{''.join(cells)}</tr>")
    return (
        '<div class="tablewrap"><table class="ablation"><thead><tr><th>Direction</th><th>Metric</th>'
        "<th>3-modal<br>mean ± std</th><th>2-modal<br>mean ± std</th><th>3-modal &minus; 2-modal<br>mean ± std</th>"
        f"<th>{esc(confidence)} CI of the difference</th><th>Verdict</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
    )


def confidence_label(ablation: Ablation) -> str:
    """ "95%" from ablation.json's ``confidence`` (0.95); "CI" wording when absent."""
    level = _number(ablation.data.get("confidence"))
    return f"{100 * level:g}%" if level is not None else ""


def ablation_facts(ablation: Ablation) -> str:
    """What a study changes and with what: description, overrides, seeds, encoders, ε, where it was read."""
    data = ablation.data
    facts: list[str] = []
    if data.get("description"):
        facts.append(esc(data["description"]))
    overrides = data.get("overrides") if isinstance(data.get("overrides"), list) else []
    facts.append(
        "overrides: " + (" ".join(f"<code>{esc(o)}</code>" for o in overrides) if overrides else "none (defaults)")
    )
    seeds = ablation.seeds
    facts.append(f"{len(seeds)} seed(s): {esc(', '.join(map(str, seeds)))}" if seeds else "seeds not recorded")
    encoders = data.get("encoders") if isinstance(data.get("encoders"), dict) else {}
    if encoders:
        facts.append("encoders: " + "; ".join(f"{esc(kind)} <b>{esc(value)}</b>" for kind, value in encoders.items()))
    scale, threshold, _ = recorded_similarity(data)
    if threshold is not None:
        facts.append(f"protocol (b) and training targets: s = {esc(scale)}, &epsilon; = {threshold:g}")
    facts.append(f"read from <code>{esc(ablation.path)}</code>")
    return f'<p class="facts">{" &middot; ".join(facts)}</p>'


def ablation_summary(ablations: Sequence[Ablation]) -> str:
    """One row per study: t2m R@1 under protocol (a) for both arms, the difference and the verdict."""
    rows = []
    for ablation in ablations:
        cell = ablation.cell("normal", "t2m", "R@1")
        what = ablation.data.get("description") or ", ".join(map(str, ablation.data.get("overrides") or [])) or "—"
        key = f"{ablation.dataset}/{ablation.study}"
        rows.append(
            f"<tr><td>{esc(DATASET_LABELS.get(ablation.dataset, ablation.dataset))}</td><td>{esc(ablation.study)}</td>"
            f'<td>{esc(_shorten(str(what), 90))}</td><td class="num">{len(ablation.seeds)}</td>'
            + "".join(f'<td class="num">{mean_std(cell.get(arm))}</td>' for arm in ABLATION_ARMS)
            + f'<td class="num" data-summary="{esc(key)}/diff">{mean_std(cell.get("diff"))}</td>'
            + f'<td class="num">{interval(cell.get("diff"))}</td>'
            + verdict_cell(cell.get("verdict"), f' data-summary="{esc(key)}/verdict"')
            + "</tr>"
        )
    return (
        '<div class="tablewrap"><table class="ablation summary-ablation"><caption>Text-to-motion R@1, protocol (a), '
        "per study</caption><thead><tr><th>Dataset</th><th>Study</th><th>What it changes</th><th>Seeds</th>"
        "<th>3-modal</th><th>2-modal</th><th>3-modal &minus; 2-modal</th><th>CI</th><th>Verdict</th></tr></thead>"
        "<tbody>" + "".join(rows) + "</tbody></table></div>"
    )


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
    return _figure_uri(fig)


def _values(stats: Any) -> list[float]:
    values = stats.get("values") if isinstance(stats, dict) else None
    if not isinstance(values, list):
        return []
    return [v for v in map(_number, values) if v is not None]


# ---------------------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------------------
@dataclass
class ReportSummary:
    """What ``build_report`` wrote."""

    path: Path
    datasets: list[str]
    runs: list[str]
    missing: list[str]
    images: int
    size_bytes: int


class _Builder:
    def __init__(
        self,
        results: Path,
        datasets: Sequence[str] | None,
        variants: Sequence[str],
        avatar_backend: str | None,
        examples: int,
        frames_per_strip: int,
    ) -> None:
        self.results = results
        self.variants = tuple(variants)
        self.avatar_backend = avatar_backend
        self.examples = examples
        self.frames_per_strip = frames_per_strip
        self.missing = Missing()
        if not results.is_dir():
            self.missing.add(f"no results folder {results}")
        if datasets is None:
            datasets = [ds for ds in DATASETS if (results / ds).is_dir()]
            if not datasets:
                self.missing.add(f"no dataset results under {results} (looked for {', '.join(DATASETS)})")
        self.datasets = [load_dataset(results, ds, self.variants, self.missing) for ds in datasets]
        self.toc: list[tuple[str, str, int]] = []
        self.images = 0

    # -- helpers -------------------------------------------------------------------------------------------
    def section(self, anchor: str, title: str, level: int = 2) -> str:
        self.toc.append((anchor, title, level))
        return f'<h{level} id="{esc(anchor)}">{esc(title)}</h{level}>'

    def img(self, uri: str, alt: str, css: str = "") -> str:
        self.images += 1
        cls = f' class="{css}"' if css else ""
        return f'<img{cls} src="{uri}" alt="{esc(alt)}">'

    def figure(self, path: Path, alt: str, caption: str) -> str:
        """The PNG at ``path`` embedded with its caption; a note, listed as missing, when absent or unreadable."""
        if not path.exists():
            self.missing.add(f"{alt}: {path} missing")
            return f'<p class="na">No {esc(alt)}.</p>'
        try:
            with Image.open(path) as image:
                picture = image.convert("RGB")
            picture.thumbnail((1600, 1600), Image.Resampling.LANCZOS)
        except OSError as error:
            self.missing.add(f"{path}: unreadable ({error})")
            return f'<p class="na">{esc(alt)} unreadable.</p>'
        return f"<figure>{self.img(png_data_uri(picture), alt)}<figcaption>{caption}</figcaption></figure>"

    @property
    def runs(self) -> list[Run]:
        return [run for ds in self.datasets for variant in VARIANTS if (run := ds.runs.get(variant))]

    # -- sections ------------------------------------------------------------------------------------------
    def overview(self) -> str:
        rows = []
        for ds in self.datasets:
            counts = split_counts(ds.manifest) if ds.manifest is not None else {}
            clips = " / ".join(str(counts.get(s, 0)) for s in ("train", "val", "test")) if counts else "—"
            captions = str(caption_count(ds.manifest)) if ds.manifest is not None else "—"
            runs = [ds.runs[v] for v in VARIANTS if v in ds.runs] or [None]
            for k, run in enumerate(runs):
                first = (
                    f'<td rowspan="{len(runs)}">{esc(ds.label)}</td><td rowspan="{len(runs)}" class="num">{clips}</td>'
                    f'<td rowspan="{len(runs)}" class="num">{captions}</td>'
                    if k == 0
                    else ""
                )
                if run is None:
                    rows.append(f'<tr>{first}<td colspan="6" class="na">no training runs</td></tr>')
                    continue
                status = "evaluated" if run.metrics is not None else NOT_EVALUATED
                epochs = str(len(run.history)) if run.history else "—"
                cells = [fmt(run.metric("normal", d, "R@1")) for d in ("t2m", "m2t", "v2m")]
                rows.append(
                    f'<tr>{first}<td>{esc(run.label)}</td><td>{status}</td><td class="num">{epochs}</td>'
                    + "".join(f'<td class="num">{c}</td>' for c in cells)
                    + "</tr>"
                )
        if not rows:
            return '<p class="na">No dataset results found.</p>'
        return (
            '<div class="tablewrap"><table class="overview"><thead><tr><th>Dataset</th>'
            "<th>Clips train / val / test</th><th>Captions</th><th>Run</th><th>Status</th><th>Epochs</th>"
            "<th>t2m R@1 (a)</th><th>m2t R@1 (a)</th><th>v2m R@1 (a)</th></tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table></div>"
        )

    def results_section(self) -> str:
        parts = [self.section("results", "Retrieval results")]
        parts.append(
            "<p class=\"lead\">Test-split retrieval in the layout of the paper's Tables 1&ndash;4 (TMR's protocols): "
            "(a) the whole test split; (b) the same, counting a candidate as correct when its caption's sentence "
            "similarity to the query's exceeds the threshold &epsilon; (its scale and value are printed under the "
            "protocol); (c) the dissimilar subset of splits/nsim_test.txt (100 clips in TMR; fewer on small sets); "
            "(d) shuffled batches of 32, averaged. R@k in %, MedR = median rank. Every row of the paper's tables "
            "stands above ours, citing its table; the sentence above each table says which dataset and encoders "
            "our rows used. The best value of each column within a protocol is bold.</p>"
        )
        for ds in self.datasets:
            parts.append(self.section(f"results-{ds.name}", ds.label, 3))
            ours = [ds.runs[v] for v in VARIANTS if v in ds.runs]
            if not ours:
                parts.append(f'<p class="na">No training runs for {esc(ds.label)} yet.</p>')
            parts.append(encoders_note(ds, ours))
            parts.append(self.result_tables(ds.name, ds.label, ours))
        shown = {ds.name for ds in self.datasets}
        for name in PAPER_DATASETS:
            if name not in shown:
                label = DATASET_LABELS.get(name, name)
                parts.append(self.section(f"results-{name}", f"{label}: the paper's numbers (not run here)", 3))
                parts.append(self.result_tables(name, label, []))
        return "".join(parts)

    def result_tables(self, name: str, label: str, ours: Sequence[Run]) -> str:
        """The text-motion and video-motion tables of one dataset: the paper's rows, then ours."""
        published = [p for p in PUBLISHED if p.dataset == name]
        evaluated = [r for r in ours if r.metrics is not None]
        meta = evaluated[0].metrics if evaluated else {}
        detail = ""
        if evaluated:
            detail = f" (ours: split {esc(meta.get('split', 'test'))}"
            detail += f"; checkpoint {esc(meta['checkpoint'])})" if meta.get("checkpoint") else ")"
        notes = {"threshold": note} if (note := epsilon_note(evaluated)) else None
        parts: list[str] = []
        shown: list[TableRow] = []
        for directions, kind, variants in (
            (TEXT_DIRECTIONS, "text", VARIANTS),
            (VIDEO_DIRECTIONS, "video", ("3modal",)),
        ):
            rows = [published_row(p) for p in published if tuple(p.directions) == directions]
            rows += [run_row(r, directions) for r in ours if r.variant in variants]
            if not rows:
                continue
            what = " and ".join(DIRECTION_LABELS[d].lower() for d in directions)
            tables = sorted({p.citation for p in published if tuple(p.directions) == directions})
            cited = f"; paper: {', '.join(tables)}" if tables else ""
            parts.append(
                results_table(
                    rows,
                    directions,
                    f"{esc(label)}: {esc(what)} retrieval{esc(cited)}{detail}",
                    f"table-{name}-{kind}",
                    notes,
                )
            )
            shown += rows
        return "".join(parts) + _sources_note(shown)

    def ablation_section(self) -> str:
        parts = [self.section("ablation", "Ablation: 3-modal vs 2-modal over seeds")]
        parts.append(
            '<p class="lead">Does the video modality help? Each study trains both variants with the same seeds '
            "and settings; the difference is 3-modal &minus; 2-modal, paired by seed, with its spread over the "
            "seeds and the confidence interval of its mean. The verdict (as ablation.json records it) says "
            'whether 3-modal is <span class="verdict v-better">better</span>, '
            '<span class="verdict v-worse">worse</span> or <span class="verdict v-noise">within noise</span> '
            "(for MedR lower is better). Video directions exist for 3-modal only.</p>"
        )
        studies = [a for ds in self.datasets for a in load_ablations(self.results, ds.name, self.missing)]
        if not studies:
            return "".join(parts) + f'<p class="na">{ABLATION_HOWTO}</p>'
        parts.append(ablation_summary(studies))
        try:
            uri = ablation_figure(studies)
        except Exception as error:  # a plotting failure must not stop the report
            self.missing.add(f"ablation figure failed ({type(error).__name__}: {error})")
            uri = None
        if uri is not None:
            parts.append(
                f"<figure>{self.img(uri, 'ablation: per-seed R@1')}<figcaption>R@1 under protocol (a) of every seed "
                "(dots), their mean (bar), each seed's 3-modal and 2-modal runs joined by a line.</figcaption></figure>"
            )
        for ablation in studies:
            label = DATASET_LABELS.get(ablation.dataset, ablation.dataset)
            parts.append(self.section(f"ablation-{ablation.dataset}-{ablation.study}", f"{label}: {ablation.study}", 3))
            parts.append(ablation_facts(ablation))
            confidence = confidence_label(ablation)
            for k, (protocol, protocol_label) in enumerate(PROTOCOLS):
                table = ablation_table(ablation, protocol, confidence)
                if k == 0:
                    parts.append(f'<h4 class="plain">{esc(protocol_label)}</h4>{table}')
                else:
                    parts.append(f"<details><summary>{esc(protocol_label)}</summary>{table}</details>")
        return "".join(parts)

    def curves_section(self) -> str:
        parts = [self.section("curves", "Training curves")]
        runs = self.runs
        if not runs:
            return parts[0] + NO_RUNS
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            self.missing.add("training curves: matplotlib is not installed")
            return parts[0] + '<p class="na">matplotlib is not installed: no training curves.</p>'
        for run in runs:
            name = f"{run.dataset}/{run.variant}"
            parts.append(self.section(f"curves-{run.dataset}-{run.variant}", f"{run.label} on {self.label(run)}", 3))
            parts.append(run_facts(run))
            try:
                uri = training_curves(run)
            except Exception as error:  # a plotting failure must not stop the report
                self.missing.add(f"{name}: training curves failed ({type(error).__name__}: {error})")
                uri = None
            if uri is None:
                parts.append('<p class="na">No training history.</p>')
                continue
            parts.append(
                f"<figure>{self.img(uri, f'training curves of {name}')}<figcaption>{esc(name)}: training loss "
                "(total and its terms) and validation R@1 per epoch; the dashed line marks the best validation "
                "epoch (the one of best.pt).</figcaption></figure>"
            )
        return "".join(parts)

    def label(self, run: Run) -> str:
        return DATASET_LABELS.get(run.dataset, run.dataset)

    def qualitative_section(self) -> str:
        parts = [self.section("qualitative", "Qualitative retrieval")]
        parts.append(
            '<p class="lead">As in the paper\'s Figure 3: test queries and the top-3 retrieved motions, each shown '
            f"as {self.frames_per_strip} of its rendered frames. The ground-truth motion has a "
            '<span class="gt-key">green border</span>.</p>'
        )
        any_shown = False
        for ds in self.datasets:
            runs = [ds.runs[v] for v in ("3modal", "2modal") if v in ds.runs and ds.runs[v].retrieval]
            if not runs:
                continue
            any_shown = True
            strips = FrameStrips(ds.path / "frames", self.frames_per_strip)
            parts.append(self.section(f"qualitative-{ds.name}", ds.label, 3))
            parts.append(self.text_examples(ds, runs, strips))
            video_runs = [r for r in runs if r.variant == "3modal" and _entries(r.retrieval, "v2m")]
            if video_runs:
                parts.append(self.video_examples(ds, video_runs[0], strips))
            if strips.missing_clips:
                shown = ", ".join(sorted(set(strips.missing_clips))[:12])
                more = len(set(strips.missing_clips)) - 12
                self.missing.add(
                    f"{ds.name}: no rendered frames for {len(set(strips.missing_clips))} clip(s) in the qualitative "
                    f"figure (grey placeholders): {shown}{f' and {more} more' if more > 0 else ''}"
                )
        if not any_shown:
            parts.append('<p class="na">No retrieval results (retrieval.json) to show.</p>')
        return "".join(parts)

    def candidate(self, ds: DatasetResults, strips: FrameStrips, rank: int, item: Any, truth: str) -> str:
        try:
            clip_id, score = str(item[0]), _number(item[1])
        except (IndexError, TypeError, KeyError):
            return '<div class="cand na">malformed entry</div>'
        is_gt = clip_id == truth
        caption = ds.first_caption(clip_id)
        gt = ' <span class="gt-label">&#10003; ground truth</span>' if is_gt else ""
        cap = f'<div class="cap">&ldquo;{esc(_shorten(caption, 90))}&rdquo;</div>' if caption else ""
        return (
            f'<div class="cand"><div class="rank">#{rank}</div>'
            f"{self.img(strips.uri(clip_id), f'frames of {clip_id}', 'strip gt' if is_gt else 'strip')}"
            f'<div class="meta"><code>{esc(clip_id)}</code> &middot; score {fmt(score)}{gt}</div>{cap}</div>'
        )

    def result_row(self, ds: DatasetResults, strips: FrameStrips, label: str, entry: Mapping, truth: str) -> str:
        top = entry.get("top") if isinstance(entry.get("top"), list) else []
        cands = [self.candidate(ds, strips, k + 1, item, truth) for k, item in enumerate(top[:3])]
        if not cands:
            cands = ['<div class="cand na">no candidates</div>']
        return f'<div class="qual-row"><div class="who">{esc(label)}</div>{"".join(cands)}</div>'

    def text_examples(self, ds: DatasetResults, runs: Sequence[Run], strips: FrameStrips) -> str:
        lead = runs[0]
        queries = [e for e in _entries(lead.retrieval, "t2m") if isinstance(e.get("query"), str)][: self.examples]
        if not queries:
            return '<p class="na">No text-to-motion queries in retrieval.json.</p>'
        lookup = {
            run.variant: {(e.get("query"), e.get("caption")): e for e in _entries(run.retrieval, "t2m")} for run in runs
        }
        cards = ["<h4>Text-to-motion</h4>"]
        for entry in queries:
            key = (entry.get("query"), entry.get("caption"))
            rows = [
                self.result_row(ds, strips, run.label, lookup[run.variant][key], str(entry["query"]))
                for run in runs
                if key in lookup[run.variant]
            ]
            cards.append(
                f'<div class="qual-card"><div class="query">Query text: <q>{esc(entry.get("caption", ""))}</q> '
                f'<span class="meta">(ground truth <code>{esc(entry["query"])}</code>)</span></div>'
                f"{''.join(rows)}</div>"
            )
        return "".join(cards)

    def video_examples(self, ds: DatasetResults, run: Run, strips: FrameStrips) -> str:
        queries = [e for e in _entries(run.retrieval, "v2m") if isinstance(e.get("query"), str)][: self.examples]
        cards = ["<h4>Video-to-motion</h4>"]
        for entry in queries:
            query = str(entry["query"])
            video = self.img(strips.uri(query), f"query video {query}", "strip query")
            cards.append(
                f'<div class="qual-card"><div class="query">Query video <code>{esc(query)}</code> '
                f'(rendered test clip):</div><div class="qual-row"><div class="who">query video</div>'
                f'<div class="cand">{video}</div></div>{self.result_row(ds, strips, run.label, entry, query)}</div>'
            )
        return "".join(cards)

    def datasets_section(self) -> str:
        parts = [self.section("datasets", "Datasets")]
        if not self.datasets:
            return parts[0] + '<p class="na">No datasets.</p>'
        for ds in self.datasets:
            parts.append(self.section(f"dataset-{ds.name}", ds.label, 3))
            if ds.name == "demo":
                parts.append(f'<p class="attribution-inline">{esc(BANDAI_NAMCO_NOTICE[0])}</p>')
            if ds.manifest is None:
                parts.append('<p class="na">Not prepared: no manifest.parquet.</p>')
            else:
                parts.append(manifest_table(ds.manifest))
            parts.append(rejections_table(ds.rejections))
            if ds.manifest is not None:
                for name, alt, caption in RENDER_SHEETS:
                    parts.append(self.figure(self.results / ds.name / name, f"{ds.name} {alt}", caption))
        return "".join(parts)

    def avatars_section(self) -> str:
        parts = [self.section("avatars", "Avatars")]
        avatars = self.results / "avatars"
        if self.avatar_backend:
            sheets = [avatars / self.avatar_backend / "contact_sheet.png"]
        else:
            sheets = sorted(avatars.glob("*/contact_sheet.png")) or [avatars / "anny" / "contact_sheet.png"]
        for sheet in sheets:
            backend = sheet.parent.name
            caption = (
                f"The 13 avatars ({esc(backend)} backend) in rest pose. Every clip is rendered on one of them, chosen "
                "deterministically from the clip id; a mirrored clip uses its source's avatar."
            )
            parts.append(self.figure(sheet, f"avatar contact sheet ({backend})", caption))
        return "".join(parts)

    def configs_section(self) -> str:
        parts = [self.section("configs", "Run configurations")]
        runs = self.runs
        if not runs:
            return parts[0] + NO_RUNS
        for run in runs:
            name = f"{run.dataset}/{run.variant}"
            body = _pre_json(run.config) if run.config is not None else '<p class="na">no config.json</p>'
            extra = ""
            if run.metrics is not None:
                meta = {k: v for k, v in run.metrics.items() if k != "protocols"}
                extra = f"<p>metrics.json (besides the tables)</p>{_pre_json(meta)}"
            parts.append(f"<details><summary><code>{esc(name)}</code> config.json</summary>{body}{extra}</details>")
        return "".join(parts)

    def licenses_section(self) -> str:
        parts = [self.section("licenses", "Data and licenses")]
        if any(ds.name == "demo" for ds in self.datasets):
            notice = "".join(f"<p>{esc(line)}</p>" for line in BANDAI_NAMCO_NOTICE)
            parts.append(
                '<div class="attribution"><p><b>Bandai-Namco demo motions.</b> The demo dataset, and everything in '
                f"this report derived from it (captions, renders, features, models, numbers), comes from:</p>{notice}"
                "</div>"
            )
        parts.append(
            "<p>HumanML3D and KIT-ML derive from AMASS, which users download under its own license; the KIT-ML "
            "annotations and split lists are from the TMR repository (MIT), the HumanML3D split lists from the "
            "HumanML3D repository (MIT).</p>"
        )
        return "".join(parts)

    def missing_section(self) -> str:
        title = f"Missing ({len(self.missing)})"
        head = self.section("missing", title)
        if not self.missing.items:
            return head + '<p class="ok">Nothing missing: every input of the report was found.</p>'
        items = "".join(f"<li>{esc(item)}</li>" for item in self.missing.items)
        return head + f'<div class="callout missing"><ul>{items}</ul></div>'

    # -- assembly ------------------------------------------------------------------------------------------
    def build(self, title: str) -> str:
        overview = self.section("overview", "Overview") + self.overview()
        sections = [
            self.results_section(),
            self.ablation_section(),
            self.curves_section(),
            self.qualitative_section(),
            self.datasets_section(),
            self.avatars_section(),
            self.configs_section(),
            self.licenses_section(),
        ]
        missing = self.missing_section()  # last: the other sections add to it
        order = ["overview", "missing"]
        toc_entries = sorted(
            self.toc, key=lambda entry: order.index(entry[0]) if entry[0] in order else len(order)
        )  # overview and missing first, the rest in document order (sorted is stable)
        toc = render_toc(toc_entries)
        generated = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        datasets = ", ".join(ds.label for ds in self.datasets) or "none"
        header = (
            f'<header><h1>{esc(title)}</h1><p class="subtitle">Reproduction of LAVIMO (Yin et al., 2024): '
            f"text, video and motion in one embedding space. Datasets: {esc(datasets)}. Generated {esc(generated)} "
            f"by lavimo {esc(__version__)} from <code>{esc(self.results)}</code>.</p></header>"
        )
        body = header + toc + overview + missing + "".join(sections)
        return (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>{body}"
            f"<footer>lavimo {esc(__version__)} &middot; one self-contained file: images embedded, no scripts.</footer>"
            "</main></body></html>\n"
        )


def render_toc(entries: Sequence[tuple[str, str, int]]) -> str:
    items: list[str] = []
    open_sub = False
    for anchor, title, level in entries:
        if level == 2:
            if open_sub:
                items.append("</ol></li>")
                open_sub = False
            elif items:
                items.append("</li>")
            items.append(f'<li><a href="#{esc(anchor)}">{esc(title)}</a>')
        else:
            if not open_sub:
                items.append("<ol>")
                open_sub = True
            items.append(f'<li><a href="#{esc(anchor)}">{esc(title)}</a></li>')
    if open_sub:
        items.append("</ol>")
    if items:
        items.append("</li>")
    return f'<nav class="toc"><div class="toc-title">Contents</div><ol>{"".join(items)}</ol></nav>'


def _entries(retrieval: Any, key: str) -> list[Mapping[str, Any]]:
    if not isinstance(retrieval, dict) or not isinstance(retrieval.get(key), list):
        return []
    return [e for e in retrieval[key] if isinstance(e, dict)]


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def run_facts(run: Run) -> str:
    """A line of facts about a run: preset, epochs, best epoch, final loss, time, throughput."""
    facts: list[str] = []
    config = run.config or {}
    if config.get("preset"):
        facts.append(f"preset <b>{esc(config['preset'])}</b>")
    if run.history:
        facts.append(f"{len(run.history)} epochs")
        last = run.history[-1]
        if (loss := _number(last.get("loss"))) is not None:
            facts.append(f"final loss {loss:.4f}")
        seconds = sum(v for r in run.history if (v := _number(r.get("seconds"))) is not None)
        if seconds:
            facts.append(f"training time {_duration(seconds)}")
        speeds = [v for r in run.history if (v := _number(r.get("samples_per_s"))) is not None]
        if speeds:
            facts.append(f"{np.mean(speeds):.0f} samples/s")
    if (best := best_epoch(run)) is not None:
        facts.append(f"best validation epoch {best[0]} (t2m R@1 {best[1]:.2f})")
    source = (config.get("model") or {}).get("text_encoder_source") if isinstance(config.get("model"), dict) else None
    if source:
        facts.append(f"text encoder: {esc(source)}")
    return f'<p class="facts">{" &middot; ".join(facts)}</p>' if facts else ""


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def split_counts(manifest: Any) -> dict[str, int]:
    return {str(k): int(v) for k, v in manifest["split"].value_counts().items()}


def caption_count(manifest: Any) -> int:
    return int(sum(len(t) for t in manifest["texts"] if t is not None))


def manifest_table(manifest: Any) -> str:
    """Clips, mirrored clips, captions and hours per split."""
    frame = manifest
    mirrored = frame["mirrored_from"].fillna("").astype(str).str.len() > 0
    n_captions = frame["texts"].map(lambda t: 0 if t is None else len(t))
    seconds = frame["n_frames"].astype(float) / frame["fps"].astype(float).replace(0, np.nan)
    order = [s for s in ("train", "val", "test") if s in set(frame["split"])]
    order += sorted(set(frame["split"]) - set(order))
    rows = []
    for split in [*order, None]:
        mask = frame["split"] == split if split is not None else np.ones(len(frame), bool)
        label = split if split is not None else "all"
        cls = ' class="total"' if split is None else ""
        rows.append(
            f'<tr{cls}><td>{esc(label)}</td><td class="num">{int(mask.sum())}</td>'
            f'<td class="num">{int((mask & mirrored).sum())}</td><td class="num">{int(n_captions[mask].sum())}</td>'
            f'<td class="num">{np.nansum(seconds[mask]) / 3600:.2f}</td></tr>'
        )
    sources = frame["source"].nunique() if "source" in frame else 0
    avatars = frame["avatar"].nunique() if "avatar" in frame else 0
    return (
        '<div class="tablewrap"><table class="summary"><thead><tr><th>Split</th><th>Clips</th>'
        "<th>of which mirrored</th><th>Captions</th><th>Hours</th></tr></thead><tbody>"
        + "".join(rows)
        + f'</tbody></table></div><p class="facts">{sources} source files &middot; {avatars} avatars used</p>'
    )


def rejections_table(rejections: Sequence[Rejection]) -> str:
    """Rejected items by stage and reason, with counts and examples."""
    if not rejections:
        return '<p class="ok">Nothing rejected.</p>'
    groups: dict[tuple[str, str], list[str]] = {}
    for r in rejections:
        groups.setdefault((r.stage, r.reason), []).append(r.item)
    by_stage = Counter(r.stage for r in rejections)
    rows = []
    for (stage, reason), items in sorted(groups.items(), key=lambda kv: (kv[0][0], -len(kv[1]), kv[0][1])):
        examples = ", ".join(items[:3]) + (f" (+{len(items) - 3})" if len(items) > 3 else "")
        rows.append(
            f'<tr><td>{esc(stage)}</td><td>{esc(_shorten(reason, 160))}</td><td class="num">{len(items)}</td>'
            f"<td><code>{esc(examples)}</code></td></tr>"
        )
    totals = ", ".join(f"{stage}: {n}" for stage, n in sorted(by_stage.items()))
    return (
        f'<p class="facts">Rejected {len(rejections)} item(s) ({esc(totals)}), with reasons:</p>'
        '<div class="tablewrap"><table class="rejects"><thead><tr><th>Stage</th><th>Reason</th><th>Count</th>'
        "<th>Examples</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>"
    )


def build_report(
    results: str | os.PathLike[str],
    out: str | os.PathLike[str],
    datasets: Sequence[str] | None = None,
    variants: Sequence[str] = ("3modal", "2modal"),
    avatar_backend: str | None = None,
    examples: int = 3,
    frames_per_strip: int = 4,
    title: str = "LAVIMO reproduction report",
) -> ReportSummary:
    """Write the self-contained HTML report of ``results`` to ``out`` (atomically); see the module doc."""
    builder = _Builder(Path(results), datasets, variants, avatar_backend, examples, frames_per_strip)
    document = builder.build(title)
    save_text(out, document)
    return ReportSummary(
        Path(out),
        [ds.name for ds in builder.datasets],
        [f"{run.dataset}/{run.variant}" for run in builder.runs],
        list(builder.missing.items),
        builder.images,
        len(document.encode()),
    )


CSS = """
:root { --fg:#1c2230; --muted:#5d6678; --line:#dde2ea; --rule:#b7c0ce; --alt:#f5f7fa; --accent:#2557a7;
  --ok:#1f9d55; --warn:#fff7e0; --warnline:#e8b64a; }
* { box-sizing: border-box; }
html { background:#fff; }
body { margin:0; color:var(--fg); font:15px/1.55 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  "Noto Sans", "DejaVu Sans", sans-serif; }
main { max-width:1200px; margin:0 auto; padding:36px 32px 64px; }
header h1 { font-size:30px; letter-spacing:-0.01em; margin:0 0 6px; }
.subtitle { color:var(--muted); margin:0 0 22px; max-width:900px; }
h2 { font-size:22px; margin:46px 0 12px; padding-bottom:6px; border-bottom:2px solid var(--line); }
h3 { font-size:17px; margin:30px 0 8px; }
h4 { font-size:14px; text-transform:uppercase; letter-spacing:.06em; color:var(--muted); margin:20px 0 6px; }
a { color:var(--accent); text-decoration:none; } a:hover { text-decoration:underline; }
code { font-family:"SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size:.88em; }
nav.toc { background:var(--alt); border:1px solid var(--line); border-radius:10px; padding:14px 22px; }
.toc-title { font-weight:600; margin-bottom:4px; }
nav.toc > ol { columns:2; column-gap:40px; margin:0; padding-left:22px; }
nav.toc ol ol { padding-left:18px; font-size:.93em; }
nav.toc li { break-inside:avoid; }
.lead { color:var(--muted); max-width:980px; }
.tablewrap { overflow-x:auto; margin:12px 0 6px; }
table { border-collapse:collapse; font-variant-numeric:tabular-nums; font-size:13.5px; }
caption { caption-side:top; text-align:left; font-weight:600; padding:0 0 6px; }
th, td { padding:4px 9px; border-bottom:1px solid var(--line); }
thead th { background:var(--alt); font-weight:600; border-bottom:2px solid var(--rule); white-space:nowrap; }
thead th.dir { border-left:1px solid var(--rule); }
td.num { text-align:right; }
tbody.group tr:first-child td { border-top:2px solid var(--rule); }
td.proto { font-weight:600; white-space:nowrap; vertical-align:top; background:#fff; }
td.method { white-space:nowrap; }
tr.quoted td { color:var(--muted); background:#fafbfd; }
tr.quoted td.proto { color:var(--fg); background:#fff; }
td.na { color:var(--muted); font-style:italic; text-align:center; }
td.na .where { font-style:normal; font-size:12px; }
p.na { color:var(--muted); font-style:italic; }
p.ok { color:var(--ok); }
.badge { display:inline-block; font-size:10.5px; font-style:normal; font-weight:500; line-height:1.5;
  padding:0 7px; margin-left:6px; border-radius:9px; background:#edf1f8; color:#3a4a68; border:1px solid #d2dae8; }
.note { color:var(--muted); font-size:13px; margin:4px 0 0; }
ul.sources { color:var(--muted); font-size:12.5px; margin:2px 0 0; }
tr.total td { font-weight:600; border-top:2px solid var(--rule); }
.facts { color:var(--muted); font-size:13.5px; }
figure { margin:14px 0 22px; }
figcaption { color:var(--muted); font-size:13px; margin-top:4px; }
img { max-width:100%; height:auto; }
.callout.missing { background:var(--warn); border-left:4px solid var(--warnline); border-radius:6px;
  padding:8px 18px; font-size:13.5px; }
.callout.missing ul { margin:6px 0; padding-left:18px; }
.qual-card { border:1px solid var(--line); border-radius:10px; padding:12px 14px; margin:12px 0; }
.query { margin-bottom:8px; } .query q { font-weight:600; }
.qual-row { display:grid; grid-template-columns:120px repeat(3, minmax(0, 1fr)); gap:12px; align-items:start;
  padding:6px 0; border-top:1px dashed var(--line); }
.qual-row:first-of-type { border-top:none; }
.who { font-weight:600; font-size:13px; padding-top:18px; }
.cand { position:relative; font-size:12px; }
.cand .rank { font-weight:600; color:var(--muted); font-size:11.5px; }
.cand .meta, .query .meta { color:var(--muted); }
.cand .cap { color:var(--fg); font-style:italic; margin-top:2px; }
img.strip { display:block; width:100%; border:3px solid transparent; border-radius:5px; background:#fff; }
img.strip.gt { border-color:var(--ok); }
img.strip.query { border-color:#7a8597; }
.gt-label { color:var(--ok); font-weight:600; }
.gt-key { color:var(--ok); font-weight:600; }
details { border:1px solid var(--line); border-radius:8px; padding:6px 14px; margin:8px 0; }
details summary { cursor:pointer; }
pre { background:var(--alt); border-radius:6px; padding:10px 12px; overflow-x:auto; font-size:12px; line-height:1.45; }
.attribution { background:var(--alt); border-left:4px solid var(--accent); border-radius:6px; padding:6px 18px; }
.attribution-inline { font-size:13px; color:var(--muted); }
.proto-note { font-weight:400; font-size:11.5px; color:var(--muted); white-space:normal; max-width:170px;
  margin-top:4px; }
tbody.group tr.quoted + tr.ours td { border-top:2px solid var(--rule); }
tr.ours td.method { font-weight:600; }
p.encoders { background:var(--alt); border-left:4px solid var(--rule); border-radius:6px; padding:6px 14px;
  font-size:13.5px; }
.unlike { color:#9a4a00; font-weight:600; } .like { color:var(--ok); font-weight:600; }
table.ablation td.proto { font-weight:600; }
h4.plain { text-transform:none; letter-spacing:0; font-size:14.5px; color:var(--fg); }
.verdict { font-weight:600; border-radius:4px; padding:1px 6px; white-space:nowrap; }
td.verdict { text-align:center; }
.v-better { color:#fff; background:var(--ok); } .v-worse { color:#fff; background:#c0392b; }
.v-noise { color:#3a4a68; background:#e4e8ef; }
footer { margin-top:56px; padding-top:10px; border-top:1px solid var(--line); color:var(--muted); font-size:12.5px; }
"""
