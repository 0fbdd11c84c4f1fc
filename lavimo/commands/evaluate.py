"""`lavimo evaluate`: the four retrieval protocols on a trained run's test split."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lavimo.text.similarity import DEFAULT_PROTOCOL_B_SCALE, DEFAULT_PROTOCOL_B_THRESHOLD, SCALES


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=Path, required=True, help="run folder (holds model.pt and config.json)")
    parser.add_argument("--dataset-dir", type=Path, default=None, help="default: the dataset the run was trained on")
    parser.add_argument("--split", default="test")
    parser.add_argument(
        "--threshold", type=float, default=DEFAULT_PROTOCOL_B_THRESHOLD, help="protocol (b): s of captions > T"
    )
    parser.add_argument(
        "--threshold-scale",
        choices=SCALES,
        default=DEFAULT_PROTOCOL_B_SCALE,
        help="the scale s of --threshold: cos, or (1+cos)/2 (default, TMR's)",
    )
    parser.add_argument("--checkpoint", default="model.pt", help="file in the run folder (or a path)")
    parser.add_argument("--device", default="auto")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lavimo.evaluate_run import evaluate_run

    results = evaluate_run(
        args.run,
        dataset_dir=args.dataset_dir,
        split=args.split,
        threshold=args.threshold,
        threshold_scale=args.threshold_scale,
        checkpoint=args.checkpoint,
        device=args.device,
    )
    print(json.dumps(results["protocols"].get("normal", {}), indent=1))
    return 0
