"""Feature caches built one render shard at a time (the pipeline's jobs) and merged: the same cache as one build."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny_encoder
from PIL import Image
from test_features import make_dataset
from torch import nn

from lavimo.io import LavimoInputError, Rejection, read_rejections, write_rejections
from lavimo.video.build import (
    BuildOptions,
    build_feature_cache,
    encode_shards,
    merge_feature_cache,
    shards_encoder_id,
)
from lavimo.video.cache import FeatureCache
from lavimo.video.encoders import FrameEncoder, Preprocessing, WeightsInfo

OPTS = BuildOptions(views=2, batch_size=2, workers=0, progress=False)
SHARDS = ["0000", "0001", "0002"]


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    """Six clips in three shards; upstream rejected clip1 (prepare) and clip4 (render, in shard 0002's list);
    clip2's frames are broken, so the features stage rejects it."""
    root = make_dataset(tmp_path / "ds", ["train", "val", "train", "test", "train", "train"])
    write_rejections(root / "rejected.csv", [Rejection("clip1", "prepare", "clip1.bvh", "shorter than 1 s")], "prepare")
    render = [Rejection("clip4", "render", "shard 0002", "no body in frame 3")]
    write_rejections(root / "frames" / "0002.rejected.csv", render, "render")
    write_rejections(root / "frames" / "0000.rejected.csv", [], "render")
    Image.new("RGB", (300, 300)).save(root / "frames" / "clip2" / "00.png")
    return root


def _files(cache_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(cache_dir.iterdir()) if not p.name.startswith(".")}


def pool_encoder() -> FrameEncoder:
    """A 12-d encoder of torch and lavimo parts only (picklable into a fresh process): 2x2 average pooling."""
    prep = Preprocessing(224, "bicubic", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    weights = WeightsInfo("random-init", None, "pool", False, "test")
    return FrameEncoder("pool", nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten()), 12, prep, weights)


def _counting_encoder() -> tuple[object, list[int]]:
    encoder, frames = tiny_encoder(), []
    encoder.register_forward_hook(lambda module, args, out: frames.append(len(args[0])))
    return encoder, frames


def test_shards_built_at_once_then_merged_equal_one_build(dataset: Path, tmp_path: Path) -> None:
    frames = dataset / "frames"
    whole = build_feature_cache(dataset, frames, tmp_path / "whole", pool_encoder(), OPTS)
    rejected_whole = read_rejections(dataset / "rejected.csv")
    write_rejections(dataset / "rejected.csv", [], "features")

    out = tmp_path / "sharded"
    context = multiprocessing.get_context("forkserver")  # shard jobs at once, each in its own process
    context.set_forkserver_preload(["lavimo.video.build"])
    with ProcessPoolExecutor(len(SHARDS), mp_context=context) as pool:
        jobs = [pool.submit(encode_shards, dataset, frames, out, pool_encoder(), OPTS, [s]) for s in SHARDS]
        metas = [job.result() for job in jobs]
    assert {m["encoder_id"] for m in metas} == {whole.encoder_id}
    cache_dir = out / whole.encoder_id
    assert not (cache_dir / "index.json").exists() and not (out / "current.json").exists()
    assert not [r for r in read_rejections(dataset / "rejected.csv") if r.stage == "features"]  # the merge's rows
    assert shards_encoder_id(out, SHARDS) == whole.encoder_id

    merged = merge_feature_cache(dataset, frames, out, whole.encoder_id)
    assert _files(merged.path) == _files(whole.path)  # meta, index, every shard's .npy and .json, byte for byte
    assert (out / "current.json").read_text() == (tmp_path / "whole" / "current.json").read_text()
    assert read_rejections(dataset / "rejected.csv") == rejected_whole
    assert merged.clip_ids == ["clip0", "clip3", "clip5"]  # clip1, clip4 skipped upstream; clip2 rejected here
    assert [r.item for r in rejected_whole if r.stage == "features"] == ["clip2"]
    assert FeatureCache.open_current(out).views("clip5").shape == (2, 8, 12)
    assert merged.meta["encoder"]["name"] == "pool"


def test_a_rerun_encodes_only_what_is_missing(dataset: Path, tmp_path: Path) -> None:
    frames, out = dataset / "frames", tmp_path / "features"
    for shard in SHARDS:
        encode_shards(dataset, frames, out, tiny_encoder(), OPTS, [shard])
    cache = merge_feature_cache(dataset, frames, out, shards_encoder_id(out, SHARDS))
    stamps = {p.name: p.stat().st_mtime_ns for p in cache.path.glob("*.npy")}

    encoder, encoded = _counting_encoder()
    for shard in SHARDS:
        encode_shards(dataset, frames, out, encoder, OPTS, [shard])
    assert encoded == [] and {p.name: p.stat().st_mtime_ns for p in cache.path.glob("*.npy")} == stamps

    (cache.path / "0001.json").unlink()  # shard 0001 (clip3, a test clip: one view of 8 frames) is redone alone
    with pytest.raises(LavimoInputError, match=r"0001\.json: shard 0001 is not encoded"):
        merge_feature_cache(dataset, frames, out, cache.encoder_id)
    encode_shards(dataset, frames, out, encoder, OPTS)
    assert encoded == [8]
    assert merge_feature_cache(dataset, frames, out, cache.encoder_id).clip_ids == cache.clip_ids


def test_the_merge_needs_every_shard_of_one_cache(dataset: Path, tmp_path: Path) -> None:
    frames, out = dataset / "frames", tmp_path / "features"
    encode_shards(dataset, frames, out, tiny_encoder(), OPTS, ["0000", "0001"])
    with pytest.raises(LavimoInputError, match=r"shards/current-0002\.json: features shard pointer does not exist"):
        shards_encoder_id(out, SHARDS)
    encode_shards(dataset, frames, out, tiny_encoder("tiny-b"), OPTS, ["0002"])
    with pytest.raises(LavimoInputError, match=r"different caches \(0000: tiny-\w+, 0002: tiny-\w+\)"):
        shards_encoder_id(out, SHARDS)
    with pytest.raises(LavimoInputError, match="the manifest has no shard '0009'"):
        encode_shards(dataset, frames, out, tiny_encoder(), OPTS, ["0009"])


def test_cli_shard_jobs_and_merge(dataset: Path) -> None:
    from lavimo.commands.features import register

    parser = argparse.ArgumentParser()
    register(parser)
    common = ["--dataset-dir", str(dataset), "--frames-dir", str(dataset / "frames"), "--out", str(dataset / "f")]
    build = ["build", *common, "--views", "2", "--encoder", "efficientnet-lite0", "--workers", "0"]
    for shard in ("0001", "0000"):
        args = parser.parse_args([*build, "--shard", shard])
        assert args.func(args) == 0
    args = parser.parse_args(["merge", *common])
    with pytest.raises(LavimoInputError, match=r"current-0002\.json: features shard pointer does not exist"):
        args.func(args)
    args = parser.parse_args([*build, "--shard", "0002"])
    assert args.func(args) == 0
    args = parser.parse_args(["merge", *common])
    assert args.func(args) == 0
    cache = FeatureCache.open_current(dataset / "f")
    assert cache.clip_ids == ["clip0", "clip3", "clip5"] and cache.dim == 1280
    pointer = json.loads((dataset / "f" / "shards" / "current-0002.json").read_text())
    assert pointer["encoder_id"] == cache.encoder_id
    assert np.isfinite(cache.views("clip0").astype(np.float32)).all()


def test_each_shard_job_waits_for_its_own_render_shard_only(repo_root: Path, tmp_path: Path) -> None:
    """In the workflow, features of shard N start once render shard N is done; the merge waits for them all and
    for the merged render rejections (both rewrite their rows of the dataset's rejected.csv)."""
    config = tmp_path / "config.yaml"
    config.write_text(
        f"results_dir: {tmp_path}/results\ndatasets: {{demo: {{limit: 2}}}}\nprepare: {{shard_size: 2}}\n"
    )
    snakemake = [str(Path(sys.executable).parent / "snakemake"), "--configfile", str(config), "--cores", "1"]
    for args in (["prepare_demo"], ["-n", "features_demo"]):
        result = subprocess.run([*snakemake, *args], cwd=repo_root, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    blocks, results = {}, tmp_path / "results"
    for block in re.split(r"^\[.*\]$", result.stdout, flags=re.M):  # a job's lines follow its time stamp
        rule, inputs, output = (re.search(rf"^ *{key}:? (.*)$", block, re.M) for key in ("rule", "input:", "output:"))
        if rule and inputs and output:
            paths = {str(Path(i).relative_to(results)) for i in inputs.group(1).split(", ")}
            blocks[(rule.group(1).rstrip(":"), Path(output.group(1)).name)] = paths
    for shard in ("0000", "0001"):
        inputs = blocks[("features", f"current-{shard}.json")]
        assert inputs == {"demo/manifest.parquet", f"demo/frames/{shard}.done", f"demo/frames/{shard}.rejected.csv"}
    merge = blocks[("features_merge", "current.json")]
    assert {"demo/frames/rejected.csv", "demo/features/shards/current-0000.json"} < merge
