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
from pathlib import Path

from lavimo import __version__
from lavimo.io import DiskFullError, LavimoInputError, is_disk_full

DEBUG_ENV = "LAVIMO_DEBUG"  # =1: let errors through with their traceback (for debugging lavimo itself)
ERROR_FILE_ENV = "LAVIMO_ERROR_FILE"  # set by run_distributed: where torchrun's processes leave their error line

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
        return report_error(f"lavimo: error: {error}", 2)
    except OSError as error:
        if os.environ.get(DEBUG_ENV) == "1":
            raise
        if is_disk_full(error):
            if not isinstance(error, DiskFullError):  # a write outside lavimo.io's atomic writes (logs, TensorBoard)
                error = DiskFullError(error.filename or "a file being written")
            return report_error(f"lavimo: error: {error}", 1)
        if error.filename is None:
            raise
        # a path the user named that cannot be read or written (missing, a folder, read-only, ...): their input
        return report_error(f"lavimo: error: {error.filename}: {error.strerror or error}", 2)
    return int(result or 0)


def report_error(line: str, code: int) -> int:
    """Print the one error line and return ``code``; a process that torchrun started (``lavimo train --nproc N``)
    leaves it in its parent's error file instead, so the parent prints it once (:func:`run_distributed`)."""
    error_file = os.environ.get(ERROR_FILE_ENV)
    if error_file and "LOCAL_RANK" in os.environ:
        with open(f"{error_file}.{os.environ.get('RANK', '0')}", "w") as handle:
            handle.write(f"{code}\n{line}\n")
    else:
        print(line, file=sys.stderr)
    return code


def run_distributed(command: list[str]) -> int:
    """Run a torchrun ``command`` whose processes are `lavimo` commands; when one of them fails on an input error,
    print its one line once and exit with its code, without torchrun's own report of the failure (a traceback)."""
    import subprocess
    import tempfile
    import threading

    with tempfile.TemporaryDirectory(prefix="lavimo-ranks-") as folder:
        error_file = os.path.join(folder, "error")
        process = subprocess.Popen(
            command, env={**os.environ, ERROR_FILE_ENV: error_file}, stderr=subprocess.PIPE, text=True, bufsize=1
        )
        held: list[str] = []

        def forward() -> None:  # the processes' log lines as they come, until one has failed
            assert process.stderr is not None
            for text in process.stderr:
                if held or any(name.startswith("error.") for name in os.listdir(folder)):
                    held.append(text)
                else:
                    sys.stderr.write(text)

        thread = threading.Thread(target=forward, daemon=True)
        thread.start()
        code = process.wait()
        thread.join()
        errors = sorted(name for name in os.listdir(folder) if name.startswith("error."))
        if code != 0 and errors:
            rank_code, line = Path(folder, errors[0]).read_text().split("\n", 1)
            print(line.strip(), file=sys.stderr)
            return int(rank_code)
        sys.stderr.write("".join(held))
        return code


if __name__ == "__main__":
    sys.exit(main())
