"""`lavimo report ...`: the self-contained HTML report of a results tree (tables, curves, retrieval figures)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lavimo.layout import DATASETS


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", type=Path, default=Path("results"), help="results folder (default: results)")
    parser.add_argument("--out", type=Path, default=None, help="HTML file to write (default: {results}/report.html)")
    parser.add_argument(
        "--datasets",
        nargs="+",
        choices=DATASETS,
        default=None,
        help="datasets to report, in this order (default: every dataset folder found under --results)",
    )
    parser.add_argument(
        "--variants", nargs="+", default=["3modal", "2modal"], help="run variants to look for (default: 3modal 2modal)"
    )
    parser.add_argument(
        "--avatar-backend", default=None, help="avatar contact sheet to show (default: every backend found)"
    )
    parser.add_argument("--examples", type=int, default=3, help="qualitative queries per dataset and direction")
    parser.add_argument("--frames", type=int, default=4, help="frames per clip in the qualitative strips")
    parser.add_argument("--title", default="LAVIMO reproduction report", help="report title")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lavimo.io import LavimoInputError
    from lavimo.layout import DATASETS

    if not args.results.is_dir():
        raise LavimoInputError(args.results, "no results folder here (mistyped? the pipeline writes results/)")
    if not any((args.results / name).is_dir() for name in DATASETS):
        raise LavimoInputError(args.results, f"holds no dataset results (looked for {', '.join(DATASETS)})")
    from lavimo.report import build_report

    out = args.out or args.results / "report.html"
    summary = build_report(
        args.results,
        out,
        datasets=args.datasets,
        variants=args.variants,
        avatar_backend=args.avatar_backend,
        examples=max(0, args.examples),
        frames_per_strip=max(1, args.frames),
        title=args.title,
    )
    print(
        f"{summary.path}: {len(summary.datasets)} dataset(s), {len(summary.runs)} run(s), {summary.images} image(s), "
        f"{summary.size_bytes / 1e6:.1f} MB; {len(summary.missing)} missing piece(s)"
    )
    for item in summary.missing:
        print(f"  missing: {item}")
    return 0
