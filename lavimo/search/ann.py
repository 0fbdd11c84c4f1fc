"""Nearest neighbours of L2-normalised embeddings by inner product (= cosine): exact, or FAISS HNSW.

- :class:`ExactSearch`: one matrix product (``embeddings @ query``) and a partial sort. Always correct.
- :class:`HnswSearch`: FAISS ``IndexHNSWFlat`` (inner-product metric) with the vectors stored flat, so its scores
  are exact cosines of the candidates it visits; approximate only in which candidates it visits.

:func:`choose_backend` picks one for a library size: exact below :data:`DEFAULT_CUTOVER` embeddings, HNSW from
there on. The cut-over and the HNSW settings were measured with ``lavimo bench search`` (README, "Search"): below
the cut-over a matrix product costs under a tenth of a text query (the text encoder dominates) and needs no build
nor recall loss. efSearch grows with the library (:meth:`AnnSettings.ef_for`), because the candidates a graph walk
needs for recall@10 >= 0.95 do: 128 at 100 thousand, 768 at 1 million model-shaped embeddings. IVF-PQ was measured
too and lost (recall@10 0.72 at 1 million with 40 re-ranked candidates). IVF-Flat reached the same recall at a
similar latency with a 5x faster build, but its centroids are trained once on the library of the first build;
HNSW inserts new clips natively, which an incremental index needs. FAISS uses all cores (its default).

FAISS (``faiss-cpu``) is imported only when an HNSW index is built or loaded.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from lavimo.io import LavimoInputError, atomic_path

EXACT = "exact"
HNSW = "hnsw"
AUTO = "auto"
BACKENDS = (AUTO, EXACT, HNSW)
DEFAULT_CUTOVER = 30_000  # measured: see the module docstring and `lavimo bench search`
EF_MIN = 64
EF_PER_SQRT = 0.8  # efSearch = 0.8 sqrt(N): 253 at 100 thousand, 800 at 1 million (recall@10 0.99, 0.97; measured)


@dataclass(frozen=True)
class AnnSettings:
    """How a library is searched: ``backend`` auto (exact below ``cutover`` embeddings) | exact | hnsw."""

    backend: str = AUTO
    cutover: int = DEFAULT_CUTOVER
    hnsw_m: int = 32  # graph degree (links per node per layer)
    ef_construction: int = 80  # candidate list while building
    ef_search: int = 0  # candidate list while searching (recall vs latency); 0: ef_for(library size)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown search backend {self.backend!r}; choose one of {BACKENDS}")

    def ef_for(self, size: int) -> int:
        """efSearch for a library of ``size``: ``ef_search`` if set, else :data:`EF_PER_SQRT` x sqrt(size), at least
        :data:`EF_MIN` (the candidates needed for a given recall grow with the library; measured)."""
        return self.ef_search or max(EF_MIN, math.ceil(EF_PER_SQRT * math.sqrt(size)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able settings (stored in the index)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnnSettings:
        """Settings read back from an index (unknown keys ignored)."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def choose_backend(size: int, settings: AnnSettings) -> str:
    """:data:`EXACT` or :data:`HNSW` for a library of ``size`` embeddings."""
    if settings.backend != AUTO:
        return settings.backend
    return HNSW if size >= settings.cutover else EXACT


class Backend(Protocol):
    """What every backend offers."""

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``scores`` (Q, N): the ``k`` best (scores, columns), best first (ties: lower column first)."""
    k = min(k, scores.shape[1])
    if k < scores.shape[1]:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(scores.shape[1]), scores.shape).copy()
    picked = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -picked), axis=1)
    rows = np.take_along_axis(part, order, axis=1)
    return np.take_along_axis(scores, rows, axis=1), rows


class ExactSearch:
    """Exact inner-product search: one matrix product over the (N, C) float32 embeddings."""

    kind = EXACT

    def __init__(self, embeddings: np.ndarray) -> None:
        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(Q, C) queries -> (Q, k) scores and rows, best first."""
        scores = np.atleast_2d(np.asarray(queries, np.float32)) @ self.embeddings.T
        return top_k(scores, k)

    @property
    def memory_bytes(self) -> int:
        """Bytes the searchable structure holds."""
        return int(self.embeddings.nbytes)


def faiss_module() -> Any:
    """The faiss module (faiss-cpu), imported quietly; a clear error when it is not installed."""
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # it logs which CPU build it loads, at INFO
    try:
        import faiss
    except ImportError as error:  # faiss-cpu is in the `ml` extra
        raise LavimoInputError("faiss-cpu", "not installed: pip install faiss-cpu (or lavimo[ml])") from error
    return faiss


class HnswSearch:
    """FAISS HNSW over flat vectors, inner-product metric."""

    kind = HNSW

    def __init__(self, index: Any, ef_search: int) -> None:
        self.index = index
        self.set_effort(ef_search)

    def set_effort(self, ef_search: int) -> None:
        """The candidate list length of a search (higher: better recall, slower)."""
        self.index.hnsw.efSearch = int(ef_search)

    @classmethod
    def build(cls, embeddings: np.ndarray, settings: AnnSettings) -> HnswSearch:
        """Build the graph over ``embeddings`` (N, C) float32 (minutes for millions of vectors)."""
        faiss = faiss_module()
        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        index = faiss.IndexHNSWFlat(embeddings.shape[1], settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = settings.ef_construction
        index.add(embeddings)
        return cls(index, settings.ef_for(len(embeddings)))

    def add(self, embeddings: np.ndarray) -> None:
        """Append vectors (rows continue after the last one)."""
        self.index.add(np.ascontiguousarray(embeddings, dtype=np.float32))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index file atomically."""
        with atomic_path(path) as tmp:
            faiss_module().write_index(self.index, str(tmp))

    @classmethod
    def load(cls, path: str | os.PathLike[str], ef_search: int) -> HnswSearch:
        """Read an index file written by :meth:`save`."""
        faiss = faiss_module()
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as error:
            raise LavimoInputError(path, f"unreadable FAISS index ({str(error).splitlines()[0]})") from error
        if not hasattr(index, "hnsw"):
            raise LavimoInputError(path, f"FAISS index is a {type(index).__name__}, not HNSW")
        return cls(index, ef_search)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(Q, C) queries -> (Q, k) scores and rows, best first (rows -1 when fewer than k exist)."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        scores, rows = self.index.search(queries, min(k, self.index.ntotal))
        return scores, rows

    @property
    def size(self) -> int:
        """Vectors in the index."""
        return int(self.index.ntotal)

    @property
    def memory_bytes(self) -> int:
        """Bytes of the serialised index (vectors + graph)."""
        return int(faiss_module().serialize_index(self.index).nbytes)


def open_backend(kind: str, embeddings: np.ndarray, path: Path | None, settings: AnnSettings) -> Backend:
    """The backend an index was saved with: exact over ``embeddings``, or the HNSW file at ``path``."""
    if kind == EXACT:
        return ExactSearch(embeddings)
    if kind == HNSW and path is not None:
        backend = HnswSearch.load(path, settings.ef_for(len(embeddings)))
        if backend.size != len(embeddings):
            raise LavimoInputError(path, f"FAISS index holds {backend.size} vectors, the library {len(embeddings)}")
        return backend
    raise LavimoInputError(str(path), f"unknown search backend {kind!r}")


def recall_at_k(truth: np.ndarray, found: np.ndarray) -> float:
    """Mean over queries of |found ∩ truth| / k for (Q, k) row arrays."""
    hits = [len(set(t.tolist()) & set(f.tolist())) for t, f in zip(truth, found, strict=True)]
    return float(np.mean(hits) / truth.shape[1])
