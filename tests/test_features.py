"""Frame encoders and the feature cache: format, resume, invalidation, bad input.

Cache plumbing uses a tiny stand-in backbone (fast); the real offline EfficientNet-Lite0 weights and the
random-init CLIP ViT-B/32 are each loaded once.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import tiny_encoder
from PIL import Image, ImageDraw
from torch import nn

from lavimo.datasets.manifest import write_manifest
from lavimo.io import LavimoInputError, read_rejections
from lavimo.video.build import BuildOptions, build_feature_cache
from lavimo.video.cache import FeatureCache
from lavimo.video.encoders import load_frame_encoder, read_state_dict
from lavimo.video.frames import decode_frame, load_clip_frames

SIZE = 256  # frames as small as the training crop keep the tests fast
ROOT = Path(__file__).resolve().parents[1]
WALK = ROOT / "tests" / "data" / "humanml3d" / "new_joints" / "012314.npy"


def figure_image(size: int, phase: float, background: int = 200) -> Image.Image:
    """A stick figure on a plain background (head, torso, legs), pose set by ``phase``."""
    image = Image.new("RGB", (size, size), (background, background, background + 10))
    draw = ImageDraw.Draw(image)
    s = size / 256
    x = size / 2 + 20 * s * np.sin(phase)
    draw.ellipse([x - 16 * s, 40 * s, x + 16 * s, 72 * s], fill=(90, 60, 50))
    draw.rectangle([x - 14 * s, 72 * s, x + 14 * s, 150 * s], fill=(40, 80, 160))
    for sign in (-1, 1):
        foot = x + sign * (30 + 20 * np.cos(phase)) * s
        draw.line([x, 150 * s, foot, 230 * s], fill=(30, 30, 30), width=max(1, int(9 * s)))
        draw.line([x, 80 * s, x + sign * 40 * s, (120 + 30 * sign * np.sin(phase)) * s], fill=(30, 30, 30), width=6)
    return image


def make_dataset(root: Path, splits: list[str], size: int = SIZE) -> Path:
    """A manifest and rendered-looking frames ``{root}/frames/{clip}/00..07.png + meta.json``."""
    rows = []
    for c, split in enumerate(splits):
        clip_id = f"clip{c}"
        clip_dir = root / "frames" / clip_id
        clip_dir.mkdir(parents=True)
        for k in range(8):
            figure_image(size, 0.7 * k + c).save(clip_dir / f"{k:02d}.png")
        meta = {"indices": list(range(0, 32, 4)), "resolution": [size, size], "avatar": c % 13}
        (clip_dir / "meta.json").write_text(json.dumps(meta))
        texts = [{"text": f"a person walks {c}", "start": 0.0, "end": 0.0}]
        rows.append(
            {"clip_id": clip_id, "source": "test", "split": split, "fps": 20, "n_frames": 32, "texts": texts,
             "avatar": c % 13, "mirrored_from": None, "shard": f"{c // 2:04d}"}
        )  # fmt: skip
    write_manifest(root, pd.DataFrame(rows))
    return root


OPTS = BuildOptions(views=2, batch_size=2, workers=0, progress=False)


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "ds", ["train", "val", "test", "train"])


def test_cache_shapes_dtype_index_and_padding(dataset: Path) -> None:
    cache = build_feature_cache(dataset, dataset / "frames", dataset / "features", tiny_encoder(), OPTS)
    assert cache.encoder_id.startswith("tiny-") and cache.path.parent == dataset / "features"
    assert sorted(cache.clip_ids) == ["clip0", "clip1", "clip2", "clip3"]
    assert cache.get("clip0", 1).shape == (8, 12) and cache.get("clip0", 1).dtype == np.float16
    assert cache.n_views("clip0") == 2 and cache.n_views("clip1") == 1 and cache.split("clip2") == "test"
    assert cache.views("clip3").shape == (2, 8, 12) and cache.views("clip1").shape == (1, 8, 12)
    shard = np.load(cache.path / "0000.npy", mmap_mode="r")
    assert isinstance(shard, np.memmap) and shard.shape == (2, 2, 8, 12) and shard.dtype == np.float16
    assert np.isnan(shard[1, 1:]).all() and np.isfinite(shard[1, 0]).all()  # val clip: one clean view
    with pytest.raises(IndexError):
        cache.get("clip1", 1)
    with pytest.raises(KeyError):
        cache.get("nope")
    train = cache.views("clip0").astype(np.float32)
    assert not np.allclose(train[0], train[1])  # augmented views differ
    meta = json.loads((cache.path / "meta.json").read_text())
    assert meta["encoder"]["weights"]["sha256"] == "tiny-a" and meta["augmentation_seed"] == 0
    assert meta["views"] == 2 and meta["encoder"]["preprocessing"]["input_size"] == 224
    assert FeatureCache.open_current(dataset / "features").path == cache.path
    record = json.loads((cache.path / "0000.json").read_text())
    assert record["frame_indices"][0] == list(range(0, 32, 4))


def test_clean_view_is_deterministic_and_build_resumes(dataset: Path, tmp_path: Path) -> None:
    first = build_feature_cache(dataset, dataset / "frames", tmp_path / "a", tiny_encoder(), OPTS)
    second = build_feature_cache(dataset, dataset / "frames", tmp_path / "b", tiny_encoder(), OPTS)
    assert np.array_equal(first.get("clip1"), second.get("clip1"))
    assert np.array_equal(first.views("clip0"), second.views("clip0"))  # seeded augmentation
    stamp = (first.path / "0000.npy").stat().st_mtime_ns
    encoder = tiny_encoder()
    calls = []
    encoder.register_forward_hook(lambda *a: calls.append(1))
    build_feature_cache(dataset, dataset / "frames", tmp_path / "a", encoder, OPTS)
    assert calls == [] and (first.path / "0000.npy").stat().st_mtime_ns == stamp


def test_augmenting_on_the_device_gives_the_same_views(dataset: Path, tmp_path: Path) -> None:
    """The GPU path (workers only decode, views are made where the encoder runs) matches the worker path."""
    options = BuildOptions(views=2, batch_size=3, workers=1, augment_on="device", progress=False, limit=2)
    on_device = build_feature_cache(dataset, dataset / "frames", tmp_path / "d", tiny_encoder(), options)
    in_workers = build_feature_cache(
        dataset,
        dataset / "frames",
        tmp_path / "w",
        tiny_encoder(),
        BuildOptions(**{**options.__dict__, "augment_on": "workers"}),
    )
    assert on_device.clip_ids == in_workers.clip_ids == ["clip0", "clip1"]
    for clip in on_device.clip_ids:
        assert np.array_equal(on_device.views(clip), in_workers.views(clip))


def test_encoder_change_makes_a_new_cache_and_mismatch_is_an_error(dataset: Path) -> None:
    out = dataset / "features"
    a = build_feature_cache(dataset, dataset / "frames", out, tiny_encoder("tiny-a"), OPTS)
    b = build_feature_cache(dataset, dataset / "frames", out, tiny_encoder("tiny-b"), OPTS)
    c = build_feature_cache(dataset, dataset / "frames", out, tiny_encoder("tiny-a"), BuildOptions(views=1, workers=0))
    assert len({a.path, b.path, c.path}) == 3
    with pytest.raises(LavimoInputError, match=r"meta.json.*another encoder"):
        FeatureCache(a.path, expect_config_hash=b.meta["config_hash"])
    moved = out / "tiny-0000000000"
    shutil.copytree(a.path, moved)
    with pytest.raises(LavimoInputError, match="meta is for encoder_id"):
        FeatureCache(moved)
    meta = json.loads((a.path / "meta.json").read_text())
    (a.path / "meta.json").write_text(json.dumps({**meta, "config_hash": "0" * 64}))
    with pytest.raises(LavimoInputError, match="another config hash"):
        build_feature_cache(dataset, dataset / "frames", out, tiny_encoder("tiny-a"), OPTS)


def test_bad_frames_are_rejected_naming_the_file(dataset: Path) -> None:
    frames = dataset / "frames"
    (frames / "clip1" / "03.png").unlink()
    (frames / "clip2" / "05.png").write_bytes(b"not a png")
    Image.new("RGB", (300, 300)).save(frames / "clip3" / "00.png")
    with pytest.raises(LavimoInputError, match=r"clip1: expected 8 frame PNGs, found 7"):
        build_feature_cache(dataset, frames, dataset / "strict", tiny_encoder(), BuildOptions(workers=0, strict=True))
    workers = BuildOptions(**{**OPTS.__dict__, "workers": 1})  # errors cross the process boundary
    cache = build_feature_cache(dataset, frames, dataset / "features", tiny_encoder(), workers)
    assert cache.clip_ids == ["clip0"]
    reasons = {r.item: (r.source, r.reason) for r in read_rejections(dataset / "rejected.csv")}
    assert reasons["clip1"][0].endswith("frames/clip1") and "found 7" in reasons["clip1"][1]
    assert reasons["clip2"][0].endswith("clip2/05.png") and "not a readable PNG" in reasons["clip2"][1]
    assert reasons["clip3"][0].endswith("clip3/00.png") and "300x300, expected 256x256" in reasons["clip3"][1]


def test_frame_loading_errors(tmp_path: Path) -> None:
    with pytest.raises(LavimoInputError, match="frame file does not exist"):
        decode_frame(tmp_path / "missing.png")
    with pytest.raises(LavimoInputError, match="frame folder does not exist"):
        load_clip_frames(tmp_path / "nope")
    with pytest.raises(LavimoInputError, match="frames folder does not exist"):
        build_feature_cache(tmp_path, tmp_path / "frames", tmp_path / "out", tiny_encoder(), OPTS)


def test_cli_build_with_the_offline_encoder(dataset: Path) -> None:
    from lavimo.commands.features import register

    parser = argparse.ArgumentParser()
    register(parser)
    args = parser.parse_args(
        ["build", "--dataset-dir", str(dataset), "--frames-dir", str(dataset / "frames"), "--out",
         str(dataset / "features"), "--views", "2", "--encoder", "efficientnet-lite0", "--workers", "1",
         "--batch-size", "2", "--limit", "2"]
    )  # fmt: skip
    assert args.func(args) == 0
    cache = FeatureCache.open_current(dataset / "features")
    assert len(cache) == 2 and cache.dim == 1280 and cache.get("clip0", 1).shape == (8, 1280)
    assert cache.meta["encoder"]["weights"]["source"] == "package"


def test_offline_efficientnet_is_really_pretrained() -> None:
    """The packaged ImageNet weights classify a real photo sensibly and separate a figure from a blank frame."""
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # set by lavimo.video.encoders: no network look-up
    from lavimo.video.encoders import efficientnet_lite0

    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    temple = sklearn_datasets.load_sample_image("china.jpg")  # a Chinese temple, shipped with scikit-learn
    x = torch.from_numpy(temple.copy()).permute(2, 0, 1)[None].float() / 255
    x = (nn.functional.interpolate(x, size=(224, 224), mode="bilinear", antialias=True) - 0.5) / 0.5
    with torch.inference_mode():
        top5 = efficientnet_lite0(num_classes=1000)(x).topk(5).indices[0].tolist()
    assert {442, 483, 663, 698, 832} & set(top5)  # bell cote, castle, monastery, palace, stupa

    encoder = load_frame_encoder("efficientnet-lite0")
    images = [figure_image(224, 0.0), figure_image(224, 1.5), Image.new("RGB", (224, 224), (200, 200, 210))]
    batch = torch.stack([torch.from_numpy(np.asarray(i).copy()).permute(2, 0, 1) for i in images])
    f = nn.functional.normalize(encoder(batch), dim=1)
    assert f[0] @ f[1] > f[0] @ f[2] + 0.05


def test_clip_random_init_and_checkpoint_loading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clip = load_frame_encoder(random_init=True)
    assert clip.name == "clip-vit-b32-random" and clip.dim == 512 and clip.weights.source == "random-init"
    frames = torch.randint(0, 256, (2, 3, 224, 224), dtype=torch.uint8)
    assert clip(frames).shape == (2, 512)
    # an OpenAI-style full-model state dict in float16, wrapped and with a DataParallel prefix
    state = {f"module.visual.{k}": v.half() for k, v in clip.backbone.state_dict().items()}
    state["module.token_embedding.weight"] = torch.zeros(3, 2)
    path = tmp_path / "kinetics_vit_b32.pt"
    torch.save({"state_dict": state, "epoch": 3}, path)
    loaded = load_frame_encoder(checkpoint=path)
    assert loaded.name == "clip-vit-b32" and loaded.weights.source == "checkpoint" and len(loaded.weights.sha256) == 64
    assert torch.allclose(loaded(frames), clip(frames), atol=0.05, rtol=0.02)
    # the same file where open_clip caches OpenAI's download is picked up without --checkpoint
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home" / ".cache" / "clip").mkdir(parents=True)
    (tmp_path / "home" / ".cache" / "clip" / "ViT-B-32.pt").symlink_to(path)
    cached = load_frame_encoder()
    assert cached.name == "clip-vit-b32" and cached.weights.source == "hub-cache" and not cached.weights.fallback
    torch.save({"conv1.weight": torch.zeros(3)}, tmp_path / "wrong.pt")
    with pytest.raises(LavimoInputError, match=r"wrong.pt: not a CLIP ViT-B/32 visual tower"):
        load_frame_encoder(checkpoint=tmp_path / "wrong.pt")
    (tmp_path / "garbage.pt").write_bytes(b"garbage")
    with pytest.raises(LavimoInputError, match=r"garbage.pt: not a readable checkpoint"):
        load_frame_encoder(checkpoint=tmp_path / "garbage.pt")
    with pytest.raises(LavimoInputError, match="does not exist"):
        load_frame_encoder(checkpoint=tmp_path / "missing.pt")


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torchscript_checkpoints_are_read(tmp_path: Path) -> None:
    """OpenAI's .pt files are TorchScript archives: their tensors are read through torch.jit."""

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.visual = nn.Module()
            self.visual.conv1 = nn.Conv2d(3, 4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.visual.conv1(x)

    path = tmp_path / "ViT-B-32.pt"
    torch.jit.save(torch.jit.script(Model()), str(path))
    assert set(read_state_dict(path)) == {"visual.conv1.weight", "visual.conv1.bias"}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real renders (Blender workbench, 256 px, in a subprocess): the walking fixture and a shifted crop of it on
    avatar 3, plus a manifest over both clips."""
    if importlib.util.find_spec("bpy") is None:
        pytest.skip("bpy is not installed")
    from lavimo.avatars.build import build_avatars

    root = tmp_path_factory.mktemp("rendered")
    build_avatars("anny", root / "avatars")
    walk = np.load(WALK).astype(np.float32)
    np.save(root / "walk.npy", walk)
    np.save(root / "walk_late.npy", walk[40:])
    command = [sys.executable, "-m", "lavimo.cli", "render", "clips", "--joints", str(root / "walk.npy"),
               str(root / "walk_late.npy"), "--avatar", "3", "--avatars", str(root / "avatars"), "--frames-dir",
               str(root / "frames"), "--resolution", str(SIZE)]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [
        {"clip_id": c, "source": "test", "split": s, "fps": 20, "n_frames": 100, "avatar": 3, "mirrored_from": None,
         "texts": [{"text": "a person walks", "start": 0.0, "end": 0.0}], "shard": "0000"}
        for c, s in (("walk", "train"), ("walk_late", "test"))
    ]  # fmt: skip
    write_manifest(root, pd.DataFrame(rows))
    return root


def test_real_renders_same_avatar_closer_than_blank(rendered: Path) -> None:
    """Offline EfficientNet-Lite0 features of two renders of one avatar are closer than either to a blank frame."""
    encoder = load_frame_encoder("efficientnet-lite0")
    a, _ = load_clip_frames(rendered / "frames" / "walk")  # resolution checked against the renderer's meta.json
    b, _ = load_clip_frames(rendered / "frames" / "walk_late")
    blank = torch.full((1, 3, SIZE, SIZE), 128, dtype=torch.uint8)
    batch = nn.functional.interpolate(torch.cat([a[:1], b[5:6], blank]).float(), size=224, mode="bilinear")
    f = nn.functional.normalize(encoder(batch.round().to(torch.uint8)), dim=1)
    assert f[0] @ f[1] > f[0] @ f[2] + 0.05 and f[0] @ f[1] > f[1] @ f[2] + 0.05


def test_cache_from_real_renders(rendered: Path) -> None:
    cache = build_feature_cache(rendered, rendered / "frames", rendered / "features", tiny_encoder(), OPTS)
    assert cache.n_views("walk") == 2 and cache.n_views("walk_late") == 1
    record = json.loads((cache.path / "0000.json").read_text())
    meta = json.loads((rendered / "frames" / "walk" / "meta.json").read_text())
    assert record["frame_indices"][0] == meta["indices"]
