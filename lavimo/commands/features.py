"""`lavimo features ...`: per-frame video feature caches and caption sentence embeddings."""

from __future__ import annotations

import argparse
from pathlib import Path

from lavimo.layout import CURRENT


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="features_command", metavar="ACTION", required=True)

    build = sub.add_parser(
        "build", help="encode the rendered frames of a dataset into {out}/{encoder_id}/ (resumable per shard)"
    )
    build.add_argument("--dataset-dir", type=Path, required=True, help="results/{ds} (holds manifest.parquet)")
    build.add_argument("--frames-dir", type=Path, required=True, help="rendered frames: {frames}/{clip_id}/NN.png")
    build.add_argument("--out", type=Path, required=True, help="features folder, e.g. results/{ds}/features")
    build.add_argument("--views", type=int, default=4, help="augmented views per training clip (val/test: 1 clean)")
    build.add_argument("--frames", type=int, default=8, help="frames per clip")
    build.add_argument("--encoder", default="clip-vit-b32", choices=["clip-vit-b32", "efficientnet-lite0"])
    build.add_argument(
        "--checkpoint", type=Path, default=None, help="local CLIP ViT-B/32 weights (.pt/.bin/.safetensors)"
    )
    build.add_argument("--no-fallback", action="store_true", help="fail instead of falling back to EfficientNet-Lite0")
    build.add_argument("--seed", type=int, default=0, help="augmentation seed")
    build.add_argument(
        "--hflip-p", type=float, default=0.5, help="probability of a horizontal flip per training view (paper: on)"
    )
    build.add_argument(
        "--pointer", default=CURRENT, help="write {out}/{pointer}.json (another name keeps current.json as it is)"
    )
    build.add_argument("--frame-size", type=int, default=None, help="expected frame size (default: each meta.json)")
    build.add_argument("--batch-size", type=int, default=8, help="clips per encoder batch")
    build.add_argument("--workers", type=int, default=2, help="DataLoader workers that decode and augment")
    build.add_argument(
        "--augment-on",
        default="auto",
        choices=["auto", "workers", "device"],
        help="where views are augmented (auto: on the GPU when encoding on one, else in the workers)",
    )
    build.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    build.add_argument("--limit", type=int, default=None, help="only the first N clips (smoke runs)")
    build.add_argument("--strict", action="store_true", help="stop at the first bad clip instead of rejecting it")
    build.set_defaults(func=run_build)

    sentences = sub.add_parser("sentences", help="embed a dataset's unique captions into {out}/{model}.npy")
    sentences.add_argument("--dataset-dir", type=Path, required=True, help="results/{ds} (holds manifest.parquet)")
    sentences.add_argument("--out", type=Path, required=True, help="e.g. results/{ds}/sentences")
    sentences.add_argument("--model", type=Path, default=None, help="local sentence-transformers model folder")
    sentences.add_argument("--batch-size", type=int, default=64)
    sentences.add_argument("--device", default="cpu")
    sentences.set_defaults(func=run_sentences)

    info = sub.add_parser("info", help="print a feature cache's meta summary")
    info.add_argument("path", type=Path, help="a cache folder, or a features folder with current.json")
    info.set_defaults(func=run_info)


def _device(name: str | None) -> str:
    import torch

    return name or ("cuda" if torch.cuda.is_available() else "cpu")


def run_build(args: argparse.Namespace) -> int:
    from lavimo.io import folder_lock
    from lavimo.video.augment import AugmentConfig
    from lavimo.video.build import BuildOptions, build_feature_cache
    from lavimo.video.encoders import load_frame_encoder

    encoder = load_frame_encoder(
        args.encoder, args.checkpoint, allow_fallback=not args.no_fallback, device=_device(args.device)
    )
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
    with folder_lock(args.out, "lavimo features build"):  # one build per features folder at a time
        cache = build_feature_cache(args.dataset_dir, args.frames_dir, args.out, encoder, options)
    weights = cache.meta["encoder"]["weights"]
    print(f"{cache.path}: {len(cache)} clips, dim {cache.dim}, weights {weights['source']}")
    return 0


def run_sentences(args: argparse.Namespace) -> int:
    from lavimo.datasets.manifest import load_manifest
    from lavimo.io import LavimoInputError
    from lavimo.text.sentences import (
        SentenceEncoder,
        build_sentence_cache,
        manifest_captions,
        resolve_sentence_model,
    )

    manifest = load_manifest(args.dataset_dir)
    if "texts" not in manifest.columns:
        raise LavimoInputError(args.dataset_dir / "manifest.parquet", "manifest lacks column 'texts'")
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
