"""`lavimo features ...`: per-frame video feature caches and caption sentence embeddings."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from lavimo.commands.argtypes import nonnegative_int, positive_int, probability
from lavimo.io import LavimoInputError
from lavimo.layout import CURRENT

if TYPE_CHECKING:
    from lavimo.video.cache import FeatureCache


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="features_command", metavar="ACTION", required=True)

    build = sub.add_parser(
        "build", help="encode the rendered frames of a dataset into {out}/{encoder_id}/ (resumable per shard)"
    )
    build.add_argument("--dataset-dir", type=Path, required=True, help="results/{ds} (holds manifest.parquet)")
    build.add_argument("--frames-dir", type=Path, required=True, help="rendered frames: {frames}/{clip_id}/NN.png")
    build.add_argument("--out", type=Path, required=True, help="features folder, e.g. results/{ds}/features")
    build.add_argument(
        "--views", type=positive_int, default=4, help="augmented views per training clip (val/test: 1 clean)"
    )
    build.add_argument("--frames", type=positive_int, default=8, help="frames per clip")
    build.add_argument("--encoder", default="clip-vit-b32", choices=["clip-vit-b32", "efficientnet-lite0"])
    build.add_argument(
        "--checkpoint", type=Path, default=None, help="local CLIP ViT-B/32 weights (.pt/.bin/.safetensors)"
    )
    build.add_argument("--no-fallback", action="store_true", help="fail instead of falling back to EfficientNet-Lite0")
    build.add_argument("--seed", type=int, default=0, help="augmentation seed")
    build.add_argument(
        "--hflip-p",
        type=probability,
        default=0.5,
        help="probability of a horizontal flip per training view (paper: on)",
    )
    build.add_argument(
        "--pointer", default=CURRENT, help="write {out}/{pointer}.json (another name keeps current.json as it is)"
    )
    build.add_argument(
        "--frame-size", type=positive_int, default=None, help="expected frame size (default: each meta.json)"
    )
    build.add_argument("--batch-size", type=positive_int, default=8, help="clips per encoder batch")
    build.add_argument(
        "--workers", type=nonnegative_int, default=2, help="DataLoader workers that decode and augment (0: none)"
    )
    build.add_argument(
        "--augment-on",
        default="auto",
        choices=["auto", "workers", "device"],
        help="where views are augmented (auto: on the GPU when encoding on one, else in the workers)",
    )
    build.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    build.add_argument(
        "--runtime",
        default="auto",
        choices=["auto", "torch", "openvino"],
        help="how the encoder runs on a CPU (auto: OpenVINO when installed, ~2x torch's speed, the same features "
        "to within float16 rounding)",
    )
    build.add_argument("--limit", type=positive_int, default=None, help="only the first N clips (smoke runs)")
    build.add_argument("--strict", action="store_true", help="stop at the first bad clip instead of rejecting it")
    build.add_argument(
        "--shard",
        action="append",
        default=None,
        help="encode only this manifest shard (repeatable) and record it in {out}/shards/{pointer}-{shard}.json; "
        "`features merge` then writes the index and the pointer",
    )
    build.set_defaults(func=run_build)

    merge = sub.add_parser(
        "merge", help="index the shards `build --shard` encoded; write the rejections and {out}/{pointer}.json"
    )
    merge.add_argument("--dataset-dir", type=Path, required=True, help="results/{ds} (holds manifest.parquet)")
    merge.add_argument("--frames-dir", type=Path, required=True, help="rendered frames (their rejection lists)")
    merge.add_argument("--out", type=Path, required=True, help="features folder, e.g. results/{ds}/features")
    merge.add_argument("--pointer", default=CURRENT, help="the pointer the shard jobs were built for")
    merge.set_defaults(func=run_merge)

    sentences = sub.add_parser("sentences", help="embed a dataset's unique captions into {out}/{model}.npy")
    sentences.add_argument("--dataset-dir", type=Path, required=True, help="results/{ds} (holds manifest.parquet)")
    sentences.add_argument("--out", type=Path, required=True, help="e.g. results/{ds}/sentences")
    sentences.add_argument("--model", type=Path, default=None, help="local sentence-transformers model folder")
    sentences.add_argument("--batch-size", type=positive_int, default=64)
    sentences.add_argument("--device", default="cpu")
    sentences.set_defaults(func=run_sentences)

    info = sub.add_parser("info", help="print a feature cache's meta summary")
    info.add_argument("path", type=Path, help="a cache folder, or a features folder with current.json")
    info.set_defaults(func=run_info)


def _device(name: str | None) -> str:
    import torch

    return name or ("cuda" if torch.cuda.is_available() else "cpu")


def check_build_inputs(args: argparse.Namespace) -> None:
    """Refuse what would fail only after the encoder has loaded: a dataset folder without a readable, non-empty
    manifest, a missing or empty frames folder, an --out that is a file, --limit with --shard."""
    from lavimo.datasets.manifest import load_manifest

    if args.shard and args.limit is not None:
        raise LavimoInputError("--limit", "applies to a whole build, not with --shard")
    if len(load_manifest(args.dataset_dir)) == 0:
        raise LavimoInputError(args.dataset_dir / "manifest.parquet", "the manifest lists no clip: nothing to encode")
    frames = args.frames_dir
    if not frames.is_dir():
        problem = "is a file, not a folder" if frames.exists() else "frames folder does not exist"
        raise LavimoInputError(frames, f"{problem} (render the dataset first)")
    if not any(not p.name.startswith(".") for p in frames.iterdir()):  # a render shard leaves its lists at least
        raise LavimoInputError(frames, "frames folder holds no rendered clip (render the dataset first)")
    if args.out.exists() and not args.out.is_dir():
        raise LavimoInputError(args.out, "is a file, not a folder")


def run_build(args: argparse.Namespace) -> int:
    from lavimo.io import folder_lock
    from lavimo.video.augment import AugmentConfig
    from lavimo.video.build import BuildOptions, build_feature_cache, encode_shards
    from lavimo.video.encoders import load_frame_encoder

    check_build_inputs(args)  # before the encoder loads and before --out is created
    options = BuildOptions(
        views=args.views,
        num_frames=args.frames,
        seed=args.seed,
        frame_size=args.frame_size,
        batch_size=args.batch_size,
        workers=args.workers,
        augment_on=args.augment_on,
        strict=args.strict,
        limit=args.limit,
        augment=AugmentConfig(hflip_p=args.hflip_p),
        pointer=args.pointer,
    )
    with contextlib.ExitStack() as locks:
        if args.shard:  # shard jobs run side by side: each holds only its shards
            for shard in sorted(args.shard):
                locks.enter_context(
                    folder_lock(args.out, f"lavimo features build --shard {shard}", f".shard-{shard}.lock")
                )
        else:  # one whole build per features folder at a time
            locks.enter_context(folder_lock(args.out, "lavimo features build"))
        encoder = load_frame_encoder(
            args.encoder,
            args.checkpoint,
            allow_fallback=not args.no_fallback,
            device=_device(args.device),
            runtime=args.runtime if _device(args.device) == "cpu" else "torch",
        )
        if args.shard:
            meta = encode_shards(args.dataset_dir, args.frames_dir, args.out, encoder, options, shards=args.shard)
            print(f"{args.out / meta['encoder_id']}: shard(s) {', '.join(args.shard)} encoded")
            return 0
        _print_cache(build_feature_cache(args.dataset_dir, args.frames_dir, args.out, encoder, options))
    return 0


def run_merge(args: argparse.Namespace) -> int:
    from lavimo.datasets.manifest import shards
    from lavimo.io import folder_lock
    from lavimo.video.build import merge_feature_cache, shards_encoder_id

    encoder_id = shards_encoder_id(args.out, shards(args.dataset_dir), args.pointer)
    with folder_lock(args.out, "lavimo features merge"):
        _print_cache(merge_feature_cache(args.dataset_dir, args.frames_dir, args.out, encoder_id, pointer=args.pointer))
    return 0


def _print_cache(cache: FeatureCache) -> None:
    weights = cache.meta["encoder"]["weights"]
    print(f"{cache.path}: {len(cache)} clips, dim {cache.dim}, weights {weights['source']}")


def run_sentences(args: argparse.Namespace) -> int:
    from lavimo.datasets.manifest import load_manifest
    from lavimo.text.sentences import (
        SentenceEncoder,
        build_sentence_cache,
        manifest_captions,
        resolve_sentence_model,
    )

    manifest = load_manifest(args.dataset_dir)
    if "texts" not in manifest.columns:
        raise LavimoInputError(args.dataset_dir / "manifest.parquet", "manifest lacks column 'texts'")
    if len(manifest) == 0:
        raise LavimoInputError(args.dataset_dir / "manifest.parquet", "the manifest lists no clip: no caption to embed")
    encoder = SentenceEncoder(resolve_sentence_model(args.model), device=args.device)
    cache = build_sentence_cache(
        manifest_captions(manifest["texts"]), args.out, encoder=encoder, batch_size=args.batch_size
    )
    print(f"{args.out}/{cache.meta['name']}.npy: {len(cache.rows)} captions, dim {cache.meta['dim']}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    import json

    from lavimo.video.cache import FeatureCache

    cache = FeatureCache(args.path)
    meta = cache.meta
    summary = {
        "path": str(cache.path),
        "encoder_id": cache.encoder_id,
        "clips": len(cache),
        "dim": cache.dim,
        "frames_per_clip": cache.num_frames,
        "views": meta["views"],
        "weights": meta["encoder"]["weights"],
    }
    print(json.dumps(summary, indent=2))
    return 0
