"""`lavimo motion ...`: single-file motion conversions."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lavimo.io import LavimoInputError, load_npy, save_npy


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="motion_command", metavar="ACTION", required=True)

    features = sub.add_parser("features", help="joints (T,22,3) .npy -> HumanML3D features (T-1,263) .npy")
    features.add_argument("joints", type=Path)
    features.add_argument("output", type=Path)
    features.set_defaults(func=run_features)

    recover = sub.add_parser("recover", help="HumanML3D features (T,263) .npy -> joints (T,22,3) .npy")
    recover.add_argument("features", type=Path)
    recover.add_argument("output", type=Path)
    recover.set_defaults(func=run_recover)

    mirror = sub.add_parser("mirror", help="mirror joints (T,22,3) .npy: swap left/right, negate x")
    mirror.add_argument("joints", type=Path)
    mirror.add_argument("output", type=Path)
    mirror.set_defaults(func=run_mirror)

    from_bvh = sub.add_parser(
        "from-bvh", help="BVH -> canonical 20 fps t2m joints + features (.npz with 'joints', 'features')"
    )
    from_bvh.add_argument("bvh", type=Path)
    from_bvh.add_argument("output", type=Path)
    from_bvh.set_defaults(func=run_from_bvh)


def _load(path: Path, ndim: int) -> np.ndarray:
    return load_npy(path, "joints" if ndim == 3 else "features", ndim=ndim, finite=True)


def run_features(args: argparse.Namespace) -> int:
    from lavimo.motion.humanml3d import joints_to_features

    features = joints_to_features(_load(args.joints, 3), source=str(args.joints))
    save_npy(args.output, features.astype(np.float32))
    print(f"{args.output}: features {features.shape}")
    return 0


def run_recover(args: argparse.Namespace) -> int:
    from lavimo.motion.humanml3d import features_to_joints

    joints = features_to_joints(_load(args.features, 2), source=str(args.features))
    save_npy(args.output, joints.astype(np.float32))
    print(f"{args.output}: joints {joints.shape}")
    return 0


def run_mirror(args: argparse.Namespace) -> int:
    from lavimo.motion.mirror import mirror_joints

    joints = mirror_joints(_load(args.joints, 3), source=str(args.joints))
    save_npy(args.output, joints.astype(np.float32))
    print(f"{args.output}: mirrored joints {joints.shape}")
    return 0


def run_from_bvh(args: argparse.Namespace) -> int:
    from lavimo.datasets.clips import check_motion_values
    from lavimo.io import save_npz
    from lavimo.motion.pipeline import bvh_to_clip

    same = args.output.exists() and args.bvh.exists() and args.output.samefile(args.bvh)
    if same or args.output.resolve() == args.bvh.resolve():
        raise LavimoInputError(args.output, "output path is the input BVH: choose another output (.npz)")
    with np.errstate(over="ignore", invalid="ignore"):  # a corrupt value overflows; checked just below
        clip = bvh_to_clip(args.bvh)
    check_motion_values(clip.joints, clip.features, str(args.bvh))
    save_npz(args.output, {"joints": clip.joints.astype(np.float32), "features": clip.features.astype(np.float32)})
    print(f"{args.output}: {clip.joints.shape[0]} frames at 20 fps (from {clip.source_fps:g} fps, {clip.skeleton})")
    return 0
