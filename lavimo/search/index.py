"""The search index on disk: build it from a run and a library, update it incrementally, load it.

Layout of an index folder::

    index.json               kind, format, the model's identity (run, checkpoint sha256, text and video encoders,
                             frame preprocessing), the library, clip count, embedding size, search backend and
                             settings, preview geometry, the names of this generation's files and their sha256
    embeddings-{gen}.npy     (N, C) float32 L2-normalised motion embeddings, row i = clip i
    clips-{gen}.parquet      clip_id, caption, source, duration (s), signature, preview (path under previews/)
    hnsw-{gen}.faiss         the FAISS HNSW index of the embeddings (only at or above the cut-over)
    previews/{name}.png      one preview strip per clip (lavimo.search.previews)
    rejected.csv             library files that could not be indexed, with the reason
    build.json               what the last build did (counts, backend, seconds, rejections)

Writes are atomic: a build writes the next generation's files, then ``index.json`` naming them (the commit),
then removes the previous generation. A rebuild with the same model embeds only the clips whose signature is
new or changed, keeps the rest, and drops clips no longer in the library; a long build commits every
``commit_every`` clips, so a rerun after a kill resumes. An index folder of another model is refused.

Loading checks what it reads: ``index.json``'s fields, each file against its sha256 (the FAISS graph when it is
first used), the shapes, and that every embedding row is finite and of unit norm. A damaged index is a
:class:`DamagedIndexError` naming the file; rerunning ``lavimo index`` on the folder rebuilds it from scratch. An
index built before checksums were recorded is read unverified (with a warning); its next build records them.

Public API (used by ``lavimo index``, ``lavimo search`` and the web server): :func:`build_index` ->
:class:`BuildReport`; :meth:`SearchIndex.load` -> :class:`SearchIndex` (clips table, embeddings, model identity,
:meth:`SearchIndex.search`). Every bad input raises :class:`lavimo.search.encode.SearchInputError`.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from lavimo import __version__
from lavimo.io import (
    LavimoInputError,
    Rejection,
    atomic_path,
    file_sha256,
    load_npy,
    save_json,
    save_npy,
    write_rejections,
)
from lavimo.search.ann import EXACT, HNSW, AnnSettings, Backend, HnswSearch, choose_backend, open_backend
from lavimo.search.encode import ModelIdentity, RunEncoders, SearchInputError, run_dataset_dir
from lavimo.search.library import STAGE, BvhLibrary, DatasetLibrary, Entry
from lavimo.search.previews import PREVIEW_FRAMES, TILE, make_preview

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]

KIND = "lavimo-search-index"
INDEX_FORMAT = 1
INDEX_FILE = "index.json"
PREVIEWS = "previews"
REJECTED = "rejected.csv"
BUILD_REPORT = "build.json"  # what the last build did (the workflow's target: index.json survives a rerun)
GENERATION_FILES = ("embeddings-*.npy", "clips-*.parquet", "hnsw-*.faiss")
CLIP_COLUMNS = ("clip_id", "caption", "source", "duration", "signature", "preview")
SHA256 = "sha256"  # index.json key: {"embeddings" | "clips" | "ann": sha256 of that file (None: no such file)}
NORM_TOLERANCE = 1e-3  # how far an embedding row's L2 norm may be from 1 (float32 rounding is ~1e-7)
FILE_ROLES = ("embeddings", "clips", "ann")
REBUILD = "rerun `lavimo index --run RUN --out {folder}` to rebuild it"


class DamagedIndexError(SearchInputError):
    """An index whose files are missing, malformed or not what ``index.json`` records (a rebuild in place redoes it)."""


def preview_name(clip_id: str) -> str:
    """A flat, safe file name for a clip's preview (ids of BVH libraries may hold ``/``)."""
    import hashlib

    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in clip_id)
    if safe != clip_id or safe.startswith("."):
        safe = f"{safe.lstrip('.')}-{hashlib.sha1(clip_id.encode()).hexdigest()[:8]}"
    return f"{safe}.png"


class SearchIndex:
    """A loaded index: ``clips`` (DataFrame, row i = embedding i), ``embeddings`` (N, C), ``identity``, ``meta``."""

    def __init__(self, path: Path, meta: dict[str, Any], clips: pd.DataFrame, embeddings: np.ndarray) -> None:
        self.path, self.meta, self.clips, self.embeddings = path, meta, clips, embeddings
        self.identity = ModelIdentity.from_dict(meta["model"])
        self.settings = AnnSettings.from_dict(meta["search"]["settings"])
        self.backend_kind: str = meta["search"]["backend"]
        self._rows = {clip_id: row for row, clip_id in enumerate(clips["clip_id"])}
        self._backend: Backend | None = None

    @classmethod
    def load(cls, path: PathLike) -> SearchIndex:
        """Open an index folder; a missing, foreign or old index is a :class:`SearchInputError`, a damaged one a
        :class:`DamagedIndexError` (both name the file). The folder is kept as an absolute path: a server answers
        from its own working directory (Flask's send_file resolves a relative path against the package)."""
        path = Path(path).absolute()
        meta = read_meta(path)
        files, checksums = meta["files"], meta.get(SHA256)
        if checksums is None:
            log.warning(
                "%s: no file checksums (built by an older lavimo): its files are read unverified; rerun `lavimo index` "
                "to record them",
                path / INDEX_FILE,
            )
        embeddings_path, clips_path = path / files["embeddings"], path / files["clips"]
        for role, file in (("embeddings", embeddings_path), ("clips", clips_path)):
            check_file(file, None if checksums is None else checksums.get(role))
        try:
            embeddings = load_npy(embeddings_path, "index embeddings", ndim=2, mmap=True)
        except LavimoInputError as error:
            raise DamagedIndexError(error.path, f"{error.problem}; {REBUILD.format(folder=path)}") from error
        clips = _read_clips(clips_path)
        count, dim = meta["count"], meta["dim"]
        if embeddings.dtype != np.float32 or embeddings.shape != (count, dim):
            raise DamagedIndexError(
                embeddings_path,
                f"{embeddings.dtype}{embeddings.shape} embeddings, {INDEX_FILE} says float32({count}, {dim}); "
                + REBUILD.format(folder=path),
            )
        if len(clips) != count:
            raise DamagedIndexError(
                clips_path, f"{len(clips)} clips, {INDEX_FILE} says {count}; {REBUILD.format(folder=path)}"
            )
        embeddings = np.asarray(embeddings, dtype=np.float32)
        check_rows(embeddings, embeddings_path, clips)
        return cls(path, meta, clips, embeddings)

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def backend(self) -> Backend:
        """The nearest-neighbour backend (exact, or the saved HNSW graph), opened once."""
        if self._backend is None:
            self._backend = open_backend(self.backend_kind, self.embeddings, self.ann_path(), self.settings)
        return self._backend

    def ann_path(self) -> Path | None:
        """The saved HNSW graph, checked against its sha256 (None when the index has none)."""
        ann = self.meta["files"].get("ann")
        if not ann:
            return None
        checksums = self.meta.get(SHA256)
        check_file(self.path / ann, None if checksums is None else checksums.get("ann"))
        return self.path / ann

    def row(self, clip_id: str) -> int:
        """The row of a clip id; an unknown id is a :class:`SearchInputError`."""
        if clip_id not in self._rows:
            raise SearchInputError(f"clip {clip_id!r}", f"not in the index {self.path} ({len(self)} clips)")
        return self._rows[clip_id]

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and rows of the ``k`` nearest clips of one (C,) query embedding, best first."""
        scores, rows = self.backend.search(np.asarray(query, np.float32).reshape(1, -1), k)
        keep = rows[0] >= 0
        return scores[0][keep], rows[0][keep]

    def preview_path(self, row: int) -> Path | None:
        """The preview strip of a row's clip, if the index has one."""
        name = self.clips["preview"].iat[row]
        return self.path / PREVIEWS / name if name else None


@dataclass
class BuildReport:
    """What a build did."""

    path: Path
    total: int
    embedded: int
    kept: int
    removed: int
    backend: str
    rejected: list[Rejection] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able record (``build.json``)."""
        fields = ("total", "embedded", "kept", "removed", "backend")
        return {"path": str(self.path), **{k: getattr(self, k) for k in fields}, "seconds": round(self.seconds, 2)} | {
            "rejected": [{"item": r.item, "source": r.source, "reason": r.reason} for r in self.rejected]
        }

    def summary(self) -> str:
        """One line for the CLI."""
        return (
            f"{self.path}: {self.total} clips ({self.embedded} embedded, {self.kept} kept, {self.removed} removed), "
            f"{len(self.rejected)} rejected; {self.backend} search; {self.seconds:.1f} s"
        )


def read_meta(path: Path) -> dict[str, Any]:
    """An index folder's ``index.json``, its fields checked: a missing, foreign or old one is a
    :class:`SearchInputError`, a malformed one a :class:`DamagedIndexError` (both name the file)."""
    meta_path = path / INDEX_FILE
    if not path.exists():
        raise SearchInputError(path, "no search index here (build one with `lavimo index --run RUN --out DIR`)")
    if not meta_path.is_file():
        raise SearchInputError(path, f"not a lavimo search index (no {INDEX_FILE})")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as error:
        raise SearchInputError(meta_path, f"unreadable index file ({error})") from error
    if not isinstance(meta, dict) or meta.get("kind") != KIND:
        raise SearchInputError(meta_path, "not a lavimo search index (another kind of index.json)")
    if meta.get("format") != INDEX_FORMAT:
        raise SearchInputError(
            meta_path,
            f"index format {meta.get('format')!r}, expected {INDEX_FORMAT}: rebuild it with `lavimo index`",
        )
    problem = _meta_problem(meta)
    if problem:
        raise DamagedIndexError(meta_path, f"malformed index file: {problem}; {REBUILD.format(folder=path)}")
    return meta


def _meta_problem(meta: dict[str, Any]) -> str | None:
    """What is wrong with the fields of an index.json, or None."""
    expected = {"generation": int, "created": str, "count": int, "dim": int, "model": dict, "search": dict}
    for key, kind in {**expected, "files": dict}.items():
        if key not in meta:
            return f"no {key!r}"
        if not isinstance(meta[key], kind) or isinstance(meta[key], bool):
            return f"{key!r} is {type(meta[key]).__name__}, not {kind.__name__}"
    if meta["count"] < 0 or meta["dim"] < 1:
        return f"count {meta['count']} and dim {meta['dim']}"
    files = meta["files"]
    for role in FILE_ROLES:
        name = files.get(role)
        if name is None and role == "ann":
            continue
        if not isinstance(name, str) or not name or Path(name).name != name:
            return f"files.{role} is {name!r}, not a file name in the index folder"
    checksums = meta.get(SHA256)
    if checksums is not None:
        if not isinstance(checksums, dict):
            return f"{SHA256!r} is {type(checksums).__name__}, not a table of the files' sha256"
        for role in FILE_ROLES:
            digest = checksums.get(role)
            if files.get(role) and not (isinstance(digest, str) and len(digest) == 64):
                return f"{SHA256}.{role} is {digest!r}, not the sha256 of {files[role]}"
    search = meta["search"]
    if search.get("backend") not in (EXACT, HNSW) or not isinstance(search.get("settings"), dict):
        return f"search backend {search.get('backend')!r} or its settings unreadable"
    if search["backend"] == HNSW and not files.get("ann"):
        return "an HNSW index without files.ann"
    try:
        ModelIdentity.from_dict(meta["model"])
        AnnSettings.from_dict(search["settings"])
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        return f"model or search settings unreadable ({type(error).__name__}: {error})"
    return None


def check_file(path: Path, sha256: str | None) -> None:
    """Refuse a file of the index that is missing or whose bytes differ from the sha256 index.json records."""
    if not path.is_file():
        raise DamagedIndexError(path, f"missing, though {INDEX_FILE} names it; {REBUILD.format(folder=path.parent)}")
    if sha256 is not None and file_sha256(path) != sha256:
        raise DamagedIndexError(
            path,
            f"does not match its sha256 in {INDEX_FILE} (corrupt or overwritten); {REBUILD.format(folder=path.parent)}",
        )


def check_rows(embeddings: np.ndarray, path: Path, clips: pd.DataFrame) -> None:
    """Refuse embedding rows that are not finite unit vectors (their scores would be NaN or outside [-1, 1])."""
    finite = np.isfinite(embeddings).all(axis=1)
    with np.errstate(over="ignore", invalid="ignore"):
        norms = np.linalg.norm(np.where(finite[:, None], embeddings, 0), axis=1)
    bad = ~finite | ~(np.abs(norms - 1) <= NORM_TOLERANCE)
    if bad.any():
        row = int(np.argmax(bad))
        what = "NaN or Inf values" if not finite[row] else f"norm {norms[row]:.6g}"
        raise DamagedIndexError(
            path,
            f"{int(bad.sum())} embedding row(s) are not finite unit vectors (row {row}, clip "
            f"{clips['clip_id'].iat[row]!r}: {what}); {REBUILD.format(folder=path.parent)}",
        )


def _read_clips(path: Path) -> pd.DataFrame:
    """The clips table, or a :class:`DamagedIndexError` naming it."""
    try:
        clips = pd.read_parquet(path)
    except Exception as error:  # pyarrow raises its own kinds for a damaged file
        problem = f"unreadable clips table ({(str(error).splitlines() or [type(error).__name__])[0]})"
        raise DamagedIndexError(path, f"{problem}; {REBUILD.format(folder=path.parent)}") from error
    if tuple(clips.columns) != CLIP_COLUMNS:
        raise DamagedIndexError(
            path,
            f"clips table has columns {list(clips.columns)}, not {list(CLIP_COLUMNS)}; "
            + REBUILD.format(folder=path.parent),
        )
    return clips


def _recorded_checkpoint(out: Path) -> str | None:
    """The checkpoint sha256 a (possibly damaged) index.json records, if it can be read."""
    try:
        model = json.loads((out / INDEX_FILE).read_text()).get("model")
        return str(model["checkpoint_sha256"])
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return None


def _previous(out: Path, identity: ModelIdentity) -> SearchIndex | None:
    """The index already in ``out`` (None if there is none, or a damaged one of the same model: it is rebuilt from
    scratch); one of another model is refused."""
    if not (out / INDEX_FILE).exists():
        foreign = [p.name for p in out.iterdir() if not _artifact(p.name)] if out.is_dir() else []
        if foreign:
            raise SearchInputError(out, f"folder holds {foreign[0]!r} and no {INDEX_FILE}: choose an empty --out")
        return None  # a first build killed before its first commit leaves only its own files: start again
    try:
        old = SearchIndex.load(out)
    except DamagedIndexError as error:
        recorded = _recorded_checkpoint(out)
        if recorded is not None and recorded != identity.checkpoint_sha256:
            raise SearchInputError(
                out, f"damaged index of another model (checkpoint sha256 {recorded[:12]}): choose another --out"
            ) from error
        log.warning("%s: rebuilding the whole index", error)
        return None
    if old.identity.checkpoint_sha256 != identity.checkpoint_sha256:
        raise SearchInputError(
            out,
            f"index of another model ({old.identity.describe()}), not {identity.describe()}: "
            "choose another --out or delete the folder",
        )
    return old


class _Writer:
    """Collects the clips of the next generation and commits them (files, then index.json, then cleanup)."""

    def __init__(self, out: Path, old: SearchIndex | None, identity: ModelIdentity, library: Any) -> None:
        self.out, self.old, self.identity, self.library = out, old, identity, library
        self.generation = int(old.meta["generation"]) + 1 if old is not None else 1
        self.rows: list[dict[str, Any]] = []
        self.vectors: list[np.ndarray] = []
        self.created = old.meta["created"] if old is not None else _now()

    def add(self, rows: list[dict[str, Any]], vectors: np.ndarray) -> None:
        self.rows += rows
        self.vectors.append(np.asarray(vectors, np.float32))

    def commit(self, settings: AnnSettings, complete: bool, appended_from: int | None = None) -> str:
        """Write the generation and point index.json at it; returns the backend used."""
        gen = self.generation
        embeddings = np.concatenate(self.vectors) if self.vectors else np.zeros((0, self.identity.dim), np.float32)
        clips = pd.DataFrame(self.rows, columns=list(CLIP_COLUMNS))
        files = {"embeddings": f"embeddings-{gen:04d}.npy", "clips": f"clips-{gen:04d}.parquet", "ann": None}
        save_npy(self.out / files["embeddings"], embeddings)
        with atomic_path(self.out / files["clips"]) as tmp:
            clips.to_parquet(tmp, index=False)
        backend = choose_backend(len(embeddings), settings) if complete and len(embeddings) else EXACT
        build_s = 0.0
        if backend == HNSW:
            files["ann"] = f"hnsw-{gen:04d}.faiss"
            start = time.perf_counter()
            self._hnsw(embeddings, settings, appended_from).save(self.out / files["ann"])
            build_s = time.perf_counter() - start
        meta = self._meta(files, len(embeddings), backend, settings, complete, build_s)
        meta[SHA256] = {role: file_sha256(self.out / name) if name else None for role, name in files.items()}
        save_json(self.out / INDEX_FILE, meta)
        self._remove_stale(files)
        self.generation += 1
        return backend

    def _hnsw(self, embeddings: np.ndarray, settings: AnnSettings, appended_from: int | None) -> HnswSearch:
        """The previous graph with the new rows added when the old rows are an unchanged prefix, else a new one."""
        old = self.old
        if appended_from is not None and old is not None and old.backend_kind == HNSW and old.meta["files"]["ann"]:
            graph = HnswSearch.load(old.ann_path(), settings.ef_for(len(embeddings)))
            if graph.size == appended_from:
                graph.add(embeddings[appended_from:])
                return graph
        return HnswSearch.build(embeddings, settings)

    def _meta(
        self, files: dict, count: int, backend: str, settings: AnnSettings, complete: bool, build_s: float
    ) -> dict[str, Any]:
        return {
            "kind": KIND,
            "format": INDEX_FORMAT,
            "generation": self.generation,
            "created": self.created,
            "updated": _now(),
            "complete": complete,
            "count": count,
            "dim": self.identity.dim,
            "model": self.identity.to_dict(),
            "library": self.library.describe(),
            "search": {
                "backend": backend,
                "settings": settings.to_dict(),
                "ef_search": settings.ef_for(count) if backend == HNSW else None,
                "ann_build_seconds": round(build_s, 2),
            },
            "previews": {"dir": PREVIEWS, "frames": PREVIEW_FRAMES, "tile": TILE, "layout": "horizontal strip"},
            "files": files,
            "lavimo_version": __version__,
        }

    def _remove_stale(self, files: dict) -> None:
        keep = {name for name in files.values() if name}
        for pattern in GENERATION_FILES:
            for path in self.out.glob(pattern):
                if path.name not in keep:
                    path.unlink()


def _artifact(name: str) -> bool:
    """Whether a file name in an index folder is one a build writes (or its temporary file)."""
    import fnmatch

    own = (INDEX_FILE, PREVIEWS, REJECTED, BUILD_REPORT, *GENERATION_FILES)
    return name.startswith(".") or any(fnmatch.fnmatch(name, pattern) for pattern in own)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _row(entry: Entry, duration: float, preview: str) -> dict[str, Any]:
    return {
        "clip_id": entry.clip_id,
        "caption": entry.caption,
        "source": entry.source,
        "duration": float(duration),
        "signature": entry.signature,
        "preview": preview,
    }


def build_index(
    run: PathLike,
    out: PathLike,
    *,
    dataset_dir: PathLike | None = None,
    bvh_dir: PathLike | None = None,
    mirrors: bool = True,
    settings: AnnSettings | None = None,
    device: str = "auto",
    batch_size: int = 64,
    commit_every: int = 20_000,
    progress: bool = True,
    encoders: RunEncoders | None = None,
) -> BuildReport:
    """Build or update the index in ``out`` from a library: ``bvh_dir``, else ``dataset_dir``, else the run's dataset.

    Only clips that are new or whose motion changed are embedded (and get a new preview); the rest are kept.
    """
    start = time.perf_counter()
    out, settings = Path(out), settings or AnnSettings()
    encoders = encoders or RunEncoders(run, device)
    if bvh_dir is not None:
        library: Any = BvhLibrary(bvh_dir)
    else:
        library = DatasetLibrary(dataset_dir or _run_dataset(encoders.identity), mirrors=mirrors)
    old = _previous(out, encoders.identity)
    entries = library.entries()
    old_rows = {} if old is None else {r["clip_id"]: (i, r) for i, r in enumerate(old.clips.to_dict("records"))}
    current = {e.clip_id: e for e in entries}
    kept = [e for e in entries if e.clip_id in old_rows and old_rows[e.clip_id][1]["signature"] == e.signature]
    kept.sort(key=lambda e: old_rows[e.clip_id][0])  # old order first: an HNSW graph can then be extended
    kept_ids = {e.clip_id for e in kept}
    todo = [e for e in entries if e.clip_id not in kept_ids]
    removed = sum(clip_id not in current for clip_id in old_rows)
    (out / PREVIEWS).mkdir(parents=True, exist_ok=True)

    writer = _Writer(out, old, encoders.identity, library)
    if kept:
        rows = [_row(e, _duration(e, old_rows[e.clip_id][1]), old_rows[e.clip_id][1]["preview"]) for e in kept]
        writer.add(rows, old.embeddings[[old_rows[e.clip_id][0] for e in kept]])
    unchanged_prefix = [old_rows[e.clip_id][0] for e in kept] == list(range(len(kept))) and old is not None
    appended_from = len(kept) if unchanged_prefix else None
    bar = tqdm(total=len(todo), unit="clip", desc="index", disable=not progress)
    since_commit = 0
    for chunk_start in range(0, len(todo), batch_size * 4):
        chunk = todo[chunk_start : chunk_start + batch_size * 4]
        motions = list(library.motions([e.clip_id for e in chunk]))
        if motions:
            vectors = encoders.motions([m.features for m in motions], batch_size)
            rows = []
            for m in motions:
                name = preview_name(m.clip_id)
                kind = make_preview(out / PREVIEWS / name, m.clip_id, m.joints, library.frames_dir)
                rows.append(_row(current[m.clip_id], m.duration, name if kind else ""))
            writer.add(rows, vectors)
            since_commit += len(motions)
        bar.update(len(chunk))
        if since_commit >= commit_every and chunk_start + len(chunk) < len(todo):
            writer.commit(settings, complete=False)  # a kill from here on keeps what is embedded
            appended_from, since_commit = None, 0
    bar.close()
    if not writer.rows:
        write_rejections(out / REJECTED, library.rejected, STAGE)
        first = library.rejected[0] if library.rejected else None
        problem = f"; first problem: {first.source}: {first.reason}" if first else ""
        raise SearchInputError(library.root, f"no clip of the library could be indexed{problem}")
    backend = writer.commit(settings, complete=True, appended_from=appended_from)
    _clean_previews(out, {r["preview"] for r in writer.rows})
    write_rejections(out / REJECTED, library.rejected, STAGE)
    for rejection in library.rejected:
        log.warning("skipped %s: %s", rejection.source, rejection.reason)
    embedded = len(writer.rows) - len(kept)
    report = BuildReport(out, len(writer.rows), embedded, len(kept), removed, backend, library.rejected)
    report.seconds = time.perf_counter() - start
    save_json(out / BUILD_REPORT, report.to_dict())
    return report


def _duration(entry: Entry, old: dict[str, Any]) -> float:
    return old["duration"] if np.isnan(entry.duration) else entry.duration


def _run_dataset(identity: ModelIdentity) -> Path:
    """The dataset the run was trained on (the default library)."""
    found = run_dataset_dir(Path(identity.run))
    if found is None:
        raise SearchInputError(identity.run, "the run's dataset is not here: pass --dataset-dir or --bvh")
    return found


def _clean_previews(out: Path, keep: set[str]) -> None:
    """Remove previews of clips that left the index."""
    for path in (out / PREVIEWS).glob("*.png"):
        if path.name not in keep:
            path.unlink()
