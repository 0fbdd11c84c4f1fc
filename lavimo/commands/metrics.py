"""`lavimo metrics`: retrieval metrics (R@k, MedR) of one square similarity matrix, as TMR defines them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lavimo.text.similarity import DEFAULT_PROTOCOL_B_SCALE, SCALES


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sims", type=Path, required=True, help="square similarity matrix .npy (row = query)")
    parser.add_argument(
        "--protocol", choices=("normal", "threshold", "guo"), default="normal", help="evaluation protocol"
    )
    parser.add_argument(
        "--text-emb", type=Path, default=None, help="caption sentence embeddings .npy, one row per matrix row"
    )
    parser.add_argument("--threshold", type=float, default=0.8, help="caption similarity threshold (default 0.8)")
    parser.add_argument(
        "--threshold-scale",
        choices=SCALES,
        default=DEFAULT_PROTOCOL_B_SCALE,
        help="the scale of --threshold: cos, or (1+cos)/2 (default, TMR's)",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="guo protocol batch size (default 32)")
    parser.add_argument("--seed", type=int, default=0, help="guo protocol shuffle seed (default 0)")
    parser.add_argument("--names", default="t2m,m2t", help="names of the forward,reverse directions")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lavimo.evaluate import evaluate_pair, round_metrics
    from lavimo.io import LavimoInputError, load_npy
    from lavimo.text.similarity import check_threshold

    names = [name.strip() for name in args.names.split(",")]
    if len(names) != 2 or not all(names):
        raise LavimoInputError("--names", f"expected two comma-separated names, got {args.names!r}")
    threshold = check_threshold(args.threshold, args.threshold_scale)
    sims = load_npy(args.sims, "similarity matrix", ndim=2, finite=True)
    if sims.shape[0] != sims.shape[1]:
        raise LavimoInputError(args.sims, f"similarity matrix must be square, got shape {sims.shape}")
    if sims.shape[0] == 0:
        raise LavimoInputError(args.sims, "similarity matrix is empty (0x0): nothing to rank")
    text_emb = None
    if args.text_emb is not None:
        text_emb = load_npy(args.text_emb, "sentence embeddings", ndim=2, finite=True)
        if len(text_emb) != len(sims):
            raise LavimoInputError(
                args.text_emb, f"expected {len(sims)} rows of sentence embeddings, got shape {text_emb.shape}"
            )
    if args.protocol == "threshold" and text_emb is None:
        raise LavimoInputError(args.sims, "the threshold protocol needs --text-emb (caption sentence embeddings)")
    if args.batch_size < 1:
        raise LavimoInputError("--batch-size", f"must be at least 1, got {args.batch_size}")
    if args.protocol == "guo" and len(sims) < args.batch_size:
        raise LavimoInputError(
            args.sims, f"the guo protocol needs at least --batch-size={args.batch_size} rows, got {len(sims)}"
        )
    pair = evaluate_pair(sims, args.protocol, text_emb, threshold, args.batch_size, args.seed, args.threshold_scale)
    print(json.dumps(round_metrics({names[0]: pair["forward"], names[1]: pair["reverse"]}), indent=2))
    return 0
