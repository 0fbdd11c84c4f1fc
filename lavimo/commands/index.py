"""`lavimo index`: embed a motion library (a prepared dataset or a folder of BVH files) with a trained run."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    from lavimo.search.ann import AUTO, BACKENDS, DEFAULT_CUTOVER

    parser.add_argument("--run", type=Path, required=True, help="run folder (model.pt, config.json) or a model file")
    parser.add_argument("--out", type=Path, required=True, help="index folder (created; updated when it exists)")
    library = parser.add_mutually_exclusive_group()
    library.add_argument("--dataset-dir", type=Path, help="a prepared dataset (default: the run's own dataset)")
    library.add_argument("--bvh", type=Path, help="a folder of BVH files (searched recursively), indexed unrendered")
    parser.add_argument("--no-mirrors", action="store_true", help="leave a dataset's mirrored clips out")
    parser.add_argument("--backend", choices=BACKENDS, default=AUTO, help="search backend (auto: by library size)")
    parser.add_argument(
        "--cutover", type=int, default=DEFAULT_CUTOVER, help="auto: FAISS HNSW from this many clips (measured)"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lavimo.search.ann import AnnSettings
    from lavimo.search.index import build_index

    report = build_index(
        args.run,
        args.out,
        dataset_dir=args.dataset_dir,
        bvh_dir=args.bvh,
        mirrors=not args.no_mirrors,
        settings=AnnSettings(backend=args.backend, cutover=args.cutover),
        device=args.device,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )
    print(report.summary())
    for rejection in report.rejected:
        print(f"  skipped {rejection.source}: {rejection.reason}")
    return 0
