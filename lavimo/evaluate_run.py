"""Evaluating a trained run: embed a split with its model and score it with :mod:`lavimo.evaluate` (torch side).

Writes metrics.json, metrics.csv, retrieval.json (a few qualitative queries) and test_embeddings.npz into the
run folder, or into ``{run}/evaluations/...`` for any other dataset, split or checkpoint.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from lavimo.checkpoints import MODEL_FILE, check_checkpoint_fits_run
from lavimo.embed import embed_dataset, load_trained
from lavimo.evaluate import cosine_sims, evaluate_embeddings, write_metrics
from lavimo.io import LavimoInputError, read_json, save_json, save_npz
from lavimo.layout import CURRENT, features_dir
from lavimo.retrieval_data import RetrievalDataset, split_ids
from lavimo.text.sentences import open_sentence_cache
from lavimo.text.similarity import DEFAULT_PROTOCOL_B_SCALE, check_threshold, similarity_record
from lavimo.video.cache import FeatureCache

log = logging.getLogger(__name__)

QUALITATIVE_QUERIES = 8  # queries kept in retrieval.json (for the report's figure)
TOP_K = 5


def evaluation_dir(run_dir: Path, trained_on: Path, dataset_dir: Path, split: str, checkpoint: Path) -> Path:
    """Where an evaluation is written: the run folder itself only for its own test split and model.pt.

    Any other dataset, split or checkpoint goes to ``{run}/evaluations/{dataset}_{split}[_{checkpoint}]/`` so
    that it never replaces the run's own metrics.
    """
    own_data = dataset_dir.resolve() == trained_on.resolve()
    own_checkpoint = checkpoint.resolve() == (run_dir / MODEL_FILE).resolve()
    if own_data and split == "test" and own_checkpoint:
        return run_dir
    name = f"{dataset_dir.resolve().name}_{split}" + ("" if own_checkpoint else f"_{checkpoint.stem}")
    return run_dir / "evaluations" / name


def evaluate_run(
    run_dir: str | os.PathLike[str],
    dataset_dir: str | os.PathLike[str] | None = None,
    split: str = "test",
    threshold: float = 0.8,
    checkpoint: str = MODEL_FILE,
    device: str = "auto",
    threshold_scale: str = DEFAULT_PROTOCOL_B_SCALE,
) -> dict[str, Any]:
    """Embed a run's test split and write metrics.json, metrics.csv, retrieval.json and test_embeddings.npz.

    Video directions use the clips that have cached video features (all of them, normally). Returns what
    metrics.json holds.
    """
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise LavimoInputError(config_path, "no run config: train the run first")
    config = read_json(config_path, "run config")
    threshold = check_threshold(threshold, threshold_scale)
    dataset_dir = Path(dataset_dir or config["dataset_dir"])
    model_path = Path(checkpoint) if Path(checkpoint).is_file() else run_dir / checkpoint
    out_dir = evaluation_dir(run_dir, Path(config["dataset_dir"]), dataset_dir, split, model_path)
    if out_dir != run_dir:
        log.info("not the run's own evaluation (dataset, split or checkpoint differ): writing to %s", out_dir)
    model, stats, state = load_trained(model_path, device)
    check_checkpoint_fits_run(model_path, state, config)
    extra = {
        "dataset": config.get("dataset", dataset_dir.name),
        "dataset_dir": str(dataset_dir),
        "variant": config.get("variant"),
        "split": split,
        "threshold": threshold,
        "caption_similarity": similarity_record(
            (threshold, threshold_scale),
            model.config.train_targets,  # the checkpoint's own model config
        ),
        "checkpoint": model_path.name,
        "epoch": int(state.get("epoch", 0)),
    }
    if len(split_ids(dataset_dir, split)) < 2:  # e.g. a handful of demo clips: stratification leaves no test set
        note = f"the {split} split has fewer than 2 clips: nothing to rank"
        log.warning("%s: %s", run_dir, note)
        write_metrics({}, out_dir / "metrics.json", out_dir / "metrics.csv", {**extra, "clips": 0, "note": note})
        save_json(out_dir / "retrieval.json", {})
        save_npz(out_dir / "test_embeddings.npz", {"clip_ids": np.array([], dtype=str)})
        return {**extra, "clips": 0, "note": note, "protocols": {}, "out_dir": str(out_dir)}
    sentences = open_sentence_cache(dataset_dir)
    pointer = state["train_config"].get("features", CURRENT)
    features = FeatureCache.open_current(features_dir(dataset_dir), pointer) if model.has_video else None
    dataset = RetrievalDataset(
        dataset_dir,
        split,
        stats,
        features=features,
        sentences=sentences,
        max_frames=int(state["train_config"]["max_frames"]),
    )
    emb = embed_dataset(model, dataset)
    ids = emb["clip_ids"]
    nsim_path = dataset_dir / "splits" / "nsim_test.txt"
    nsim = split_ids(dataset_dir, "nsim_test") if split == "test" and nsim_path.is_file() else None
    sentence = emb.get("sentence")
    results = evaluate_embeddings(
        {"text": emb["text"], "motion": emb["motion"]}, sentence, ids, nsim, threshold, threshold_scale=threshold_scale
    )
    if "video" in emb:
        keep = np.flatnonzero(emb["video_valid"])
        if keep.size < len(ids):
            log.warning(
                "%d of %d %s clips have no video features: video directions use the rest",
                len(ids) - keep.size,
                len(ids),
                split,
            )
        video = evaluate_embeddings(
            {k: emb[k][keep] for k in ("text", "motion", "video")},
            None if sentence is None else sentence[keep],
            [ids[i] for i in keep],
            nsim,
            threshold,
            threshold_scale=threshold_scale,
        )
        for protocol, by_direction in video.items():
            results.setdefault(protocol, {}).update({d: by_direction[d] for d in ("v2m", "m2v")})
    extra["clips"] = len(ids)
    extra["sentence_model"] = None if sentences is None else sentences.meta.get("model_id")
    write_metrics(results, out_dir / "metrics.json", out_dir / "metrics.csv", extra)
    save_json(out_dir / "retrieval.json", top_retrievals(emb))
    arrays = {k: np.asarray(emb[k]) for k in ("text", "motion", "video", "video_valid", "sentence") if k in emb}
    save_npz(
        out_dir / "test_embeddings.npz", {**arrays, "clip_ids": np.array(ids), "captions": np.array(emb["captions"])}
    )
    return {**extra, "protocols": results, "out_dir": str(out_dir)}


def top_retrievals(
    emb: dict[str, Any], n_queries: int = QUALITATIVE_QUERIES, top_k: int = TOP_K
) -> dict[str, list[dict[str, Any]]]:
    """The top-k motions of a few evenly spread text (and video) queries: {t2m: [...], v2m: [...]}."""
    ids = list(emb["clip_ids"])
    queries = np.unique(np.linspace(0, len(ids) - 1, min(n_queries, len(ids))).round().astype(int))
    out: dict[str, list[dict[str, Any]]] = {}
    for name, key in (("t2m", "text"), ("v2m", "video")):
        if key not in emb:
            continue
        valid = emb.get("video_valid") if key == "video" else None
        sims = cosine_sims(emb[key][queries], emb["motion"])
        rows = []
        for q, row in zip(queries, sims, strict=True):
            if valid is not None and not valid[q]:
                continue
            best = np.argsort(-row, kind="stable")[:top_k]
            entry: dict[str, Any] = {"query": ids[q], "top": [[ids[j], round(float(row[j]), 4)] for j in best]}
            if key == "text":
                entry["caption"] = emb["captions"][q]
            rows.append(entry)
        out[name] = rows
    return out
