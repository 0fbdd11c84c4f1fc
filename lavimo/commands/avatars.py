"""`lavimo avatars ...`: build the 13 avatar files and inspect them."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="avatars_command", metavar="ACTION", required=True)

    build = sub.add_parser("build", help="write {out}/00.npz .. 12.npz: mesh, t2m skin weights, rest joints, materials")
    build.add_argument("--backend", choices=("anny", "smpl"), default="anny", help="body model (default: anny)")
    build.add_argument("--out", type=Path, required=True, help="output folder, e.g. results/avatars/anny")
    build.add_argument("--smpl-model-dir", type=Path, default=None, help="SMPL/SMPL-X model files (smpl backend)")
    build.set_defaults(func=run_build)

    info = sub.add_parser("info", help="print name, stature, vertex and face counts of built avatars")
    info.add_argument("folder", type=Path, help="folder with 00.npz .. 12.npz")
    info.set_defaults(func=run_info)


def run_build(args: argparse.Namespace) -> int:
    from lavimo.avatars.build import build_avatars, load_avatar

    for path in build_avatars(args.backend, args.out, args.smpl_model_dir):
        avatar = load_avatar(path)
        print(f"{path}: {avatar.name}, {avatar.height:.2f} m, V={len(avatar.vertices)} F={len(avatar.faces)}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from lavimo.avatars.build import load_avatar
    from lavimo.io import LavimoInputError

    paths = sorted(args.folder.glob("[0-9][0-9].npz"))
    if not paths:
        raise LavimoInputError(args.folder, "no avatar files (00.npz ..)")
    for path in paths:
        avatar = load_avatar(path)
        backend = avatar.preset.get("backend", "?")
        print(
            f"{path.name} {backend:5s} {avatar.name:36s} {avatar.height:.2f} m "
            f"V={len(avatar.vertices)} F={len(avatar.faces)}"
        )
    return 0
