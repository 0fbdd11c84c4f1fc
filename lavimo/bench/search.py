"""`lavimo bench search`: latency of a text query (text encoding + search) over large synthetic motion libraries.

For each library size (default 1 thousand, 100 thousand, 1 million embeddings) it builds the library, then
times single text queries end to end (wall and CPU time): the run's text encoder encodes one caption, and the
backend returns its top 10 motions. Backends: exact (one matrix product, :class:`lavimo.search.ann.ExactSearch`),
FAISS HNSW (:class:`lavimo.search.ann.HnswSearch`, the one ``lavimo search`` uses) and FAISS IVF-PQ with exact
re-ranking of 4k candidates (measured for comparison). Printed per size and backend: build time, index memory,
p50 and p95 latency, CPU p50, and recall@10 against exact search on the same queries. A second table times the
search alone over a ladder of sizes and reports the measured cut-over: the smallest size from which HNSW, at
recall@10 >= 0.95, saves at least 10% of the CPU time of an exact text query (encoding + search); CPU time, the
work a query costs, does not depend on what else the machine runs. :data:`lavimo.search.ann.DEFAULT_CUTOVER` is
set from it.

Synthetic library: ``model`` (default when the demo run exists): Gaussian samples with the mean and covariance
of the run's real motion embeddings (its ``test_embeddings.npz``) plus a little isotropic noise, L2-normalised:
the shape of a real library in the model's dimension. ``isotropic``: uniform on the sphere, the hardest case
for any approximate index (nearest neighbours barely stand out), as a bound. Queries: the run's text encoder on
real demo captions (a demo-preset model with the packaged MiniLM when there is no run).

Environment knobs: LAVIMO_BENCH_SIZES (default "1000,100000,1000000"), LAVIMO_BENCH_LADDER (search-only sizes
for the cut-over, default "1000,3000,10000,30000,100000"), LAVIMO_BENCH_DATA (model | isotropic),
LAVIMO_BENCH_QUERIES (default 200), LAVIMO_BENCH_RUN (default results/demo/runs/3modal).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lavimo.bench.common import load_config

K = 10
TARGET_RECALL = 0.95
IVF_CANDIDATES = 4  # IVF-PQ re-ranks k x this many candidates exactly
PAYOFF = 0.10  # HNSW pays off once it saves this share of an exact text query's p50 (encoding + search)
CAPTIONS = (
    "a person walks forward",
    "someone waves goodbye with the right hand",
    "a figure jumps up and down",
    "a man kicks with his left leg",
    "a person dances energetically",
    "someone bows politely",
)


def _sizes(name: str, default: str) -> list[int]:
    return [int(float(s)) for s in os.environ.get(name, default).split(",") if s.strip()]


def _captions(results: Path, count: int) -> list[str]:
    """``count`` real demo captions (the built-in few when the demo set is not prepared)."""
    manifest = results / "demo" / "manifest.parquet"
    captions = list(CAPTIONS)
    if manifest.is_file():
        import pandas as pd

        texts = pd.read_parquet(manifest, columns=["texts"])["texts"]
        captions = sorted({t["text"] for row in texts for t in row}) or captions
    rng = np.random.default_rng(0)
    return [captions[i] for i in rng.integers(len(captions), size=count)]


def _text_model(run: Path) -> tuple[Any, str]:
    """(model, description): the run's trained model, else a demo-preset model with the packaged MiniLM."""
    from lavimo.checkpoints import MODEL_FILE

    if (run / MODEL_FILE).is_file():
        from lavimo.embed import load_trained

        model, _, _ = load_trained(run, device="cpu")
        return model, f"run {run}"
    from lavimo.model import LAVIMO, ModelConfig

    return LAVIMO(ModelConfig.from_preset("demo", variant="2modal")).eval(), "demo preset (untrained head)"


class Library:
    """Synthetic L2-normalised library embeddings of one shape (model-shaped or isotropic)."""

    def __init__(self, dim: int, run: Path, kind: str) -> None:
        self.dim, self.kind = dim, kind
        self.mean, self.factor = np.zeros(dim), None
        real = run / "test_embeddings.npz"
        if kind == "model" and real.is_file():
            motion = np.load(real)["motion"].astype(np.float64)
            self.mean = motion.mean(0)
            cov = np.cov(motion.T) + 1e-3 * np.eye(dim)  # a little isotropic spread fills every direction
            self.factor = np.linalg.cholesky(cov)
            self.source = f"model-shaped: Gaussian fitted to {len(motion)} real motion embeddings of {real}"
        else:
            self.kind = "isotropic"
            self.source = "isotropic: uniform on the unit sphere"

    def sample(self, count: int, seed: int = 0) -> np.ndarray:
        """(count, dim) float32, rows L2-normalised; built in blocks to bound memory."""
        rng = np.random.default_rng(seed)
        out = np.empty((count, self.dim), np.float32)
        for start in range(0, count, 200_000):
            z = rng.standard_normal((min(200_000, count - start), self.dim))
            x = z if self.factor is None else self.mean + z @ self.factor.T
            out[start : start + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out


def _latencies(search: Callable[[int], Any], queries: int) -> tuple[np.ndarray, np.ndarray]:
    """Wall and CPU milliseconds of ``search(i)`` for each query (after one warm-up call). CPU time (all threads of
    this process) is the work a query costs whatever else the machine runs; wall time is what a user waits."""
    search(0)
    wall, cpu = np.empty(queries), np.empty(queries)
    for i in range(queries):
        start, start_cpu = time.perf_counter(), time.process_time()
        search(i)
        wall[i], cpu[i] = time.perf_counter() - start, time.process_time() - start_cpu
    return wall * 1e3, cpu * 1e3


class IvfPq:
    """FAISS IVF-PQ (inner product) with exact re-ranking of ``IVF_CANDIDATES`` x k candidates."""

    kind = "ivf-pq"

    def __init__(self, embeddings: np.ndarray) -> None:
        from lavimo.search.ann import faiss_module

        faiss = faiss_module()
        n, dim = embeddings.shape
        nlist = max(16, int(4 * np.sqrt(n)))
        quantizer = faiss.IndexFlatIP(dim)
        ivf = faiss.IndexIVFPQ(quantizer, dim, nlist, dim // 4, 8, faiss.METRIC_INNER_PRODUCT)
        sample = embeddings[np.random.default_rng(0).permutation(n)[: 40 * nlist]]
        ivf.train(sample)
        self.index = faiss.IndexRefineFlat(ivf)
        self.index.k_factor = IVF_CANDIDATES
        self.index.add(embeddings)
        self._keep = (quantizer, ivf)  # the refine index does not own them
        self.parameters = faiss.ParameterSpace()

    def set_effort(self, nprobe: int) -> None:
        """Lists visited per query."""
        self.parameters.set_index_parameter(self.index, "nprobe", nprobe)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(Q, C) queries -> (Q, k) scores and rows."""
        return self.index.search(np.ascontiguousarray(np.atleast_2d(queries), np.float32), k)

    @property
    def memory_bytes(self) -> int:
        """Bytes of the serialised index (codes, lists and the re-ranking vectors)."""
        from lavimo.search.ann import faiss_module

        return int(faiss_module().serialize_index(self.index).nbytes)


def _tune(backend: Any, queries: np.ndarray, truth: np.ndarray, efforts: tuple[int, ...]) -> tuple[int, float]:
    """The smallest search effort (HNSW efSearch / IVF nprobe) reaching the target recall (else the largest)."""
    from lavimo.search.ann import recall_at_k

    for effort in efforts:
        backend.set_effort(effort)
        recall = recall_at_k(truth, backend.search(queries, K)[1])
        if recall >= TARGET_RECALL:
            break
    return effort, recall


HNSW_EFFORTS = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)
IVF_EFFORTS = (4, 8, 16, 32, 64, 128, 256)
IVF_MIN_SIZE = 10_000  # IVF-PQ's k-means needs more points than this many centroids x 40


def _measure_size(size: int, library: Library, text: np.ndarray, encode: Callable[[int], np.ndarray]) -> list[dict]:
    """Exact, HNSW at the shipped settings and IVF-PQ at its tuned nprobe over a library of ``size``: build time,
    memory, effort, recall@10 and end-to-end latency; HNSW also reports the least efSearch reaching the target."""
    from lavimo.search.ann import AnnSettings, ExactSearch, HnswSearch, recall_at_k

    embeddings = library.sample(size)
    exact = ExactSearch(embeddings)
    truth = exact.search(text, K)[1]
    rows = []
    for name in ("exact", "hnsw", "ivf-pq"):
        if name == "ivf-pq" and size < IVF_MIN_SIZE:
            continue
        start = time.perf_counter()
        backend = {"exact": lambda: exact, "hnsw": lambda: HnswSearch.build(embeddings, AnnSettings())}.get(
            name, lambda: IvfPq(embeddings)
        )()
        build_s = time.perf_counter() - start
        row = {"size": size, "backend": name, "build_s": build_s, "memory_mb": backend.memory_bytes / 2**20}
        if name == "hnsw":
            shipped = AnnSettings().ef_for(size)
            row["least"] = _tune(backend, text, truth, HNSW_EFFORTS)[0]
            backend.set_effort(shipped)
            row["effort"], row["recall"] = shipped, recall_at_k(truth, backend.search(text, K)[1])
        elif name == "ivf-pq":
            row["effort"], row["recall"] = _tune(backend, text, truth, IVF_EFFORTS)
        else:
            row["effort"], row["recall"] = 0, 1.0
        ms, cpu = _latencies(lambda i, b=backend: b.search(encode(i), K), len(text))
        rows.append(row | {"p50": np.median(ms), "p95": np.percentile(ms, 95), "cpu50": np.median(cpu)})
        del backend
    return rows


def _cutover(ladder: list[int], library: Library, text: np.ndarray, encode_ms: float) -> tuple[int | None, list[str]]:
    """Search-only CPU p50 of exact and HNSW (shipped settings) per ladder size, and the cut-over: the first size
    from which HNSW reaches the target recall and saves at least :data:`PAYOFF` of an exact text query's CPU p50.
    ``encode_ms``: the text encoding's CPU p50."""
    from lavimo.search.ann import AnnSettings, ExactSearch, HnswSearch, recall_at_k

    lines, found = [], None
    for size in ladder:
        embeddings = library.sample(size, seed=1)
        exact = ExactSearch(embeddings)
        truth = exact.search(text, K)[1]
        hnsw = HnswSearch.build(embeddings, AnnSettings())
        recall = recall_at_k(truth, hnsw.search(text, K)[1])
        exact_wall, exact_cpu = _latencies(lambda i, e=exact: e.search(text[i], K), len(text))
        hnsw_wall, hnsw_cpu = _latencies(lambda i, h=hnsw: h.search(text[i], K), len(text))
        exact_ms, hnsw_ms = np.median(exact_cpu), np.median(hnsw_cpu)
        saving = (exact_ms - hnsw_ms) / (encode_ms + exact_ms)
        pays = saving >= PAYOFF and recall >= TARGET_RECALL
        found = size if pays and found is None else (found if pays else None)
        lines.append(
            f"{size:>10,} {exact_ms:>9.3f} {hnsw_ms:>9.3f} "
            f"{np.median(exact_wall):>10.3f} {np.median(hnsw_wall):>10.3f} "
            f"{recall:>9.3f} {100 * saving:>8.1f}%  " + ("hnsw" if pays else "exact")
        )
    return found, lines


def bench_search(args: argparse.Namespace) -> int:
    """Print the latency table and the measured exact/HNSW cut-over."""
    import torch

    from lavimo.search.ann import DEFAULT_CUTOVER, faiss_module

    faiss = faiss_module()

    config = load_config(args.config)
    results = Path(config["results_dir"])
    run = Path(os.environ.get("LAVIMO_BENCH_RUN", results / "demo" / "runs" / "3modal"))
    model, described = _text_model(run)
    library = Library(model.config.latent_dim, run, os.environ.get("LAVIMO_BENCH_DATA", "model"))
    captions = _captions(results, int(os.environ.get("LAVIMO_BENCH_QUERIES", "200")))
    torch.set_grad_enabled(False)

    def encode(i: int) -> np.ndarray:
        return model.encode_text([captions[i]]).numpy()

    text = np.concatenate([encode(i) for i in range(len(captions))])
    encode_ms, encode_cpu = _latencies(encode, len(captions))
    print(
        f"bench search: text encoder of {described}; dim {library.dim}; {len(captions)} caption queries, top {K}; "
        f"library {library.source}; torch threads {torch.get_num_threads()}, FAISS threads "
        f"{faiss.omp_get_max_threads()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"text encoding alone: p50 {np.median(encode_ms):.2f} ms, p95 {np.percentile(encode_ms, 95):.2f} ms, "
        f"CPU p50 {np.median(encode_cpu):.2f} ms"
    )
    print(
        "latency = text encoding + search of one query; effort = HNSW efSearch (the shipped setting; least = the "
        f"least reaching recall {TARGET_RECALL}) or IVF-PQ nprobe (the least reaching it)"
    )
    print(f"{'library':>10} {'backend':>7} {'build s':>8} {'memory MB':>10} {'effort':>7} {'least':>6} {'p50 ms':>8} "
          f"{'p95 ms':>8} {'CPU p50':>8} {'recall@10':>9}")  # fmt: skip
    for size in _sizes("LAVIMO_BENCH_SIZES", "1000,100000,1000000"):
        for r in _measure_size(size, library, text, encode):
            print(
                f"{r['size']:>10,} {r['backend']:>7} {r['build_s']:>8.1f} {r['memory_mb']:>10.1f} {r['effort']:>7} "
                f"{r.get('least', ''):>6} {r['p50']:>8.2f} {r['p95']:>8.2f} {r['cpu50']:>8.2f} {r['recall']:>9.3f}",
                flush=True,
            )
    ladder = _sizes("LAVIMO_BENCH_LADDER", "1000,3000,10000,20000,30000,50000,70000,100000")
    print(
        f"search alone (no text encoding), p50 ms. HNSW pays off from the size where it reaches recall "
        f"{TARGET_RECALL} and saves >= {100 * PAYOFF:.0f}% of the CPU time of an exact text query (encoding + search):"
    )
    print(f"{'library':>10} {'exact CPU':>9} {'hnsw CPU':>9} {'exact wall':>10} {'hnsw wall':>10} {'recall':>9} "
          f"{'saving':>9}  use")  # fmt: skip
    found, lines = _cutover(ladder, library, text, float(np.median(encode_cpu)))
    print("\n".join(lines))
    verdict = f"HNSW from {found:,} embeddings" if found else f"exact up to {ladder[-1]:,} at least"
    print(f"measured cut-over: {verdict}; lavimo.search.ann.DEFAULT_CUTOVER = {DEFAULT_CUTOVER:,}")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}")
    return 0
