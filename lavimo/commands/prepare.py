"""`lavimo prepare ...`: build a dataset's manifest and motion shards (demo, humanml3d, kitml), convert raw
AMASS to the HumanML3D layout (amass), and build the bundled demo archive (bundle-demo, maintainers)."""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from lavimo.commands.argtypes import nonnegative_float, positive_int
from lavimo.io import LavimoInputError, folder_lock, save_json

if TYPE_CHECKING:
    from lavimo.datasets.build import BuildResult, PrepareOptions


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="output folder, e.g. results/demo")
    parser.add_argument("--shard-size", type=positive_int, default=128, help="clips per motion shard (default 128)")
    parser.add_argument("--seed", type=int, default=0, help="seed of splits, captions and avatars (default 0)")
    parser.add_argument("--min-seconds", type=nonnegative_float, default=1.0, help="reject shorter clips (default 1.0)")
    parser.add_argument("--no-mirror", dest="mirror", action="store_false", help="no left/right mirrored copies")
    parser.add_argument("--limit", type=positive_int, default=None, help="only the first N source clips")
    parser.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1, help="worker processes")


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="prepare_command", metavar="DATASET", required=True)

    demo = sub.add_parser("demo", help="the bundled Bandai-Namco clips (BVH) with generated captions")
    _common(demo)
    demo.add_argument("--bundle", type=Path, default=Path("resources/demo"), help="demo bundle folder")
    demo.add_argument("--captions", type=positive_int, default=3, help="captions per clip (default 3)")
    demo.set_defaults(func=run_demo)

    humanml3d = sub.add_parser("humanml3d", help="a HumanML3D folder (new_joint_vecs/, new_joints/, texts/, splits)")
    _common(humanml3d)
    humanml3d.add_argument("--root", type=Path, required=True, help="HumanML3D folder (datasets.humanml3d.root)")
    humanml3d.set_defaults(func=run_humanml3d)

    kitml = sub.add_parser("kitml", help="KIT-ML: TMR's annotations.json + 263-dim motions, or Guo's 251-dim release")
    _common(kitml)
    kitml.add_argument("--root", type=Path, required=True, help="KIT-ML folder (datasets.kitml.root)")
    kitml.add_argument("--motions", type=Path, default=None, help="TMR motion folder (default: searched near root)")
    kitml.set_defaults(func=run_kitml)

    amass = sub.add_parser("amass", help="raw AMASS npz + SMPL-H models -> HumanML3D layout (new_joints, ...)")
    amass.add_argument("--amass-root", type=Path, required=True, help="folder of AMASS sub-datasets (KIT/, CMU/, ...)")
    amass.add_argument("--smplh-dir", type=Path, required=True, help="SMPL-H models: {male,female}/model.npz")
    amass.add_argument("--index-csv", type=Path, required=True, help="HumanML3D's index.csv")
    amass.add_argument("--out", type=Path, required=True, help="HumanML3D folder to write (datasets.humanml3d.root)")
    amass.add_argument("--marker", type=Path, default=None, help="JSON summary written when done")
    amass.add_argument("--no-mirror", dest="mirror", action="store_false", help="no M-prefixed mirrored clips")
    amass.add_argument("--limit", type=positive_int, default=None, help="only the first N rows of index.csv")
    amass.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1, help="worker processes")
    amass.set_defaults(func=run_amass)

    bundle = sub.add_parser("bundle-demo", help="(maintainers) build resources/demo from a Bandai-Namco copy")
    bundle.add_argument("--src", type=Path, required=True, help="folder with dataset-1/ and dataset-2/")
    bundle.add_argument("--out", type=Path, default=Path("resources/demo"), help="bundle folder to write")
    bundle.set_defaults(func=run_bundle)


def _options(args: argparse.Namespace) -> PrepareOptions:
    from lavimo.datasets.build import PrepareOptions

    return PrepareOptions(
        min_seconds=args.min_seconds, mirror=args.mirror, seed=args.seed, n_captions=getattr(args, "captions", 3)
    )


def _report(result: BuildResult, name: str) -> int:
    print(result.summary(name))
    for rejection in result.rejected[:20]:
        print(f"  rejected {rejection.item}: {rejection.source}: {rejection.reason}")
    if len(result.rejected) > 20:
        print(f"  ... {len(result.rejected) - 20} more in rejected.csv")
    return 0 if len(result.manifest) else 1


def _locked(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run while holding the lock of ``--out``: a second prepare of the same folder waits for the first."""

    @functools.wraps(run)
    def locked(args: argparse.Namespace) -> int:
        check_inputs(args)  # before the lock creates --out: a mistyped input path leaves nothing behind
        with folder_lock(args.out, f"lavimo prepare {args.prepare_command}"):
            return run(args)

    return locked


def _need_folder(path: Path, problem: str) -> None:
    if not path.is_dir():
        raise LavimoInputError(path, "is a file, not a folder" if path.exists() else problem)


def check_inputs(args: argparse.Namespace) -> None:
    """Refuse a missing input folder or file of a prepare command (a mistyped path is never an empty dataset)."""
    from lavimo.layout import dataset_not_found

    command = args.prepare_command
    if command == "demo":
        from lavimo.datasets.bundle import read_bundle_index

        read_bundle_index(args.bundle)
    elif command == "humanml3d":
        from lavimo.datasets.humanml3d import check_layout

        check_layout(args.root)
    elif command == "kitml":
        _need_folder(args.root, dataset_not_found("kitml"))
        if args.motions is not None:
            _need_folder(args.motions, "TMR motion folder not found (--motions)")
    elif command == "amass":
        _need_folder(args.amass_root, "AMASS folder not found (--amass-root, datasets.amass.root)")
        _need_folder(args.smplh_dir, "SMPL-H model folder not found (--smplh-dir): {male,female}/model.npz")
        if not args.index_csv.is_file():
            raise LavimoInputError(args.index_csv, "index.csv missing (it ships with HumanML3D)")


@_locked
def run_demo(args: argparse.Namespace) -> int:
    from lavimo.datasets.demo import prepare_demo

    result = prepare_demo(args.out, args.bundle, _options(args), args.shard_size, args.limit, args.workers)
    return _report(result, "demo")


@_locked
def run_humanml3d(args: argparse.Namespace) -> int:
    from lavimo.datasets.humanml3d import prepare_humanml3d

    result = prepare_humanml3d(args.root, args.out, _options(args), args.shard_size, args.limit, args.workers)
    return _report(result, "humanml3d")


@_locked
def run_kitml(args: argparse.Namespace) -> int:
    from lavimo.datasets.kitml import prepare_kitml

    result = prepare_kitml(
        args.root, args.out, _options(args), args.shard_size, args.limit, args.workers, motions_dir=args.motions
    )
    return _report(result, "kitml")


@_locked
def run_amass(args: argparse.Namespace) -> int:
    from lavimo.datasets.amass import amass_to_humanml3d

    rejected_csv = args.marker.parent / "rejected.csv" if args.marker is not None else None
    summary = amass_to_humanml3d(
        args.amass_root, args.smplh_dir, args.index_csv, args.out, mirror=args.mirror, limit=args.limit,
        workers=args.workers, rejected_csv=rejected_csv,
    )  # fmt: skip
    print(summary.line())
    for rejection in summary.rejected[:20]:
        print(f"  rejected {rejection.item}: {rejection.source}: {rejection.reason}")
    if args.marker is not None:
        save_json(args.marker, summary.as_dict())
    return 0 if summary.written else 1


def run_bundle(args: argparse.Namespace) -> int:
    from lavimo.datasets.bundle import build_demo_bundle

    index = build_demo_bundle(args.src, args.out)
    total = 0
    for entry in index["archives"].values():
        total += entry["bytes"]
        size = entry["bytes"] / 1e6
        print(f"{args.out / entry['file']}: {entry['bvh']} BVH + {entry['labels']} labels, {size:.2f} MB")
    print(f"{args.out}: {total / 1e6:.2f} MB of archives (sha256 in {args.out / 'bundle.json'})")
    return 0
