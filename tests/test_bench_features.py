"""`lavimo bench features` with no options: a small fixed sample, every way to run the encoder, one build."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from helpers import TinyBackbone
from test_features import make_dataset

from lavimo.bench import features as bench
from lavimo.cli import build_parser
from lavimo.io import Rejection, write_rejections
from lavimo.video.encoders import FrameEncoder, Preprocessing, WeightsInfo, openvino_available


def conv_encoder(runtime: str = "torch", **_: object) -> FrameEncoder:
    """A tiny channels-last stand-in for EfficientNet-Lite0 (the bench's code paths, in seconds)."""
    prep = Preprocessing(224, "bicubic", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    weights = WeightsInfo("random-init", None, "tiny-bench", False, "test")
    encoder = FrameEncoder("tiny", TinyBackbone(), 12, prep, weights, channels_last=True)
    return encoder.use_openvino() if runtime == "auto" and openvino_available() else encoder


def test_the_default_bench_is_a_small_fixed_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("LAVIMO_BENCH_ENCODERS", "resolved")
    monkeypatch.setenv("LAVIMO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(bench, "load_frame_encoder", conv_encoder)
    dataset = make_dataset(tmp_path / "results" / "demo", ["train"] * 10)  # the first enabled dataset's frames
    write_rejections(dataset / "rejected.csv", [Rejection("clip9", "features", "x.png", "unreadable")], "features")
    rejected = (dataset / "rejected.csv").read_bytes()
    config = tmp_path / "config.yaml"
    config.write_text(f"results_dir: {tmp_path}/results\n")
    args = build_parser().parse_args(["bench", "features", "--config", str(config)])
    assert args.limit is None and args.func(args) == 0
    out = capsys.readouterr().out
    assert f"features bench: {dataset}, 8 clips" in out
    names = re.findall(r"^    (.+?): [\d.]+ frames/s, max abs diff [\d.e+-]+ \(equal", out, flags=re.M)
    before = f"torch, channels-last (before), {torch.get_num_threads()} threads, batches of 64"
    expected = [before, "torch, NCHW", "torch, batches of 16", "torch, 1 intra-op thread"]
    expected.append("torch, 2 inter-op streams x 1 thread")
    assert names[:5] == expected and (not openvino_available() or "OpenVINO, 1 thread" in names)
    assert "DIFFERENT" not in out
    build = re.search(r"1 decoding worker\(s\): (\d+) frames, build [\d.]+ frames/s .* encoder waits (\d+)%", out)
    assert build and int(build.group(1)) == 8 * 4 * 8  # 8 train clips x 4 views x 8 frames
    assert re.search(r"decoding \+ augmenting a train clip \(4 views\): [\d.]+ CPU s", out)
    assert (dataset / "rejected.csv").read_bytes() == rejected  # the build wrote to a copy of the dataset's rejections
