"""The report's sections, one function each: ``(tree, page, ...) -> HTML``, adding to the page's contents as they go."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lavimo.report.common import (
    DIRECTION_LABELS,
    PROTOCOLS,
    TEXT_DIRECTIONS,
    VARIANTS,
    VIDEO_DIRECTIONS,
    dataset_label,
    esc,
    number,
)
from lavimo.report.encoders import encoders_note, epsilon_note, recorded_similarity
from lavimo.report.figures import ablation_figure, training_curves
from lavimo.report.load import Ablation, Run, Tree, best_epoch, load_ablations
from lavimo.report.page import Page
from lavimo.report.tables import (
    PAPER_DATASETS,
    PUBLISHED,
    TableRow,
    ablation_summary,
    ablation_table,
    confidence_label,
    manifest_table,
    overview_table,
    published_row,
    rejections_table,
    results_table,
    run_row,
    sources_note,
    study_comparison,
)

NO_RUNS = '<p class="na">No training runs.</p>'
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
RESULTS_LEAD = (
    "Test-split retrieval in the layout of the paper's Tables 1&ndash;4 (TMR's protocols): "
    "(a) the whole test split; (b) the same, counting a candidate as correct when its caption's sentence "
    "similarity to the query's exceeds the threshold &epsilon; (its scale and value are printed under the "
    "protocol); (c) the dissimilar subset of splits/nsim_test.txt (100 clips in TMR; fewer on small sets); "
    "(d) shuffled batches of 32, averaged. R@k in %, MedR = median rank. Every row of the paper's tables "
    "stands above ours, citing its table; the sentence above each table says which dataset and encoders "
    "our rows used. The best value of each column within a protocol is bold."
)
ABLATION_LEAD = (
    "Does the video modality help? Each study trains both variants with the same seeds and settings; the "
    "difference is 3-modal &minus; 2-modal, paired by seed, with its spread over the seeds and the confidence "
    "interval of its mean. The verdict (as ablation.json records it) says whether 3-modal is "
    '<span class="verdict v-better">better</span>, <span class="verdict v-worse">worse</span> or '
    '<span class="verdict v-noise">within noise</span> (for MedR lower is better). Video directions exist for '
    "3-modal only."
)
ABLATION_HOWTO = (
    "No ablation yet: <code>snakemake ablation_demo</code> trains the 3-modal and 2-modal variants over several "
    "seeds and writes <code>results/demo/ablation.json</code>; other studies land in "
    "<code>results/{dataset}/ablation/{study}/ablation.json</code>."
)

# The notice CC BY-NC 4.0 requires wherever the Bandai-Namco data (or anything derived from it) appears;
# the same text as resources/demo/ATTRIBUTION.md (a test keeps them in step).
BANDAI_NAMCO_NOTICE = (
    '"Bandai-Namco-Research-Motiondataset" by Bandai Namco Research Inc., licensed under CC BY-NC 4.0 '
    "(https://creativecommons.org/licenses/by-nc/4.0/). Changes: a subset of the clips was selected.",
    'Paper: Kobayashi et al., "Motion Capture Dataset for Practical Use of AI-based Motion Editing and '
    'Stylization", arXiv:2306.08861.',
    "Whatever is derived from it (captions, renders, features) is non-commercial and must carry that notice.",
)


def plotted(tree: Tree, what: str, plot: Callable[[Any], str | None], data: Any) -> str | None:
    """The data URI ``plot(data)`` makes; None, with ``what`` listed as failed, when plotting fails (a plotting
    failure must not stop the report)."""
    try:
        return plot(data)
    except Exception as error:
        tree.missing.add(f"{what} failed ({type(error).__name__}: {error})")
        return None


def overview_section(tree: Tree, page: Page) -> str:
    """Datasets and runs at a glance."""
    return page.heading("overview", "Overview") + overview_table(tree)


# ---- results ---------------------------------------------------------------------------------------------------
def result_tables(name: str, label: str, ours: Sequence[Run]) -> str:
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
        caption = f"{esc(label)}: {esc(what)} retrieval{esc(cited)}{detail}"
        parts.append(results_table(rows, directions, caption, f"table-{name}-{kind}", notes))
        shown += rows
    return "".join(parts) + sources_note(shown)


def results_section(tree: Tree, page: Page) -> str:
    """Per dataset, the paper-style tables; then the paper's numbers of datasets not run here."""
    parts = [page.opening("results", "Retrieval results", RESULTS_LEAD)]
    for ds in tree.datasets:
        parts.append(page.heading(f"results-{ds.name}", ds.label, 3))
        ours = ds.ordered_runs()
        if not ours:
            parts.append(f'<p class="na">No training runs for {esc(ds.label)} yet.</p>')
        parts.append(encoders_note(ds, ours))
        parts.append(result_tables(ds.name, ds.label, ours))
    shown = {ds.name for ds in tree.datasets}
    for name in PAPER_DATASETS:
        if name not in shown:
            label = dataset_label(name)
            parts.append(page.heading(f"results-{name}", f"{label}: the paper's numbers (not run here)", 3))
            parts.append(result_tables(name, label, []))
    return "".join(parts)


# ---- ablation ----------------------------------------------------------------------------------------------------
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
    similarity = recorded_similarity(data)
    if similarity.threshold is not None:
        facts.append(f"protocol (b): s = {esc(similarity.scale)} &gt; {similarity.threshold:g}")
    if (targets := similarity.targets_text()) is not None:
        facts.append(f"training targets: {targets}")
    facts.append(f"read from <code>{esc(ablation.path)}</code>")
    return f'<p class="facts">{" &middot; ".join(facts)}</p>'


def ablation_section(tree: Tree, page: Page) -> str:
    """The studies of every dataset: a summary row each, the per-seed figure, then per study a table per protocol."""
    parts = [page.opening("ablation", "Ablation: 3-modal vs 2-modal over seeds", ABLATION_LEAD)]
    studies = [a for ds in tree.datasets for a in load_ablations(tree.results, ds.name, tree.missing)]
    if not studies:
        return "".join(parts) + f'<p class="na">{ABLATION_HOWTO}</p>'
    parts.append(ablation_summary(studies))
    settings = {a.path: recorded_similarity(a.data).targets_text() or "—" for a in studies}
    parts.append(
        '<h4 class="plain">Studies side by side</h4><p class="facts">Every study and variant, R@1 and R@5 of the four '
        "directions, mean ± std over the seeds. The training-target studies (<code>targets_*</code>) change how "
        "caption similarity shapes the targets, for both variants; the default study is the paper's formula.</p>"
    )
    for k, (protocol, protocol_label) in enumerate(PROTOCOLS[:2]):
        table = study_comparison(studies, protocol, settings)
        parts.append(
            f'<h4 class="plain">{esc(protocol_label)}</h4>{table}'
            if k == 0
            else f"<details open><summary>{esc(protocol_label)}</summary>{table}</details>"
        )
    uri = plotted(tree, "ablation figure", ablation_figure, studies)
    if uri is not None:
        parts.append(
            f"<figure>{page.img(uri, 'ablation: per-seed R@1')}<figcaption>R@1 under protocol (a) of every seed "
            "(dots), their mean (bar), each seed's 3-modal and 2-modal runs joined by a line.</figcaption></figure>"
        )
    for ablation in studies:
        label = dataset_label(ablation.dataset)
        parts.append(page.heading(f"ablation-{ablation.dataset}-{ablation.study}", f"{label}: {ablation.study}", 3))
        parts.append(ablation_facts(ablation))
        confidence = confidence_label(ablation)
        for k, (protocol, protocol_label) in enumerate(PROTOCOLS):
            table = ablation_table(ablation, protocol, confidence)
            if k == 0:
                parts.append(f'<h4 class="plain">{esc(protocol_label)}</h4>{table}')
            else:
                parts.append(f"<details><summary>{esc(protocol_label)}</summary>{table}</details>")
    return "".join(parts)


# ---- training curves ---------------------------------------------------------------------------------------------
def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def run_facts(run: Run) -> str:
    """A line of facts about a run: preset, epochs, best epoch, final loss, time, throughput."""
    facts: list[str] = []
    config = run.config or {}
    if config.get("preset"):
        facts.append(f"preset <b>{esc(config['preset'])}</b>")
    if run.history:
        facts.append(f"{len(run.history)} epochs")
        last = run.history[-1]
        if (loss := number(last.get("loss"))) is not None:
            facts.append(f"final loss {loss:.4f}")
        seconds = sum(v for r in run.history if (v := number(r.get("seconds"))) is not None)
        if seconds:
            facts.append(f"training time {_duration(seconds)}")
        speeds = [v for r in run.history if (v := number(r.get("samples_per_s"))) is not None]
        if speeds:
            facts.append(f"{np.mean(speeds):.0f} samples/s")
    if (best := best_epoch(run)) is not None:
        facts.append(f"best validation epoch {best[0]} (t2m R@1 {best[1]:.2f})")
    source = (config.get("model") or {}).get("text_encoder_source") if isinstance(config.get("model"), dict) else None
    if source:
        facts.append(f"text encoder: {esc(source)}")
    return f'<p class="facts">{" &middot; ".join(facts)}</p>' if facts else ""


def curves_section(tree: Tree, page: Page) -> str:
    """Per run: its facts and its loss and validation curves."""
    head = page.heading("curves", "Training curves")
    runs = tree.runs
    if not runs:
        return head + NO_RUNS
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        tree.missing.add("training curves: matplotlib is not installed")
        return head + '<p class="na">matplotlib is not installed: no training curves.</p>'
    parts = [head]
    for run in runs:
        title = f"{run.label} on {dataset_label(run.dataset)}"
        parts.append(page.heading(f"curves-{run.dataset}-{run.variant}", title, 3))
        parts.append(run_facts(run))
        uri = plotted(tree, f"{run.name}: training curves", training_curves, run)
        if uri is None:
            parts.append('<p class="na">No training history.</p>')
            continue
        parts.append(
            f"<figure>{page.img(uri, f'training curves of {run.name}')}<figcaption>{esc(run.name)}: training loss "
            "(total and its terms) and validation R@1 per epoch; the dashed line marks the best validation "
            "epoch (the one of best.pt).</figcaption></figure>"
        )
    return "".join(parts)


# ---- data, avatars, configurations, licenses, missing --------------------------------------------------------------
def datasets_section(tree: Tree, page: Page) -> str:
    """Per dataset: clips per split, rejections with reasons, the render contact sheets."""
    head = page.heading("datasets", "Datasets")
    if not tree.datasets:
        return head + '<p class="na">No datasets.</p>'
    parts = [head]
    for ds in tree.datasets:
        parts.append(page.heading(f"dataset-{ds.name}", ds.label, 3))
        if ds.name == "demo":
            parts.append(f'<p class="attribution-inline">{esc(BANDAI_NAMCO_NOTICE[0])}</p>')
        if ds.manifest is None:
            parts.append('<p class="na">Not prepared: no manifest.parquet.</p>')
        else:
            parts.append(manifest_table(ds.manifest))
        parts.append(rejections_table(ds.rejections))
        if ds.manifest is not None:
            for name, alt, caption in RENDER_SHEETS:
                parts.append(page.figure(tree.results / ds.name / name, f"{ds.name} {alt}", caption))
    return "".join(parts)


def avatars_section(tree: Tree, page: Page, backend: str | None) -> str:
    """The avatar contact sheet of ``backend`` (default: of every backend found)."""
    parts = [page.heading("avatars", "Avatars")]
    avatars = tree.results / "avatars"
    if backend:
        sheets = [avatars / backend / "contact_sheet.png"]
    else:
        sheets = sorted(avatars.glob("*/contact_sheet.png")) or [avatars / "anny" / "contact_sheet.png"]
    for sheet in sheets:
        name = sheet.parent.name
        caption = (
            f"The 13 avatars ({esc(name)} backend) in rest pose. Every clip is rendered on one of them, chosen "
            "deterministically from the clip id; a mirrored clip uses its source's avatar."
        )
        parts.append(page.figure(sheet, f"avatar contact sheet ({name})", caption))
    return "".join(parts)


def _pre_json(obj: Any) -> str:
    return f"<pre>{esc(json.dumps(obj, indent=2, sort_keys=False, default=str))}</pre>"


def configs_section(tree: Tree, page: Page) -> str:
    """Per run, folded: its config.json and what metrics.json says besides the numbers."""
    head = page.heading("configs", "Run configurations")
    runs = tree.runs
    if not runs:
        return head + NO_RUNS
    parts = [head]
    for run in runs:
        body = _pre_json(run.config) if run.config is not None else '<p class="na">no config.json</p>'
        extra = ""
        if run.metrics is not None:
            meta = {k: v for k, v in run.metrics.items() if k != "protocols"}
            extra = f"<p>metrics.json (besides the tables)</p>{_pre_json(meta)}"
        parts.append(f"<details><summary><code>{esc(run.name)}</code> config.json</summary>{body}{extra}</details>")
    return "".join(parts)


def licenses_section(tree: Tree, page: Page) -> str:
    """The Bandai-Namco notice (where the demo data is shown) and where the other datasets come from."""
    parts = [page.heading("licenses", "Data and licenses")]
    if any(ds.name == "demo" for ds in tree.datasets):
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


def missing_section(tree: Tree, page: Page) -> str:
    """Everything the other sections could not show (render it last: they add to it)."""
    head = page.heading("missing", f"Missing ({len(tree.missing)})")
    if not tree.missing.items:
        return head + '<p class="ok">Nothing missing: every input of the report was found.</p>'
    items = "".join(f"<li>{esc(item)}</li>" for item in tree.missing.items)
    return head + f'<div class="callout missing"><ul>{items}</ul></div>'
