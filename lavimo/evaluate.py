"""Retrieval metrics (R@k, MedR) and the four evaluation protocols, as TMR defines them.

Pure numpy. A similarity matrix has one row per query and one column per candidate; the ground truth of
query i is candidate i. Ranks are 0-based and exact ties are broken by averaging the tied positions.
Evaluating a trained model (embedding a split first) is :mod:`lavimo.evaluate_run`.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from typing import Any

import numpy as np

from lavimo.io import save_json, save_text
from lavimo.text.similarity import DEFAULT_PROTOCOL_B_SCALE, on_scale

log = logging.getLogger(__name__)

PROTOCOLS = ("normal", "threshold", "dissimilar", "guo")
METRIC_NAMES = ("R@1", "R@2", "R@3", "R@5", "R@10", "MedR")
RECALL_KS = (1, 2, 3, 5, 10)


def ground_truth_ranks(sims: np.ndarray, correct: np.ndarray | None = None) -> np.ndarray:
    """0-based rank of each query's best-ranked correct candidate, exact ties averaged.

    ``correct`` is a bool (Q, N) mask of the candidates that count as correct (default: the diagonal of a
    square ``sims``). The ground-truth similarity g of a row is the highest similarity among its correct
    candidates; its rank is #(sims > g) + (#(sims == g) - 1) / 2, with exact float equality (no tolerance).
    """
    sims = np.asarray(sims)
    if sims.ndim != 2:
        raise ValueError(f"similarity matrix must be 2-D, got shape {sims.shape}")
    if np.isnan(sims).any():
        raise ValueError("similarity matrix contains NaN")
    if correct is None:
        if sims.shape[0] != sims.shape[1]:
            raise ValueError(f"a non-square similarity matrix {sims.shape} needs a `correct` mask")
        gt = np.diagonal(sims)
    else:
        correct = np.asarray(correct, dtype=bool)
        if correct.shape != sims.shape:
            raise ValueError(f"`correct` mask shape {correct.shape} differs from sims shape {sims.shape}")
        empty = np.flatnonzero(~correct.any(axis=1))
        if empty.size:
            raise ValueError(f"queries without any correct candidate: {empty[:10].tolist()}")
        gt = np.where(correct, sims, -np.inf).max(axis=1)
    gt = gt[:, None]
    greater = np.count_nonzero(sims > gt, axis=1)
    equal = np.count_nonzero(sims == gt, axis=1)  # includes the ground truth itself
    return greater + (equal - 1) / 2.0


def retrieval_metrics(ranks: np.ndarray) -> dict[str, float]:
    """R@k = 100 * fraction of ranks < k (k in 1,2,3,5,10) and MedR = median rank + 1; not rounded."""
    ranks = np.asarray(ranks, dtype=np.float64).reshape(-1)
    if ranks.size == 0:
        raise ValueError("no ranks to compute metrics from")
    metrics = {f"R@{k}": 100 * float(np.count_nonzero(ranks < k)) / ranks.size for k in RECALL_KS}
    metrics["MedR"] = float(np.median(ranks) + 1)
    return metrics


def _normalise_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (N, C), got shape {x.shape}")
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def cosine_sims(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(Na, Nb) cosine similarities between the rows of ``a`` and ``b`` (float64)."""
    return _normalise_rows(a) @ _normalise_rows(b).T


def threshold_mask(text_emb: np.ndarray, threshold: float, scale: str = DEFAULT_PROTOCOL_B_SCALE) -> np.ndarray:
    """(N, N) bool: captions i and j similar, i.e. s > threshold on ``scale``, or i == j.

    Paper, section 4.2: "we set the threshold to 0.8, same to the negative filtering threshold", TMR's, read on
    s = (1 + cos) / 2 (the default; lavimo.text.similarity explains the two scales).
    """
    mask = on_scale(cosine_sims(text_emb, text_emb), scale) > threshold
    np.fill_diagonal(mask, True)
    return mask


def _pair_metrics(sims: np.ndarray, mask: np.ndarray | None) -> dict[str, dict[str, float]]:
    forward = retrieval_metrics(ground_truth_ranks(sims, mask))
    reverse = retrieval_metrics(ground_truth_ranks(sims.T, None if mask is None else mask.T))
    return {"forward": forward, "reverse": reverse}


def guo_batches(n: int, batch_size: int = 32, seed: int = 0) -> list[np.ndarray]:
    """Index batches of TMR's small-batch protocol: seeded shuffle of 0..n-1, cut, remainder dropped.

    ``RandomState(seed).permutation(n)`` yields exactly what ``np.random.seed(seed)`` followed by a shuffle
    of ``arange(n)`` yields (TMR), without touching numpy's global random state.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    idx = np.random.RandomState(seed).permutation(n)
    return [idx[b * batch_size : (b + 1) * batch_size] for b in range(n // batch_size)]


def evaluate_pair(
    sims: np.ndarray,
    protocol: str = "normal",
    text_emb: np.ndarray | None = None,
    threshold: float = 0.8,
    batch_size: int = 32,
    seed: int = 0,
    threshold_scale: str = DEFAULT_PROTOCOL_B_SCALE,
) -> dict[str, dict[str, float]]:
    """Metrics of a square matrix (rows: queries of modality A, columns: candidates of B), not rounded.

    Returns {"forward": metrics of A -> B, "reverse": metrics of B -> A (the transpose)}. "dissimilar" is
    computed like "normal" (the caller passes the subset matrix); "threshold" needs ``text_emb``; "guo"
    averages each metric over shuffled batches of ``batch_size`` (remainder dropped).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r} (expected one of {', '.join(PROTOCOLS)})")
    sims = np.asarray(sims)
    if sims.ndim != 2 or sims.shape[0] != sims.shape[1]:
        raise ValueError(f"similarity matrix must be square, got shape {sims.shape}")
    n = sims.shape[0]
    if protocol in ("normal", "dissimilar"):
        return _pair_metrics(sims, None)
    if protocol == "threshold":
        if text_emb is None:
            raise ValueError("the threshold protocol needs caption sentence embeddings (text_emb)")
        if len(text_emb) != n:
            raise ValueError(f"text_emb has {len(text_emb)} rows, the similarity matrix {n}")
        return _pair_metrics(sims, threshold_mask(text_emb, threshold, threshold_scale))
    batches = guo_batches(n, batch_size, seed)
    if not batches:
        raise ValueError(f"the guo protocol needs at least batch_size={batch_size} items, got {n}")
    per_batch = [_pair_metrics(sims[np.ix_(b, b)], None) for b in batches]
    return {
        side: {name: float(np.mean([m[side][name] for m in per_batch])) for name in METRIC_NAMES}
        for side in ("forward", "reverse")
    }


def round_metrics(m: Any, ndigits: int = 2) -> Any:
    """Round every float in a nested dict/list structure (numpy floats become Python floats)."""
    if isinstance(m, dict):
        return {k: round_metrics(v, ndigits) for k, v in m.items()}
    if isinstance(m, list | tuple):
        return type(m)(round_metrics(v, ndigits) for v in m)
    if isinstance(m, float | np.floating):
        return round(float(m), ndigits)
    return m


def evaluate_embeddings(
    emb: dict[str, np.ndarray],
    text_emb: np.ndarray | None = None,
    ids: list[str] | None = None,
    nsim_ids: list[str] | None = None,
    threshold: float = 0.8,
    protocols: tuple[str, ...] = PROTOCOLS,
    batch_size: int = 32,
    seed: int = 0,
    threshold_scale: str = DEFAULT_PROTOCOL_B_SCALE,
) -> dict[str, dict[str, dict[str, float]]]:
    """{protocol: {direction: metrics}} for aligned "text", "motion" and optional "video" embeddings.

    Similarities are cosine. t2m/m2t always; v2m/m2v when "video" is present. Skipped protocols (absent
    from the result): "threshold" without ``text_emb`` (caption sentence embeddings, rows aligned);
    "dissimilar" without ``nsim_ids`` (evaluated on the rows whose id is in ``nsim_ids``); "guo" with fewer
    than ``batch_size`` items. As in TMR, guo batches index the items sorted by id when ``ids`` is given.
    Values rounded to 2 decimals.
    """
    for key in ("text", "motion"):
        if key not in emb:
            raise ValueError(f"embeddings lack {key!r} (have {sorted(emb)})")
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        raise ValueError(f"unknown protocols {unknown} (expected some of {', '.join(PROTOCOLS)})")
    pairs = {("t2m", "m2t"): ("text", "motion")}
    if emb.get("video") is not None:
        pairs[("v2m", "m2v")] = ("video", "motion")
    n = len(emb["text"])
    for key in ("text", "motion", "video"):
        if emb.get(key) is not None and len(emb[key]) != n:
            raise ValueError(f"{key} embeddings have {len(emb[key])} rows, text {n}")
    if text_emb is not None and len(text_emb) != n:
        raise ValueError(f"caption sentence embeddings have {len(text_emb)} rows, text {n}")
    if ids is not None and len(ids) != n:
        raise ValueError(f"{len(ids)} ids for {n} embedding rows")
    sims = {names: cosine_sims(emb[a], emb[b]) for names, (a, b) in pairs.items()}

    results: dict[str, dict[str, dict[str, float]]] = {}
    for protocol in protocols:
        if protocol == "threshold" and text_emb is None:
            log.info("threshold protocol skipped: no caption sentence embeddings")
            continue
        if protocol == "dissimilar" and not nsim_ids:
            log.info("dissimilar protocol skipped: no nsim ids")
            continue
        if protocol == "guo" and n < batch_size:
            log.warning("guo protocol skipped: %d items, fewer than one batch of %d", n, batch_size)
            continue
        order = None
        if protocol == "dissimilar":
            order = _subset(ids, nsim_ids)
        elif protocol == "guo" and ids is not None:
            order = np.array(sorted(range(n), key=ids.__getitem__), dtype=np.int64)
        results[protocol] = {}
        for (fwd, rev), matrix in sims.items():
            if order is not None:
                matrix = matrix[np.ix_(order, order)]
            pair = evaluate_pair(matrix, protocol, text_emb, threshold, batch_size, seed, threshold_scale)
            results[protocol][fwd] = pair["forward"]
            results[protocol][rev] = pair["reverse"]
    return round_metrics(results)


def _subset(ids: list[str] | None, nsim_ids: list[str]) -> np.ndarray:
    """Row indices of ``ids`` that are in ``nsim_ids``."""
    if ids is None:
        raise ValueError("the dissimilar protocol needs the row ids (ids) to select nsim_ids")
    wanted = set(nsim_ids)
    index = np.array([i for i, clip in enumerate(ids) if clip in wanted], dtype=np.int64)
    missing = sorted(wanted - set(ids))
    if index.size == 0:
        raise ValueError(f"none of the {len(wanted)} nsim ids is among the evaluated ids (e.g. {missing[:10]})")
    if missing:
        log.warning("dissimilar protocol: %d nsim ids not evaluated: %s", len(missing), missing[:10])
    return index


def metrics_rows(results: dict) -> list[dict]:
    """Flatten {protocol: {direction: metrics}} into rows {protocol, direction, R@1, ..., MedR}."""
    return [
        {"protocol": protocol, "direction": direction, **{name: metrics[name] for name in METRIC_NAMES}}
        for protocol, by_direction in results.items()
        for direction, metrics in by_direction.items()
    ]


def write_metrics(
    results: dict,
    json_path: str | os.PathLike[str],
    csv_path: str | os.PathLike[str],
    extra: dict | None = None,
) -> None:
    """Write the results as JSON ({**extra, "protocols": results}) and as a flat CSV, atomically."""
    save_json(json_path, {**(extra or {}), "protocols": results})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["protocol", "direction", *METRIC_NAMES], lineterminator="\n")
    writer.writeheader()
    writer.writerows(metrics_rows(results))
    save_text(csv_path, buffer.getvalue())
