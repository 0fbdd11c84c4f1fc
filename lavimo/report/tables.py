"""The report's tables as HTML: paper-style results (the paper's rows beside ours), overview, data, ablations."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lavimo.io import Rejection
from lavimo.published import TRANSCRIPTION_NOTES, PublishedRow, published_rows
from lavimo.report.common import (
    ABLATION_ARMS,
    DIRECTION_LABELS,
    LOWER_IS_BETTER,
    METRICS,
    NOT_EVALUATED,
    PROTOCOLS,
    arrow,
    dataset_label,
    esc,
    fmt,
    number,
    shorten,
)
from lavimo.report.load import Ablation, Run, Tree

QUOTED = "quoted from the paper"

# The paper's Tables 1-4, every row (lavimo/published.py holds the numbers).
PUBLISHED: tuple[PublishedRow, ...] = tuple(published_rows())
PAPER_DATASETS: tuple[str, ...] = tuple(dict.fromkeys(row.dataset for row in PUBLISHED))

VERDICT_CLASSES = {"better": "v-better", "worse": "v-worse", "within noise": "v-noise"}


def _table(css: str, head: str, rows: Iterable[str], caption: str = "") -> str:
    """A scrollable table: ``head`` is the header row's cells (``<th>`` ...), ``rows`` the body's ``<tr>``s."""
    caption = f"<caption>{caption}</caption>" if caption else ""
    return (
        f'<div class="tablewrap"><table class="{css}">{caption}<thead><tr>{head}</tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table></div>"
    )


# ---- results: the paper's rows and ours ---------------------------------------------------------------------
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
        return TableRow(run.label, run.name, note=NOT_EVALUATED)
    values = {
        p: {d: {m: run.metric(p, d, m) for m in METRICS} for d in directions}
        for p, _ in PROTOCOLS
        if run.has_protocol(p)
    }
    return TableRow(run.label, run.name, values=values)


def published_row(row: PublishedRow) -> TableRow:
    """A row of the paper's tables, marked as quoted and citing its table."""
    values = {
        p: {d: {m: number(row.values[p].get(d, {}).get(m)) for m in METRICS} for d in row.directions}
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


def _best(values: Iterable[float | None], metric: str) -> float | None:
    numbers = [v for v in values if v is not None]
    if len(numbers) < 2:
        return None  # nothing to compare with
    return min(numbers) if metric in LOWER_IS_BETTER else max(numbers)


def _method_cell(row: TableRow) -> str:
    if not row.quoted:
        return f'<td class="method">{esc(row.label)}</td>'
    badge = f'<span class="badge" title="{esc(row.source or "")}">paper, {esc(row.citation)}</span>'
    return f'<td class="method">{esc(row.label)} {badge}</td>'


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
        head += [f"<th>{esc(m)}{arrow(m)}</th>" for m in METRICS]
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


def sources_note(rows: Sequence[TableRow]) -> str:
    """Where the quoted rows among ``rows`` come from, and how they were transcribed ("" without any)."""
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


# ---- overview and data ---------------------------------------------------------------------------------------
def split_counts(manifest: Any) -> dict[str, int]:
    """Clips per split of a manifest."""
    return {str(k): int(v) for k, v in manifest["split"].value_counts().items()}


def caption_count(manifest: Any) -> int:
    """Captions of all clips of a manifest."""
    return int(sum(len(t) for t in manifest["texts"] if t is not None))


def overview_table(tree: Tree) -> str:
    """Per dataset: clips per split and captions; per run: status, epochs and R@1 under protocol (a)."""
    rows = []
    for ds in tree.datasets:
        counts = split_counts(ds.manifest) if ds.manifest is not None else {}
        clips = " / ".join(str(counts.get(s, 0)) for s in ("train", "val", "test")) if counts else "—"
        captions = str(caption_count(ds.manifest)) if ds.manifest is not None else "—"
        runs: list[Run | None] = [*ds.ordered_runs()] or [None]
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
    head = (
        "<th>Dataset</th><th>Clips train / val / test</th><th>Captions</th><th>Run</th><th>Status</th>"
        "<th>Epochs</th><th>t2m R@1 (a)</th><th>m2t R@1 (a)</th><th>v2m R@1 (a)</th>"
    )
    return _table("overview", head, rows)


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
    head = "<th>Split</th><th>Clips</th><th>of which mirrored</th><th>Captions</th><th>Hours</th>"
    facts = f'<p class="facts">{sources} source files &middot; {avatars} avatars used</p>'
    return _table("summary", head, rows) + facts


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
            f'<tr><td>{esc(stage)}</td><td>{esc(shorten(reason, 160))}</td><td class="num">{len(items)}</td>'
            f"<td><code>{esc(examples)}</code></td></tr>"
        )
    totals = ", ".join(f"{stage}: {n}" for stage, n in sorted(by_stage.items()))
    head = "<th>Stage</th><th>Reason</th><th>Count</th><th>Examples</th>"
    lead = f'<p class="facts">Rejected {len(rejections)} item(s) ({esc(totals)}), with reasons:</p>'
    return lead + _table("rejects", head, rows)


# ---- ablations -------------------------------------------------------------------------------------------------
def mean_std(stats: Any) -> str:
    """ "mean ± std" of a {mean, std} record; "—" when absent."""
    if not isinstance(stats, dict) or (mean := number(stats.get("mean"))) is None:
        return "—"
    std = number(stats.get("std"))
    return f"{mean:.2f} ± {std:.2f}" if std is not None else f"{mean:.2f}"


def interval(stats: Any) -> str:
    """ "[lo, hi]" of a record's ``ci``; "—" when absent."""
    ci = stats.get("ci") if isinstance(stats, dict) else None
    if not isinstance(ci, list | tuple) or len(ci) != 2 or any(number(v) is None for v in ci):
        return "—"
    return f"[{float(ci[0]):.2f}, {float(ci[1]):.2f}]"


def verdict_cell(verdict: Any, attr: str = "") -> str:
    """A coloured verdict cell ("better", "worse", "within noise"); empty for 3-modal-only metrics."""
    if not isinstance(verdict, str):
        return f'<td class="na"{attr}>—</td>'
    css = VERDICT_CLASSES.get(verdict, "v-noise")
    return f'<td class="verdict {css}"{attr}>{esc(verdict)}</td>'


def confidence_label(ablation: Ablation) -> str:
    """ "95%" from ablation.json's ``confidence`` (0.95); "" when absent."""
    level = number(ablation.data.get("confidence"))
    return f"{100 * level:g}%" if level is not None else ""


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
            cells = [f'<td class="num" data-ablation="{esc(key)}/3modal">{mean_std(cell.get("3modal"))}</td>']
            if "2modal" in cell:
                cells.append(f'<td class="num" data-ablation="{esc(key)}/2modal">{mean_std(cell.get("2modal"))}</td>')
                cells.append(f'<td class="num" data-ablation="{esc(key)}/diff">{mean_std(cell.get("diff"))}</td>')
                cells.append(f'<td class="num">{interval(cell.get("diff"))}</td>')
                cells.append(verdict_cell(cell.get("verdict"), f' data-ablation="{esc(key)}/verdict"'))
            else:  # video directions: the 2-modal variant has no video
                cells.append(f'<td class="na" colspan="4" data-ablation="{esc(key)}/2modal">3-modal only</td>')
            rows.append(f"<tr>{first}<td>{esc(metric)}{arrow(metric)}</td>{''.join(cells)}</tr>")
    head = (
        "<th>Direction</th><th>Metric</th><th>3-modal<br>mean ± std</th><th>2-modal<br>mean ± std</th>"
        f"<th>3-modal &minus; 2-modal<br>mean ± std</th><th>{esc(confidence)} CI of the difference</th><th>Verdict</th>"
    )
    return _table("ablation", head, rows)


COMPARED = tuple((d, m) for d in ("t2m", "m2t", "v2m", "m2v") for m in ("R@1", "R@5"))


def study_comparison(ablations: Sequence[Ablation], protocol: str, settings: Mapping[Path, str]) -> str:
    """The studies side by side under one protocol: a row per study and variant, R@1 and R@5 of every direction
    (mean ± std over seeds); ``settings`` gives each study's training targets in words (HTML), keyed by path."""
    rows = []
    for ablation in ablations:
        for arm in ABLATION_ARMS:
            cells = [ablation.cell(protocol, d, m).get(arm) for d, m in COMPARED]
            if not any(isinstance(c, dict) for c in cells):
                continue
            key = f"{ablation.dataset}/{ablation.study}/{protocol}/{arm}"
            rows.append(
                f"<tr><td>{esc(dataset_label(ablation.dataset))}</td><td>{esc(ablation.study)}</td>"
                f"<td>{settings.get(ablation.path, '—')}</td><td>{esc(arm)}</td>"
                f'<td class="num">{len(ablation.seeds)}</td>'
                + "".join(
                    f'<td class="num" data-compare="{esc(key)}/{d}/{m}">{mean_std(c)}</td>'
                    for (d, m), c in zip(COMPARED, cells, strict=True)
                )
                + "</tr>"
            )
    head = "<th>Dataset</th><th>Study</th><th>Training targets</th><th>Variant</th><th>Seeds</th>" + "".join(
        f"<th>{esc(d)} {esc(m)}{arrow(m)}</th>" for d, m in COMPARED
    )
    return _table("ablation compare", head, rows)


def ablation_summary(ablations: Sequence[Ablation]) -> str:
    """One row per study: t2m R@1 under protocol (a) for both arms, the difference and the verdict."""
    rows = []
    for ablation in ablations:
        cell = ablation.cell("normal", "t2m", "R@1")
        what = ablation.data.get("description") or ", ".join(map(str, ablation.data.get("overrides") or [])) or "—"
        key = f"{ablation.dataset}/{ablation.study}"
        rows.append(
            f"<tr><td>{esc(dataset_label(ablation.dataset))}</td><td>{esc(ablation.study)}</td>"
            f'<td>{esc(shorten(str(what), 90))}</td><td class="num">{len(ablation.seeds)}</td>'
            + "".join(f'<td class="num">{mean_std(cell.get(arm))}</td>' for arm in ABLATION_ARMS)
            + f'<td class="num" data-summary="{esc(key)}/diff">{mean_std(cell.get("diff"))}</td>'
            + f'<td class="num">{interval(cell.get("diff"))}</td>'
            + verdict_cell(cell.get("verdict"), f' data-summary="{esc(key)}/verdict"')
            + "</tr>"
        )
    head = (
        "<th>Dataset</th><th>Study</th><th>What it changes</th><th>Seeds</th><th>3-modal</th><th>2-modal</th>"
        "<th>3-modal &minus; 2-modal</th><th>CI</th><th>Verdict</th>"
    )
    return _table("ablation summary-ablation", head, rows, "Text-to-motion R@1, protocol (a), per study")
