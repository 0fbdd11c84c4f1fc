"""`lavimo bench retarget`: retargeting accuracy of the anny avatars on the demo clips.

Figures per avatar, over all frames of all clips:
- bone direction error: angle between each source bone (parent -> joint, 21 bones) and the same bone
  of the retargeted avatar joints; mean and 95th percentile (targets <= 5 and <= 12 deg);
- foot height on contact frames: contact as in HumanML3D (squared displacement of l/r ankle and foot
  joints < 0.002 m^2 per 20 fps frame, on the source); the figure is the median |posed height of
  the contacting foot joint - its rest height| (target <= 2 cm). Also shown, not a target: the
  median |lowest skinned vertex of that foot's segments| (the sole; floor at y = 0), on up to 40
  contact frames per clip.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lavimo.avatars.body import Avatar
from lavimo.avatars.build import build_avatars, load_avatar
from lavimo.avatars.retarget import FOOT_JOINTS, bone_errors_deg, contact_heights, foot_contacts, retarget
from lavimo.avatars.skinning import skin
from lavimo.bench.common import demo_bvh_files, load_config
from lavimo.io import LavimoInputError

log = logging.getLogger(__name__)

BENCH_AVATARS = (0, 5, 6, 8)  # tallest man, shortest woman, muscular man, teenager
TARGETS = {"mean_deg": 5.0, "p95_deg": 12.0, "foot_cm": 2.0}
SOLE_FRAMES = 40


@dataclass
class Tally:
    """Accumulated figures of one avatar."""

    errors: list[np.ndarray] = field(default_factory=list)
    feet: list[np.ndarray] = field(default_factory=list)
    soles: list[np.ndarray] = field(default_factory=list)
    seconds: float = 0.0

    def figures(self) -> dict[str, float]:
        errors = np.concatenate([e.ravel() for e in self.errors])
        feet = np.abs(np.concatenate(self.feet)) if self.feet else np.zeros(1)
        soles = np.abs(np.concatenate(self.soles)) if self.soles else np.zeros(1)
        return {
            "mean_deg": float(errors.mean()),
            "p95_deg": float(np.percentile(errors, 95)),
            "foot_cm": 100.0 * float(np.median(feet)),
            "sole_cm": 100.0 * float(np.median(soles)),
            "contacts": float(len(feet)),
        }


def sole_heights(avatar: Avatar, source: np.ndarray, posed: Any, max_frames: int = SOLE_FRAMES) -> np.ndarray:
    """Lowest skinned vertex of each contacting foot (ankle + toe segments), on some contact frames (m)."""
    contacts = foot_contacts(source)
    left, right = contacts[:, :2].any(1), contacts[:, 2:].any(1)
    frames = np.flatnonzero(left | right)
    if len(frames) == 0:
        return np.zeros(0)
    frames = frames[np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).astype(int)]
    vertices = skin(avatar, posed, frames)
    dominant = avatar.skin_weights.argmax(1)
    out = []
    for side, mask in ((left, np.isin(dominant, FOOT_JOINTS[:2])), (right, np.isin(dominant, FOOT_JOINTS[2:]))):
        keep = side[frames]
        out.append(vertices[keep][:, mask, 1].min(1))
    return np.concatenate(out)


def bench_avatars(scratch: Path) -> list[Avatar]:
    """The benchmark's anny avatars (built into ``scratch``)."""
    paths = build_avatars("anny", scratch)
    return [load_avatar(paths[i]) for i in BENCH_AVATARS]


def bench_retarget(args: argparse.Namespace) -> int:
    """Print bone direction errors and foot contact heights per avatar; 1 if a target is missed."""
    config = load_config(args.config)
    with tempfile.TemporaryDirectory(prefix="lavimo-bench-") as scratch:
        files = demo_bvh_files(config, Path(scratch) / "demo")[: args.limit]
        avatars = bench_avatars(Path(scratch) / "avatars")
        tallies, used = measure(files, avatars)
    if used == 0:
        raise LavimoInputError(args.config, "no usable demo clip for the retarget bench")
    report(used, len(files), avatars, tallies)
    return 0 if all(meets_targets(t.figures()) for t in tallies) else 1


def meets_targets(figures: dict[str, float]) -> bool:
    """Whether one avatar's figures meet every target."""
    return all(figures[k] <= v for k, v in TARGETS.items())


def measure(files: list[Path], avatars: list[Avatar]) -> tuple[list[Tally], int]:
    """Retarget every clip onto every avatar and collect the figures; also the number of clips used."""
    from lavimo.motion.pipeline import bvh_to_clip

    tallies = [Tally() for _ in avatars]
    used = 0
    for path in files:
        try:
            joints = bvh_to_clip(path).joints.astype(np.float64)
        except LavimoInputError as error:  # e.g. shorter than the pipeline's minimum: not a retargeting case
            log.info("skipped %s", error)
            continue
        used += 1
        for avatar, tally in zip(avatars, tallies, strict=True):
            start = time.perf_counter()
            posed = retarget(avatar, joints)
            tally.seconds += time.perf_counter() - start
            tally.errors.append(bone_errors_deg(joints, posed.joints))
            tally.feet.append(contact_heights(joints, posed))
            tally.soles.append(sole_heights(avatar, joints, posed))
    return tallies, used


def report(n_files: int, n_found: int, avatars: list[Avatar], tallies: list[Tally]) -> None:
    """Print the figures table."""
    frames = sum(len(e) for e in tallies[0].errors)
    print(
        f"retarget bench: {n_files} demo clips ({n_found - n_files} rejected by the motion pipeline), "
        f"{frames} frames (20 fps), avatars {list(BENCH_AVATARS)}"
    )
    header = ("mean deg", 9), ("p95 deg", 8), ("|foot| cm", 10), ("|sole| cm", 10), ("contacts", 9), ("ms/clip", 8)
    print(f"{'avatar':40s} " + " ".join(f"{name:>{width}s}" for name, width in header))
    ok = True
    for avatar, tally in zip(avatars, tallies, strict=True):
        f = tally.figures()
        ok &= meets_targets(f)
        print(
            f"{avatar.name:40s} {f['mean_deg']:9.3f} {f['p95_deg']:8.3f} {f['foot_cm']:10.2f} {f['sole_cm']:10.2f} "
            f"{int(f['contacts']):9d} {1000 * tally.seconds / max(n_files, 1):8.1f}"
        )
    targets = ", ".join(f"{k} <= {v}" for k, v in TARGETS.items())
    print(f"targets ({targets}): {'met' if ok else 'MISSED'}")
