"""`lavimo train`: train (or resume) one LAVIMO run from a prepared dataset's caches."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from lavimo.presets import PRESETS


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset-dir", type=Path, required=True, help="results/{ds}: manifest, motions, caches")
    parser.add_argument("--out", type=Path, required=True, help="run folder, e.g. results/{ds}/runs/3modal")
    parser.add_argument(
        "--preset", default="demo", help=f"training preset (lavimo/presets.py): {' | '.join(PRESETS)} (default: demo)"
    )
    parser.add_argument("--variant", choices=["3modal", "2modal"], default=None, help="overrides the preset's")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set epochs=10 --set model.latent_dim=128 (repeatable)",
    )
    parser.add_argument("--nproc", type=int, default=1, help="processes on this machine (DDP via torchrun)")
    parser.add_argument("--restart", action="store_true", help="discard the run folder's checkpoints and start over")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    parser.set_defaults(func=run)


def parse_overrides(items: list[str]) -> dict[str, str]:
    """["a=1", "b=x"] -> {"a": "1", "b": "x"}."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"lavimo train: --set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def run(args: argparse.Namespace) -> int:
    from lavimo.io import LavimoInputError
    from lavimo.train_config import check_run_folder, make_train_config

    # the settings and the run folder are checked here, before torch is imported or torchrun starts children
    overrides = parse_overrides(args.overrides)
    if args.variant:
        overrides["variant"] = args.variant
    try:
        cfg = make_train_config(args.preset, overrides)
    except ValueError as error:
        raise LavimoInputError("lavimo train", str(error)) from error
    if not args.restart and "LOCAL_RANK" not in os.environ:
        check_run_folder(args.out, args.dataset_dir, cfg)
    if args.nproc > 1 and "LOCAL_RANK" not in os.environ:
        return _launch(args)
    from lavimo.train import train

    if args.restart and int(os.environ.get("RANK", "0")) == 0:
        shutil.rmtree(args.out / "checkpoints", ignore_errors=True)
    model_path = train(args.dataset_dir, args.out, cfg, progress=not args.no_progress)
    if int(os.environ.get("RANK", "0")) == 0:
        print(model_path)
    return 0


def _launch(args: argparse.Namespace) -> int:
    """Re-run this command under torchrun in ``--nproc`` processes."""
    from lavimo.cli import run_distributed
    from lavimo.distributed import torchrun_command

    cli_args = ["train", "--dataset-dir", str(args.dataset_dir), "--out", str(args.out), "--preset", args.preset]
    if args.variant:
        cli_args += ["--variant", args.variant]
    for item in args.overrides:
        cli_args += ["--set", item]
    if args.no_progress:
        cli_args.append("--no-progress")
    if args.restart:
        shutil.rmtree(args.out / "checkpoints", ignore_errors=True)
    return run_distributed(torchrun_command(args.nproc, cli_args))
