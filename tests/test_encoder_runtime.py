"""The OpenVINO CPU runtime of the frame encoders: the same features as torch to within float16 rounding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_features import figure_image

from lavimo.video import encoders
from lavimo.video.augment import AugmentConfig, make_views
from lavimo.video.encoders import load_frame_encoder

pytest.importorskip("openvino")


def frames_224() -> torch.Tensor:
    """Training views (random crops, jitter, blur, flips...) of a stick-figure clip: 2 views x 4 frames."""
    clip = torch.stack(
        [torch.from_numpy(np.asarray(figure_image(512, 0.5 * k)).copy()).permute(2, 0, 1) for k in range(4)]
    )
    return make_views(clip, "walk", 2, AugmentConfig(), 224, 0, train=True).flatten(0, 1)


@pytest.mark.parametrize("name", ["efficientnet-lite0", pytest.param("clip-vit-b32-random", marks=pytest.mark.slow)])
def test_openvino_equals_torch_within_float16(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAVIMO_CACHE_DIR", str(tmp_path))
    kwargs = {"random_init": True} if name.endswith("random") else {"encoder": name}
    reference = load_frame_encoder(**kwargs)
    fast = load_frame_encoder(**kwargs, runtime="openvino")
    assert (reference.runtime, fast.runtime) == ("torch", "openvino")
    batch = frames_224()
    expected, got = reference(batch), fast(batch)
    tolerance = float(np.finfo(np.float16).eps) * float(expected.abs().max())  # one float16 step at the largest value
    assert got.shape == expected.shape and got.dtype == torch.float32
    assert float((got - expected).abs().max()) < tolerance / 20
    converted = sorted(p.name for p in (tmp_path / "openvino").iterdir())
    assert len(converted) == 2 and converted[0].startswith(reference.name) and converted[1].endswith(".xml")
    stamp = (tmp_path / "openvino" / converted[1]).stat().st_mtime_ns
    again = load_frame_encoder(**kwargs, runtime="auto")  # CPU + openvino installed: openvino, converted once
    assert again.runtime == "openvino" and (tmp_path / "openvino" / converted[1]).stat().st_mtime_ns == stamp
    assert torch.equal(again(batch), got)


def test_auto_falls_back_to_torch_and_openvino_is_for_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(encoder: object, threads: int) -> None:
        raise RuntimeError("unsupported operation")

    monkeypatch.setattr(encoders, "openvino_backbone", fail)
    assert load_frame_encoder("efficientnet-lite0", runtime="auto").runtime == "torch"
    with pytest.raises(RuntimeError, match="unsupported operation"):
        load_frame_encoder("efficientnet-lite0", runtime="openvino")
    with pytest.raises(ValueError, match="runs on the CPU, not on meta"):
        load_frame_encoder("efficientnet-lite0", runtime="openvino", device="meta")
    with pytest.raises(ValueError, match="unknown runtime 'onnx'"):
        load_frame_encoder("efficientnet-lite0", runtime="onnx")
