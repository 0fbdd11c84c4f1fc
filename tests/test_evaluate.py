"""Retrieval metrics and protocols (lavimo.evaluate) and the `lavimo metrics` CLI.

Expected numbers are worked out by hand in the comments; ranks are 0-based and exact ties are averaged.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from lavimo.cli import main
from lavimo.evaluate import (
    METRIC_NAMES,
    PROTOCOLS,
    evaluate_embeddings,
    evaluate_pair,
    ground_truth_ranks,
    guo_batches,
    metrics_rows,
    retrieval_metrics,
    round_metrics,
    threshold_mask,
    write_metrics,
)

# rows: queries, columns: candidates, ground truth on the diagonal
SIMS = np.array(
    [
        [0.9, 0.1, 0.35],
        [0.8, 0.3, 0.2],
        [0.1, 0.7, 0.4],
    ]
)


def metrics(r1: float, r2: float, r3: float, r5: float, r10: float, medr: float) -> dict[str, float]:
    return dict(zip(METRIC_NAMES, (r1, r2, r3, r5, r10, medr), strict=True))


def test_ranks_and_metrics_by_hand() -> None:
    # forward, row by row: 0.9 is the row maximum -> rank 0; 0.3 is beaten by 0.8 -> 1; 0.4 by 0.7 -> 1
    ranks = ground_truth_ranks(SIMS)
    np.testing.assert_array_equal(ranks, [0, 1, 1])
    # R@1 = 1/3 of ranks < 1; every rank < 2; MedR = median(0, 1, 1) + 1 = 2
    assert retrieval_metrics(ranks) == pytest.approx(metrics(100 / 3, 100, 100, 100, 100, 2))
    # reverse = columns: [0.9,0.8,0.1] gt 0.9 -> 0; [0.1,0.3,0.7] gt 0.3 -> 1; [0.35,0.2,0.4] gt 0.4 -> 0
    np.testing.assert_array_equal(ground_truth_ranks(SIMS.T), [0, 1, 0])
    pair = evaluate_pair(SIMS)
    assert pair["forward"] == pytest.approx(metrics(100 / 3, 100, 100, 100, 100, 2))
    # reverse: R@1 = 2/3, MedR = median(0, 1, 0) + 1 = 1
    assert pair["reverse"] == pytest.approx(metrics(200 / 3, 100, 100, 100, 100, 1))
    assert evaluate_pair(SIMS.T)["forward"] == pair["reverse"]
    assert evaluate_pair(SIMS.T)["reverse"] == pair["forward"]


def test_recall_at_ten_and_even_median() -> None:
    # ranks 0, 4, 9, 12: R@1 1/4, R@2 1/4, R@3 1/4, R@5 2/4, R@10 3/4; MedR = (4 + 9) / 2 + 1 = 7.5
    assert retrieval_metrics(np.array([0, 4, 9, 12])) == pytest.approx(metrics(25, 25, 25, 50, 75, 7.5))


def test_ties_are_averaged() -> None:
    # all five candidates equal: the ground truth occupies one of positions 0..4 -> (0+1+2+3+4)/5 = 2 = (N-1)/2
    sims = np.array([[0.5] * 5, [0.0, 1.0, 0.0, 0.0, 0.0]] + [np.eye(5)[i] for i in range(2, 5)])
    ranks = ground_truth_ranks(sims)
    assert ranks[0] == 2.0
    np.testing.assert_array_equal(ranks[1:], 0)
    # gt (column 2) ties with column 1 behind one larger value: positions 1 and 2 -> rank 1.5
    row = np.array([[0.9, 0.5, 0.5, 0.1]])
    ranks = ground_truth_ranks(row, np.array([[False, False, True, False]]))
    assert ranks.tolist() == [1.5]
    # 1.5 < 2 counts for R@2, not for R@1; MedR = 1.5 + 1
    assert retrieval_metrics(ranks) == metrics(0, 100, 100, 100, 100, 2.5)


def test_ties_are_exact_not_tolerant() -> None:
    # a competitor larger by one float32 ulp is strictly greater: rank 1, not a tie (0.5)
    gt = np.float32(0.7)
    sims = np.array([[gt, np.nextafter(gt, np.float32(1))], [0, 1]], dtype=np.float32)
    assert ground_truth_ranks(sims).tolist() == [1.0, 0.0]


def _rank_by_sorting(sims: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Reference: sort each row descending, average the positions holding the best correct value."""
    out = []
    for row, ok in zip(sims, mask, strict=True):
        gt = row[ok].max()
        positions = np.flatnonzero(np.sort(row)[::-1] == gt)
        out.append(positions.mean())
    return np.array(out)


def test_ranks_match_sorting_reference_with_many_ties() -> None:
    rng = np.random.default_rng(3)
    sims = rng.integers(0, 4, size=(40, 40)).astype(np.float64)  # 4 distinct values: ties everywhere
    eye = np.eye(40, dtype=bool)
    np.testing.assert_array_equal(ground_truth_ranks(sims), _rank_by_sorting(sims, eye))
    mask = (rng.random((40, 40)) < 0.1) | eye
    np.testing.assert_array_equal(ground_truth_ranks(sims, mask), _rank_by_sorting(sims, mask))


def test_threshold_mask_by_hand() -> None:
    # rows need not be unit-norm: [2,0] and [1,0] have cos 1 -> (1+1)/2 = 1 > 0.8; [2,0] vs [0,3]: 0.5
    emb = np.array([[2.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
    expected = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=bool)
    np.testing.assert_array_equal(threshold_mask(emb, 0.8), expected)
    # orthogonal captions score exactly (1+0)/2 = 0.5, which is not > 0.5: only the diagonal
    np.testing.assert_array_equal(threshold_mask(emb, 0.5), expected)
    # the diagonal always counts, even with a threshold of 1 or a zero embedding
    np.testing.assert_array_equal(threshold_mask(np.array([[1.0, 0.0], [0.0, 0.0]]), 1.0), np.eye(2, dtype=bool))


def test_threshold_protocol_raises_recall_by_hand() -> None:
    # captions 0 and 1 are the same sentence, so each one's motion also counts for the other
    emb = np.array([[2.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
    sims = np.array(
        [
            [0.2, 0.9, 0.1],
            [0.8, 0.3, 0.1],
            [0.0, 0.5, 0.6],
        ]
    )
    normal = evaluate_pair(sims)
    # forward ranks: 0.2 < 0.9 -> 1; 0.3 < 0.8 -> 1; 0.6 max -> 0 -> R@1 1/3, MedR 2
    assert normal["forward"] == pytest.approx(metrics(100 / 3, 100, 100, 100, 100, 2))
    # reverse (columns): [0.2,0.8,0.0] -> 1; [0.9,0.3,0.5] gt 0.3 -> 2; [0.1,0.1,0.6] -> 0
    # R@1 1/3, R@2 2/3, MedR = median(1, 2, 0) + 1 = 2
    assert normal["reverse"] == pytest.approx(metrics(100 / 3, 200 / 3, 100, 100, 100, 2))
    thr = evaluate_pair(sims, "threshold", text_emb=emb, threshold=0.8)
    # best correct candidate: row 0 max(0.2, 0.9) = 0.9 -> 0; row 1 max(0.8, 0.3) -> 0; row 2 -> 0
    # columns: max(0.2, 0.8) -> 0; max(0.9, 0.3) -> 0; 0.6 -> 0
    assert thr["forward"] == metrics(100, 100, 100, 100, 100, 1)
    assert thr["reverse"] == metrics(100, 100, 100, 100, 100, 1)
    with pytest.raises(ValueError, match="text_emb"):
        evaluate_pair(sims, "threshold")


def test_guo_batches_match_seeded_shuffle() -> None:
    batches = guo_batches(70, 32, seed=0)
    assert [len(b) for b in batches] == [32, 32]  # 70 = 2 * 32 + 6: the 6 left over are dropped
    np.random.seed(0)
    idx = np.arange(70)
    np.random.shuffle(idx)  # TMR: np.random.seed(0), then shuffle arange(N)
    np.testing.assert_array_equal(np.concatenate(batches), idx[:64])
    state = np.random.get_state()[1].copy()
    guo_batches(70)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # numpy's global state untouched


def test_guo_protocol_averages_batches_by_hand() -> None:
    n = 70
    first, second = guo_batches(n, 32, seed=0)
    rest = np.setdiff1d(np.arange(n), np.concatenate([first, second]))
    sims = np.eye(n)
    # batch 1 is identity-like: every rank 0 -> R@k 100, MedR 1
    # batch 2 is all ties (0.5 everywhere in its sub-matrix): every rank (32-1)/2 = 15.5 -> R@k 0, MedR 16.5
    sims[np.ix_(second, second)] = 0.5
    # the 6 dropped items would rank last if they counted
    sims[rest, rest] = -1.0
    result = evaluate_pair(sims, "guo")
    # average over the two batches: R@k (100 + 0) / 2 = 50, MedR (1 + 16.5) / 2 = 8.75
    assert result["forward"] == metrics(50, 50, 50, 50, 50, 8.75)
    assert result["reverse"] == metrics(50, 50, 50, 50, 50, 8.75)
    identity = evaluate_pair(np.eye(n), "guo")
    assert identity["forward"] == metrics(100, 100, 100, 100, 100, 1)
    with pytest.raises(ValueError, match="at least"):
        evaluate_pair(np.eye(31), "guo")


def test_round_metrics() -> None:
    nested = {"a": {"x": 100 / 3, "y": np.float32(2 / 3)}, "b": [1 / 7, 2], "c": "text"}
    assert round_metrics(nested) == {"a": {"x": 33.33, "y": 0.67}, "b": [0.14, 2], "c": "text"}
    assert round_metrics({"x": 1 / 3}, ndigits=3) == {"x": 0.333}


def _embeddings(n: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim))


def test_evaluate_embeddings_without_and_with_video() -> None:
    text = _embeddings(40)
    motion = 3.0 * text  # same directions, other norm: cosine makes every ground truth the row maximum
    perfect = metrics(100, 100, 100, 100, 100, 1)
    out = evaluate_embeddings({"text": text, "motion": motion})
    # no sentence embeddings -> no threshold protocol; no nsim ids -> no dissimilar protocol
    assert list(out) == ["normal", "guo"]
    assert out["normal"] == {"t2m": perfect, "m2t": perfect}

    video = _embeddings(40, seed=1)  # unrelated to motion: not perfect
    out = evaluate_embeddings({"text": text, "motion": motion, "video": video}, text_emb=text)
    assert list(out) == ["normal", "threshold", "guo"]
    assert set(out["normal"]) == {"t2m", "m2t", "v2m", "m2v"}
    assert out["threshold"]["t2m"] == perfect
    assert out["normal"]["v2m"]["R@1"] < 100
    expected = round_metrics(evaluate_pair(video @ motion.T / np.outer(_norm(video), _norm(motion))))
    assert out["normal"]["v2m"] == expected["forward"]
    assert out["normal"]["m2v"] == expected["reverse"]
    # 20 items, fewer than one batch of 32: guo skipped
    assert list(evaluate_embeddings({"text": text[:20], "motion": motion[:20]})) == ["normal"]


def _norm(x: np.ndarray) -> np.ndarray:
    return np.linalg.norm(x, axis=1)


def test_evaluate_embeddings_dissimilar_subset() -> None:
    text, motion = _embeddings(40), _embeddings(40, seed=2)
    ids = [f"clip{i:02d}" for i in range(40)]
    nsim = ["clip03", "clip07", "clip11", "clip19", "clip30", "absent"]
    out = evaluate_embeddings({"text": text, "motion": motion}, ids=ids, nsim_ids=nsim, protocols=("dissimilar",))
    keep = [3, 7, 11, 19, 30]
    sub = text[keep] @ motion[keep].T / np.outer(_norm(text[keep]), _norm(motion[keep]))
    expected = round_metrics(evaluate_pair(sub))
    assert out == {"dissimilar": {"t2m": expected["forward"], "m2t": expected["reverse"]}}
    with pytest.raises(ValueError, match="nope"):
        evaluate_embeddings({"text": text, "motion": motion}, ids=ids, nsim_ids=["nope"])


def test_evaluate_embeddings_guo_batches_follow_sorted_ids() -> None:
    # as TMR sorts the keyids before shuffling, the guo result does not depend on the row order given
    text, motion = _embeddings(70), _embeddings(70, seed=5)
    ids = [f"{i:05d}" for i in range(70)]
    perm = np.random.default_rng(9).permutation(70)
    a = evaluate_embeddings({"text": text, "motion": motion}, ids=ids, protocols=("guo",))
    b = evaluate_embeddings(
        {"text": text[perm], "motion": motion[perm]}, ids=[ids[i] for i in perm], protocols=("guo",)
    )
    assert a == b


def test_metrics_rows_and_write_metrics(tmp_path: Path) -> None:
    results = evaluate_embeddings({"text": _embeddings(40), "motion": _embeddings(40, seed=1)})
    rows = metrics_rows(results)
    assert [(r["protocol"], r["direction"]) for r in rows] == [
        ("normal", "t2m"),
        ("normal", "m2t"),
        ("guo", "t2m"),
        ("guo", "m2t"),
    ]
    write_metrics(results, tmp_path / "m" / "metrics.json", tmp_path / "m" / "metrics.csv", extra={"run": "x"})
    saved = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert saved == {"run": "x", "protocols": results}
    with open(tmp_path / "m" / "metrics.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0]) == ["protocol", "direction", *METRIC_NAMES]
    assert [float(table[1][name]) for name in METRIC_NAMES] == [rows[1][name] for name in METRIC_NAMES]


def _bag_of_words(captions: list[str]) -> np.ndarray:
    vocab = sorted({w for c in captions for w in re.findall(r"[a-z0-9]+", c.lower())})
    column = {w: j for j, w in enumerate(vocab)}
    out = np.zeros((len(captions), len(vocab)))
    for i, caption in enumerate(captions):
        for word in re.findall(r"[a-z0-9]+", caption.lower()):
            out[i, column[word]] += 1
    return out


def test_protocols_on_real_kitml_captions(kitml_fixture: Path) -> None:
    """Caption-to-caption retrieval of KIT-ML's real test captions (first caption per clip, bag of words)."""
    annotations = json.loads((kitml_fixture / "annotations.json").read_text())
    ids = (kitml_fixture / "splits" / "test.txt").read_text().split()
    nsim = (kitml_fixture / "splits" / "nsim_test.txt").read_text().split()
    bow = _bag_of_words([annotations[i]["annotations"][0]["text"] for i in ids])
    out = evaluate_embeddings({"text": bow, "motion": bow}, text_emb=bow, ids=ids, nsim_ids=nsim, threshold=0.9)
    assert list(out) == list(PROTOCOLS)
    # repeated captions ("A person walks forward." ...) tie with their ground truth: normal R@1 < 100
    assert out["normal"]["t2m"]["R@1"] < 100
    # counting similar captions as correct never ranks a ground truth lower
    for name in ("R@1", "R@2", "R@3", "R@5", "R@10"):
        assert out["threshold"]["t2m"][name] >= out["normal"]["t2m"][name]
    assert out["threshold"]["t2m"]["MedR"] <= out["normal"]["t2m"]["MedR"]
    # the nsim subset is chosen to hold dissimilar captions: easier than the whole split
    assert out["dissimilar"]["t2m"]["R@1"] > out["normal"]["t2m"]["R@1"]
    # symmetric sims: reverse equals forward
    for protocol in PROTOCOLS:
        assert out[protocol]["m2t"] == out[protocol]["t2m"]


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sims.npy"
    np.save(path, SIMS)
    code, out, _ = _run_cli(["metrics", "--sims", str(path)], capsys)
    assert code == 0
    # the hand-computed values of test_ranks_and_metrics_by_hand, rounded to 2 decimals
    assert json.loads(out) == {
        "t2m": metrics(33.33, 100, 100, 100, 100, 2),
        "m2t": metrics(66.67, 100, 100, 100, 100, 1),
    }
    code, out, _ = _run_cli(["metrics", "--sims", str(path), "--names", "v2m,m2v"], capsys)
    assert list(json.loads(out)) == ["v2m", "m2v"]

    emb = tmp_path / "emb.npy"
    np.save(emb, np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    # threshold: caption 1 equals caption 0, so row 1's 0.8 (motion 0) now counts -> ranks 0, 0, 1
    code, out, _ = _run_cli(["metrics", "--sims", str(path), "--protocol", "threshold", "--text-emb", str(emb)], capsys)
    assert code == 0
    assert json.loads(out)["t2m"] == metrics(66.67, 100, 100, 100, 100, 1)

    eye = tmp_path / "eye.npy"
    np.save(eye, np.eye(70, dtype=np.float32))
    code, out, _ = _run_cli(["metrics", "--sims", str(eye), "--protocol", "guo"], capsys)
    assert code == 0
    assert json.loads(out)["m2t"] == metrics(100, 100, 100, 100, 100, 1)


def test_cli_metrics_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rect = tmp_path / "rect.npy"
    np.save(rect, np.zeros((3, 4)))
    code, out, err = _run_cli(["metrics", "--sims", str(rect)], capsys)
    assert (code, out) == (2, "")
    assert "rect.npy" in err and "square" in err

    code, _, err = _run_cli(["metrics", "--sims", str(tmp_path / "missing.npy")], capsys)
    assert code == 2 and "missing.npy" in err

    square = tmp_path / "square.npy"
    np.save(square, SIMS)
    code, _, err = _run_cli(["metrics", "--sims", str(square), "--protocol", "threshold"], capsys)
    assert code == 2 and "--text-emb" in err

    emb = tmp_path / "emb.npy"
    np.save(emb, np.ones((4, 8)))
    argv = ["metrics", "--sims", str(square), "--protocol", "threshold", "--text-emb", str(emb)]
    code, _, err = _run_cli(argv, capsys)
    assert code == 2 and "emb.npy" in err and "3 rows" in err

    code, _, err = _run_cli(["metrics", "--sims", str(square), "--protocol", "guo"], capsys)
    assert code == 2 and "batch-size" in err
