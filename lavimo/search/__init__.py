"""Search a motion library by text, by video or by motion with a trained run (``lavimo index``, ``lavimo search``).

Modules, one concept each:

- :mod:`~lavimo.search.library`: the libraries an index is built from (a prepared dataset, a folder of BVH files).
- :mod:`~lavimo.search.encode`: the run's encoders (motion, text, video frames), the model identity an index
  records, the frame-encoder check; :class:`SearchInputError`.
- :mod:`~lavimo.search.index`: the index folder: :func:`build_index` (incremental, atomic) and
  :meth:`SearchIndex.load`.
- :mod:`~lavimo.search.ann`: exact search (one matrix product) or FAISS HNSW above the measured cut-over.
- :mod:`~lavimo.search.video`: a query video file or image folder -> 8 uniformly sampled frames.
- :mod:`~lavimo.search.query`: :class:`Searcher` -> lists of :class:`Hit`.
- :mod:`~lavimo.search.previews`: preview strips and contact sheets.

A web server uses it like the CLI does::

    searcher = Searcher(SearchIndex.load("index/"))      # loads the index and its model once
    try:
        hits = searcher.search_text("a person waves", k=10)  # or search_video / search_motion / search_bvh
    except SearchInputError as error:                   # bad input: answer 4xx with str(error), one line
        ...
    [hit.to_dict() for hit in hits]  # rank, clip_id, score, caption, preview_path (a PNG strip of 8 tiles)

Nothing heavy (torch, FAISS) is imported until a function needs it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_K", "BuildReport", "Hit", "SearchIndex", "SearchInputError", "Searcher", "build_index"]

MAX_K = 100  # the most results one query returns (the CLI and the web page alike): a page, not the library

_HOMES = {
    "BuildReport": "lavimo.search.index",
    "SearchIndex": "lavimo.search.index",
    "build_index": "lavimo.search.index",
    "Hit": "lavimo.search.query",
    "Searcher": "lavimo.search.query",
    "SearchInputError": "lavimo.search.encode",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
