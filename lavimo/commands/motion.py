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
    """A joints (``ndim`` 3) or features (2) input, refused unless its values are a plausible motion."""
    from lavimo.motion.plausibility import check_feature_values, check_joint_values

    array = load_npy(path, "joints" if ndim == 3 else "features", ndim=ndim, finite=True)
    (check_joint_values if ndim == 3 else check_feature_values)(array, str(path))
    return array


def _save(output: Path, array: np.ndarray, source: Path) -> None:
    """Write a joints (3-dim) or features (2-dim) output, refused (naming ``source``) unless plausible."""
    from lavimo.motion.plausibility import check_feature_values, check_joint_values

    what = f"motion (the {'joints' if array.ndim == 3 else 'features'} computed from it)"
    (check_joint_values if array.ndim == 3 else check_feature_values)(array, str(source), what)
    save_npy(output, array.astype(np.float32))


def run_features(args: argparse.Namespace) -> int:
    from lavimo.motion.humanml3d import joints_to_features

    with np.errstate(over="ignore", invalid="ignore"):  # extreme (yet plausible) inputs overflow: checked in _save
        features = joints_to_features(_load(args.joints, 3), source=str(args.joints))
    _save(args.output, features, args.joints)
    print(f"{args.output}: features {features.shape}")
    return 0


def run_recover(args: argparse.Namespace) -> int:
    from lavimo.motion.humanml3d import features_to_joints

    with np.errstate(over="ignore", invalid="ignore"):
        joints = features_to_joints(_load(args.features, 2), source=str(args.features))
    _save(args.output, joints, args.features)
    print(f"{args.output}: joints {joints.shape}")
    return 0


def run_mirror(args: argparse.Namespace) -> int:
    from lavimo.motion.mirror import mirror_joints

    joints = mirror_joints(_load(args.joints, 3), source=str(args.joints))
    _save(args.output, joints, args.joints)
    print(f"{args.output}: mirrored joints {joints.shape}")
    return 0


def run_from_bvh(args: argparse.Namespace) -> int:
    from lavimo.io import save_npz
    from lavimo.motion.pipeline import bvh_to_clip

    same = args.output.exists() and args.bvh.exists() and args.output.samefile(args.bvh)
    if same or args.output.resolve() == args.bvh.resolve():
        raise LavimoInputError(args.output, "output path is the input BVH: choose another output (.npz)")
    with np.errstate(over="ignore", invalid="ignore"):  # a corrupt value overflows; bvh_to_clip refuses the result
        clip = bvh_to_clip(args.bvh)
    save_npz(args.output, {"joints": clip.joints.astype(np.float32), "features": clip.features.astype(np.float32)})
    print(f"{args.output}: {clip.joints.shape[0]} frames at 20 fps (from {clip.source_fps:g} fps, {clip.skeleton})")
    return 0
