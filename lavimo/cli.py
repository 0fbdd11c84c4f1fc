"""The `lavimo` command line: one sub-command group per module in lavimo/commands/.

Every Snakemake rule calls the library through this CLI. Each group registers itself lazily so
that `lavimo render ...` never imports torch and `lavimo train ...` never imports bpy.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from lavimo import __version__
from lavimo.io import DiskFullError, LavimoInputError, is_disk_full

DEBUG_ENV = "LAVIMO_DEBUG"  # =1: let errors through with their traceback (for debugging lavimo itself)

# group name -> (module under lavimo.commands, one-line help)
COMMAND_GROUPS: dict[str, tuple[str, str]] = {
    "motion": ("motion", "convert single motions: BVH -> joints, joints <-> HumanML3D features, mirroring"),
    "prepare": ("prepare", "build a dataset's manifest and motion shards (demo, humanml3d, kitml, amass)"),
    "avatars": ("avatars", "build the 13 avatars and their contact sheet"),
    "render": ("render", "render clips headlessly with Blender (own process; imports bpy)"),
    "features": ("features", "video frame-feature caches and caption sentence embeddings"),
    "train": ("train", "train (or resume) a LAVIMO run: --preset demo|paper, --variant 3modal|2modal, --nproc N"),
    "evaluate": ("evaluate", "evaluate a trained run on a split: metrics.json, metrics.csv, retrieval.json"),
    "ablation": ("ablation", "summarise a 3-modal vs 2-modal study over seeds: mean ± std, paired difference"),
    "bench": ("bench", "benchmarks that print throughput figures"),
    "report": ("report", "build the self-contained HTML report"),
    "metrics": ("metrics", "retrieval metrics (R@k, MedR) of a similarity matrix, as TMR defines them"),
    "index": ("index", "embed a motion library (a prepared dataset or a BVH folder) for search"),
    "search": ("search", "search an index by text, video, clip id or BVH file"),
    "serve": ("serve", "a local web page (127.0.0.1) to search an index by text, video or a clicked result"),
}


def build_parser() -> argparse.ArgumentParser:
    """Parser with every sub-command group registered."""
    parser = argparse.ArgumentParser(prog="lavimo", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"lavimo {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMAND_GROUPS.items():
        group_parser = groups.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(f"lavimo.commands.{module}").register(group_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `lavimo` executable."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        result = args.func(args)
    except LavimoInputError as error:
        if os.environ.get(DEBUG_ENV) == "1":
            raise
        print(f"lavimo: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        if os.environ.get(DEBUG_ENV) == "1":
            raise
        if is_disk_full(error):
            if not isinstance(error, DiskFullError):  # a write outside lavimo.io's atomic writes (logs, TensorBoard)
                error = DiskFullError(error.filename or "a file being written")
            print(f"lavimo: error: {error}", file=sys.stderr)
            return 1
        if error.filename is None:
            raise
        # a path the user named that cannot be read or written (missing, a folder, read-only, ...): their input
        print(f"lavimo: error: {error.filename}: {error.strerror or error}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
