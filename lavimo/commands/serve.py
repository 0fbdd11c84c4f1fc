"""`lavimo serve`: a local web page to search an index by text, by a dropped video, or by clicking a result."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", type=Path, required=True, help="index folder (lavimo index)")
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000)")
    parser.add_argument("--run", type=Path, help="the index's run, if it moved (its model must be the same)")
    parser.add_argument("--frame-checkpoint", type=Path, help="frame-encoder weights for video queries (e.g. CLIP)")
    parser.add_argument("--device", default="auto")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lavimo.search.query import Searcher
    from lavimo.search.serve import serve

    searcher = Searcher(args.index, run=args.run, device=args.device, frame_checkpoint=args.frame_checkpoint)
    serve(searcher, args.port)
    return 0
