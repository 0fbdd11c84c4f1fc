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

and writes ONE HTML file: every image is a base64 PNG data URI, the CSS (``report.css``) is inline, there is no
script and nothing is fetched. Whatever is missing is drawn as a placeholder ("not evaluated", a grey frame, ...)
and listed in the report's "Missing" note; a missing or unreadable input never stops the report.

The parts: ``load`` (reading the tree), ``figures`` (images), ``tables``, ``encoders`` (what our runs used),
``sections`` and ``qualitative`` (one function per section), ``page`` (contents, images, the document).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lavimo.io import save_text
from lavimo.report.common import NOT_EVALUATED, PROTOCOLS
from lavimo.report.load import load_tree
from lavimo.report.page import Page
from lavimo.report.qualitative import qualitative_section
from lavimo.report.sections import (
    BANDAI_NAMCO_NOTICE,
    ablation_section,
    avatars_section,
    configs_section,
    curves_section,
    datasets_section,
    licenses_section,
    missing_section,
    overview_section,
    results_section,
)
from lavimo.report.tables import PUBLISHED, QUOTED

__all__ = ["BANDAI_NAMCO_NOTICE", "NOT_EVALUATED", "PROTOCOLS", "PUBLISHED", "QUOTED", "ReportSummary", "build_report"]


@dataclass
class ReportSummary:
    """What ``build_report`` wrote."""

    path: Path
    datasets: list[str]
    runs: list[str]
    missing: list[str]
    images: int
    size_bytes: int


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
    """Write the self-contained HTML report of ``results`` to ``out`` (atomically); see the package doc."""
    tree = load_tree(Path(results), datasets, variants)
    page = Page(tree.missing)
    overview = overview_section(tree, page)
    sections = [  # in this order: each adds to the contents and to what is missing
        results_section(tree, page),
        ablation_section(tree, page),
        curves_section(tree, page),
        qualitative_section(tree, page, examples, frames_per_strip),
        datasets_section(tree, page),
        avatars_section(tree, page, avatar_backend),
        configs_section(tree, page),
        licenses_section(tree, page),
    ]
    missing = missing_section(tree, page)  # last: the other sections add to it
    document = page.document(title, tree, overview + missing + "".join(sections))
    save_text(out, document)
    return ReportSummary(
        Path(out),
        [ds.name for ds in tree.datasets],
        [run.name for run in tree.runs],
        list(tree.missing.items),
        page.images,
        len(document.encode()),
    )
