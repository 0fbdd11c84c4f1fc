"""The qualitative retrieval section (the paper's Figure 3): queries and their top-3 motions as frame strips."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lavimo.layout import frames_dir
from lavimo.report.common import esc, fmt, number, shorten
from lavimo.report.figures import FrameStrips
from lavimo.report.load import DatasetResults, Run, Tree
from lavimo.report.page import Page

SHOWN = 3  # candidates per query


def entries(retrieval: Any, key: str) -> list[Mapping[str, Any]]:
    """The well-formed entries of one direction (``t2m``, ``v2m``) of a run's retrieval.json."""
    if not isinstance(retrieval, dict) or not isinstance(retrieval.get(key), list):
        return []
    return [e for e in retrieval[key] if isinstance(e, dict)]


def candidate(page: Page, ds: DatasetResults, strips: FrameStrips, rank: int, item: Any, truth: str) -> str:
    """One retrieved motion: its frames (framed green when it is the ground truth), id, score and caption."""
    try:
        clip_id, score = str(item[0]), number(item[1])
    except (IndexError, TypeError, KeyError):
        return '<div class="cand na">malformed entry</div>'
    is_gt = clip_id == truth
    caption = ds.first_caption(clip_id)
    gt = ' <span class="gt-label">&#10003; ground truth</span>' if is_gt else ""
    cap = f'<div class="cap">&ldquo;{esc(shorten(caption, 90))}&rdquo;</div>' if caption else ""
    return (
        f'<div class="cand"><div class="rank">#{rank}</div>'
        f"{page.img(strips.uri(clip_id), f'frames of {clip_id}', 'strip gt' if is_gt else 'strip')}"
        f'<div class="meta"><code>{esc(clip_id)}</code> &middot; score {fmt(score)}{gt}</div>{cap}</div>'
    )


def result_row(
    page: Page, ds: DatasetResults, strips: FrameStrips, label: str, entry: Mapping[str, Any], truth: str
) -> str:
    """A run's top candidates for one query, in a row labelled with the run."""
    top = entry.get("top") if isinstance(entry.get("top"), list) else []
    cands = [candidate(page, ds, strips, k + 1, item, truth) for k, item in enumerate(top[:SHOWN])]
    if not cands:
        cands = ['<div class="cand na">no candidates</div>']
    return f'<div class="qual-row"><div class="who">{esc(label)}</div>{"".join(cands)}</div>'


def text_examples(page: Page, ds: DatasetResults, runs: Sequence[Run], strips: FrameStrips, examples: int) -> str:
    """Text-to-motion: the first run's first ``examples`` queries, each with every run's candidates."""
    queries = [e for e in entries(runs[0].retrieval, "t2m") if isinstance(e.get("query"), str)][:examples]
    if not queries:
        return '<p class="na">No text-to-motion queries in retrieval.json.</p>'
    lookup = {
        run.variant: {(e.get("query"), e.get("caption")): e for e in entries(run.retrieval, "t2m")} for run in runs
    }
    cards = ["<h4>Text-to-motion</h4>"]
    for entry in queries:
        key = (entry.get("query"), entry.get("caption"))
        rows = [
            result_row(page, ds, strips, run.label, lookup[run.variant][key], str(entry["query"]))
            for run in runs
            if key in lookup[run.variant]
        ]
        cards.append(
            f'<div class="qual-card"><div class="query">Query text: <q>{esc(entry.get("caption", ""))}</q> '
            f'<span class="meta">(ground truth <code>{esc(entry["query"])}</code>)</span></div>'
            f"{''.join(rows)}</div>"
        )
    return "".join(cards)


def video_examples(page: Page, ds: DatasetResults, run: Run, strips: FrameStrips, examples: int) -> str:
    """Video-to-motion: the query clip's frames, then the run's candidates."""
    queries = [e for e in entries(run.retrieval, "v2m") if isinstance(e.get("query"), str)][:examples]
    cards = ["<h4>Video-to-motion</h4>"]
    for entry in queries:
        query = str(entry["query"])
        video = page.img(strips.uri(query), f"query video {query}", "strip query")
        cards.append(
            f'<div class="qual-card"><div class="query">Query video <code>{esc(query)}</code> '
            f'(rendered test clip):</div><div class="qual-row"><div class="who">query video</div>'
            f'<div class="cand">{video}</div></div>{result_row(page, ds, strips, run.label, entry, query)}</div>'
        )
    return "".join(cards)


def qualitative_section(tree: Tree, page: Page, examples: int, frames_per_strip: int) -> str:
    """Per dataset with retrieval.json: text-to-motion (both variants) and video-to-motion (3-modal) examples."""
    lead = (
        f"As in the paper's Figure 3: test queries and the top-3 retrieved motions, each shown as {frames_per_strip} "
        'of its rendered frames. The ground-truth motion has a <span class="gt-key">green border</span>.'
    )
    parts = [page.opening("qualitative", "Qualitative retrieval", lead)]
    any_shown = False
    for ds in tree.datasets:
        runs = [run for run in ds.ordered_runs(("3modal", "2modal")) if run.retrieval]
        if not runs:
            continue
        any_shown = True
        strips = FrameStrips(frames_dir(ds.path), frames_per_strip)
        parts.append(page.heading(f"qualitative-{ds.name}", ds.label, 3))
        parts.append(text_examples(page, ds, runs, strips, examples))
        video_runs = [r for r in runs if r.variant == "3modal" and entries(r.retrieval, "v2m")]
        if video_runs:
            parts.append(video_examples(page, ds, video_runs[0], strips, examples))
        if strips.missing_clips:
            absent = sorted(set(strips.missing_clips))
            shown = ", ".join(absent[:12])
            more = len(absent) - 12
            tree.missing.add(
                f"{ds.name}: no rendered frames for {len(absent)} clip(s) in the qualitative "
                f"figure (grey placeholders): {shown}{f' and {more} more' if more > 0 else ''}"
            )
    if not any_shown:
        parts.append('<p class="na">No retrieval results (retrieval.json) to show.</p>')
    return "".join(parts)
