"""Helpers shared by several test modules: a tiny frame encoder, a small real training dataset, and what the fault
drills need (a `lavimo` process with a prelude, a small disk, digests of output folders)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from torch import nn

from lavimo.datasets.build import PrepareOptions
from lavimo.datasets.demo import prepare_demo
from lavimo.datasets.manifest import iter_motions, load_manifest, write_manifest
from lavimo.datasets.splits import read_split, write_splits
from lavimo.frame_sampling import uniform_frame_indices
from lavimo.motion.skeleton import T2M_KINEMATIC_CHAINS
from lavimo.text.sentences import SentenceEncoder, build_sentence_cache, resolve_sentence_model
from lavimo.video.build import BuildOptions, build_feature_cache
from lavimo.video.encoders import FrameEncoder, Preprocessing, WeightsInfo

REPO = Path(__file__).resolve().parents[1]
TINY_TRAIN = {"epochs": "2", "batch_size": "8", "num_workers": "0"}  # `lavimo train --preset tiny` overrides


class TinyBackbone(nn.Module):
    """Pools 4x4 patches into a 12-d vector: cheap and deterministic, enough for cache plumbing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)[:, :12] * 3.0


def tiny_encoder(sha: str = "tiny-a", input_size: int = 224) -> FrameEncoder:
    """A random-init, 12-d frame encoder (no pretrained weights)."""
    prep = Preprocessing(input_size, "bicubic", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    return FrameEncoder("tiny", TinyBackbone(), 12, prep, WeightsInfo("random-init", None, sha, False, "test"))


def stick_figure(joints: np.ndarray, size: int = 256) -> Image.Image:
    """One pose (22, 3) drawn from the front as a stick figure (x right, y up), centred on the root."""
    image = Image.new("RGB", (size, size), (230, 230, 230))
    draw = ImageDraw.Draw(image)
    scale = size / 2.4
    xy = [(size / 2 + (x - joints[0, 0]) * scale, size * 0.9 - y * scale) for x, y, _ in joints]
    for chain, colour in zip(T2M_KINEMATIC_CHAINS, ("red", "blue", "black", "green", "orange"), strict=True):
        draw.line([xy[j] for j in chain], fill=colour, width=6)
    return image


def hold_out_splits(dataset: Path, every: int = 4) -> None:
    """Every ``every``-th source clip (and its mirror) held out as val = test, in the split lists and in the
    manifest's split column (which the feature cache follows); no dissimilar subset. A limited demo's own split
    holds out one or two sources for each of val and test: too few to validate and evaluate on."""
    ids = read_split(dataset / "splits" / "all.txt")
    sources = sorted({i.removeprefix("M") for i in ids})
    held = {s for k, s in enumerate(sources) if k % every == every - 1}
    test = [i for i in ids if i.removeprefix("M") in held]
    train = [i for i in ids if i not in test]
    write_splits(dataset / "splits", {"train": train, "val": test, "test": test, "nsim_test": []})
    manifest = load_manifest(dataset)
    manifest["split"] = np.where(manifest["clip_id"].isin(test), "test", "train")
    write_manifest(dataset, manifest)


def make_training_dataset(root: Path, limit: int = 12) -> Path:
    """A real prepared demo subset (``limit`` Bandai-Namco sources, mirrors included) with real MiniLM caption
    embeddings and a feature cache of 8 stick-figure frames per clip drawn from its own joints."""
    dataset = root / "demo"
    prepare_demo(dataset, REPO / "resources" / "demo", PrepareOptions(), shard_size=16, limit=limit, workers=1)
    from lavimo.text.sentences import manifest_captions

    hold_out_splits(dataset)
    encoder = SentenceEncoder(resolve_sentence_model(None))
    build_sentence_cache(manifest_captions(load_manifest(dataset)["texts"]), dataset / "sentences", encoder=encoder)
    for clip_id, joints, _ in iter_motions(dataset):
        clip_dir = dataset / "frames" / clip_id
        clip_dir.mkdir(parents=True)
        indices = uniform_frame_indices(len(joints), 8)
        for k, index in enumerate(indices):
            stick_figure(joints[index]).save(clip_dir / f"{k:02d}.png")
        meta = {"indices": [int(i) for i in indices], "resolution": [256, 256]}
        (clip_dir / "meta.json").write_text(json.dumps(meta))
    options = BuildOptions(views=2, batch_size=8, workers=0, progress=False)
    build_feature_cache(dataset, dataset / "frames", dataset / "features", tiny_encoder(input_size=32), options)
    return dataset


def lavimo_process(*args: str, prelude: str = "", log: Path | None = None) -> subprocess.Popen:
    """Start `lavimo ARGS` (this checkout's package) in a fresh process; ``prelude`` is Python run first (a drill
    patches a library function there to kill the process at a chosen point). Output goes to ``log``, else a pipe."""
    code = f"{prelude}\nimport sys\nfrom lavimo.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    out = open(log, "w") if log else subprocess.PIPE  # noqa: SIM115 (the child holds it; closed with the test)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
    )


def run_lavimo(*args: str, prelude: str = "", timeout: float = 900) -> tuple[int, str]:
    """Run `lavimo ARGS` as :func:`lavimo_process` does and wait: (exit code, stdout and stderr)."""
    process = lavimo_process(*args, prelude=prelude)
    output = process.communicate(timeout=timeout)[0]
    return process.returncode, output


def wait_for_text(path: Path, text: str, process: subprocess.Popen, timeout: float = 300) -> None:
    """Wait until the file at ``path`` contains ``text``; fail when ``process`` ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while not (path.is_file() and text in path.read_text(errors="replace")):
        if process.poll() is not None:
            output = process.communicate()[0] if process.stdout else path.read_text(errors="replace")
            raise AssertionError(f"ended (exit {process.returncode}) before {text!r}: {(output or '')[-3000:]}")
        assert time.monotonic() < deadline, f"no {text!r} in {path} after {timeout} s"
        time.sleep(0.1)


@contextlib.contextmanager
def small_disk(folder: Path, kib: int) -> Iterator[Callable[[int], None]]:
    """A tmpfs of ``kib`` KiB mounted on ``folder``: a disk that fills up. Yields a function that resizes it (files
    kept). Mounting needs root (or password-less sudo); without it the test is skipped, saying why."""
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    folder.mkdir(parents=True, exist_ok=True)
    mount = [*sudo, "mount", "-t", "tmpfs", "-o", f"size={kib}k,mode=0777", "tmpfs", str(folder)]
    done = subprocess.run(mount, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs on {folder} ({done.stderr.strip()}): the disk-full drills need root or sudo")

    def resize(new_kib: int) -> None:
        subprocess.run([*sudo, "mount", "-o", f"remount,size={new_kib}k", str(folder)], check=True)

    try:
        yield resize
    finally:
        subprocess.run([*sudo, "umount", "--lazy", str(folder)], check=False)


def tree_digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (relative path -> digest), hidden files (locks, temporaries) left out."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    }


class PixelBackbone(nn.Module):
    """The frame as an 8x8 colour thumbnail, background removed and scaled: it shows the pose and which limb is
    where (the stick figures colour each limb), so a clip and its mirror differ; deterministic and cheap."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        thumbnail = nn.functional.adaptive_avg_pool2d(x, 8).flatten(1)
        return (thumbnail - 0.8) * 10.0  # the stick figures' grey background (230) normalises to about 0.8


def pixel_encoder() -> FrameEncoder:
    """A 192-d frame encoder on 32 px frames that tells poses apart (unlike :func:`tiny_encoder`)."""
    prep = Preprocessing(32, "bicubic", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    return FrameEncoder(
        "pixels", PixelBackbone(), 192, prep, WeightsInfo("random-init", None, "pixels-8x8", False, "test")
    )


def make_search_run(training_dataset: Path, root: Path, epochs: int = 40) -> Path:
    """A tiny 3-modal run that tells its training clips apart by caption, video and motion: a copy of
    ``training_dataset`` without caption embeddings (identity targets: mirrors are negatives), frames encoded by
    :func:`pixel_encoder` without augmentation (every view the clean one), one full batch per step."""
    import shutil

    from lavimo.retrieval_data import split_ids
    from lavimo.train import make_train_config, train
    from lavimo.video.augment import AugmentConfig

    dataset = root / "demo"
    shutil.copytree(training_dataset, dataset, ignore=shutil.ignore_patterns("runs", "sentences", "features"))
    plain = AugmentConfig(resize_max=256, jitter_p=0, grayscale_p=0, blur_p=0, hflip_p=0, randaugment_ops=0)
    options = BuildOptions(views=1, batch_size=8, workers=0, progress=False, augment=plain)
    build_feature_cache(dataset, dataset / "frames", dataset / "features", pixel_encoder(), options)
    batch = len(split_ids(dataset, "train"))
    overrides = {**TINY_TRAIN, "epochs": str(epochs), "batch_size": str(batch), "lr": "3e-3", "max_frames": "196"}
    overrides |= {"eval_every": "1000", "lr_decay_start": "1000"}
    out = dataset / "runs" / "3modal"
    train(dataset, out, make_train_config("tiny", overrides), progress=False)
    return out


def write_mp4(frames_dir: Path, out: Path, count: int | None = None) -> Path:
    """An H.264 mp4 of a clip's rendered PNG frames (the first ``count``)."""
    from lavimo.render.video import VideoWriter

    with VideoWriter(out, fps=8) as video:
        for png in sorted(frames_dir.glob("*.png"))[:count]:
            video.append(np.asarray(Image.open(png).convert("RGB")))
    return out
