"""HumanML3D folder layout -> prepared dataset (manifest + shards), with HumanML3D's sub-clip cropping.

Layout (``datasets.humanml3d.root``)::

    new_joint_vecs/{id}.npy   (T, 263) features, 20 fps
    new_joints/{id}.npy       (T, 22, 3) joints recovered from them (optional: recovered here if absent)
    texts/{id}.txt            one caption per line: ``caption#word/POS word/POS ...#start#end``
    train.txt val.txt test.txt [all.txt nsim_test.txt]   (or the same under splits/)
    Mean.npy Std.npy          feature statistics (copied to the output when present)

Captions with ``0.0#0.0`` describe the whole clip; any other span crops feature frames
``int(start*20):int(end*20)`` into a sub-clip ``{id}_{a}_{b}`` of its own, as HumanML3D's loaders do.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lavimo.datasets.build import STAGE, BuildResult, ClipOut, PrepareOptions, Unit, UnitResult, build_dataset
from lavimo.datasets.captions import clean_caption, strip_format_characters
from lavimo.datasets.clips import FPS, check_motion, complete_joints, duration, seconds_to_frames
from lavimo.datasets.splits import SPLITS, read_split, write_splits
from lavimo.io import LavimoInputError, Rejection, atomic_path, load_npy
from lavimo.layout import DATASET_HELP, dataset_not_found, root_key, select_with_mirrors
from lavimo.motion.humanml3d import features_to_joints

TIME_TOLERANCE = 0.25  # s: a span ending at most this far past the clip is clamped to it, further is rejected


@dataclass(frozen=True)
class Caption:
    """One caption line of a HumanML3D text file (times in seconds; 0, 0 = whole clip)."""

    text: str
    start: float
    end: float
    line: int


def parse_texts(path: str | os.PathLike[str]) -> list[Caption]:
    """Captions of ``texts/{id}.txt``; a missing, empty or malformed file raises :class:`LavimoInputError`.

    Unicode format characters (zero-width spaces, byte-order marks) are removed; a NUL character refuses the file.
    A NaN time counts as 0, as in HumanML3D's loaders; other bad times are refused per caption by :func:`span_frames`.
    """
    path = Path(path)
    if not path.exists():
        raise LavimoInputError(path, "caption file missing")
    captions = []
    for number, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if "\x00" in raw:
            raise LavimoInputError(path, f"line {number}: holds a NUL character (binary data, not a caption)")
        line = strip_format_characters(raw).strip()
        if not line:
            continue
        fields = line.rsplit("#", 3)
        if len(fields) != 4 or not fields[0].strip():
            raise LavimoInputError(path, f"line {number}: expected 'caption#tokens#start#end', got {_cut(line)!r}")
        try:
            start, end = float(fields[2] or 0.0), float(fields[3] or 0.0)
        except ValueError:
            raise LavimoInputError(
                path, f"line {number}: bad start/end times {_cut(fields[2])!r}, {_cut(fields[3])!r}"
            ) from None
        start, end = (0.0 if math.isnan(start) else start), (0.0 if math.isnan(end) else end)
        captions.append(Caption(clean_caption(fields[0], path, f"line {number}"), start, end, number))
    if not captions:
        raise LavimoInputError(path, "caption file is empty")
    return captions


def _cut(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters for a message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def span_frames(start: float, end: float, n_features: int, source: str, where: str) -> tuple[int, int]:
    """Feature frames [a, b) of a caption span; times that are not finite, outside the clip or shorter than a frame
    raise :class:`LavimoInputError`."""
    if not (math.isfinite(start) and math.isfinite(end)):
        raise LavimoInputError(source, f"{where}: caption time {start:g}-{end:g} s is not a finite number")
    seconds = n_features / FPS
    outside = f"{where}: caption time {start:g}-{end:g} s is outside the clip (0-{seconds:g} s)"
    if start < 0 or end <= start or end > 2 * (seconds + TIME_TOLERANCE):  # in seconds first: 1e300 s has no frame
        raise LavimoInputError(source, outside)
    a, b = seconds_to_frames(start, end)
    if a >= n_features or b > n_features + TIME_TOLERANCE * FPS:
        raise LavimoInputError(source, outside)
    if b <= a:
        raise LavimoInputError(source, f"{where}: caption time {start:g}-{end:g} s spans no whole frame")
    return a, min(b, n_features)


def sub_clip_id(clip_id: str, a: int, b: int) -> str:
    """Id of the sub-clip of feature frames [a, b)."""
    return f"{clip_id}_{a}_{b}"


def load_features(path: Path, dims: int = 263) -> np.ndarray:
    """A (T, dims) feature file; missing or misshapen files raise :class:`LavimoInputError`."""
    features = load_npy(path, "motion file", finite=True)
    if features.ndim != 2 or features.shape[1] != dims or len(features) < 2:
        raise LavimoInputError(path, f"expected features (T >= 2, {dims}), got {features.shape}")
    return features


def whole_clip(features: np.ndarray, joints: np.ndarray | None, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(joints (T+1, 22, 3), features (T, 263)) of a whole clip; joints recovered from features if absent."""
    if joints is None or joints.shape != (len(features), 22, 3):
        if joints is not None:
            raise LavimoInputError(source, f"new_joints {joints.shape} do not match new_joint_vecs {features.shape}")
        joints = features_to_joints(features, source=source)
    return check_motion(complete_joints(joints, features), features, source)


def cropped_clip(features: np.ndarray, a: int, b: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Sub-clip of feature frames [a, b), its joints recovered from the cropped features (canonical start)."""
    part = features[a:b]
    if len(part) < 1:
        raise LavimoInputError(source, f"empty crop [{a}, {b})")
    return check_motion(complete_joints(features_to_joints(part, source=source), part), part, source)


def clips_from_captions(
    clip_id: str,
    features: np.ndarray,
    joints: np.ndarray | None,
    captions: Iterable[tuple[str, float, float, int]],
    source: str,
    mirrored_from: str = "",
) -> UnitResult:
    """Group captions by span: whole-clip ones make the clip itself, every other span its own sub-clip."""
    whole: list[str] = []
    spans: dict[tuple[int, int], list[str]] = {}
    rejected: list[Rejection] = []
    for text, start, end, line in captions:
        if start == 0.0 and end == 0.0:
            whole.append(text)
            continue
        try:
            span = span_frames(start, end, len(features), source, f"line {line}")
        except LavimoInputError as error:
            rejected.append(Rejection(f"{clip_id}:{line}", STAGE, error.path, error.problem))
            continue
        spans.setdefault(span, []).append(text)
    out: list[ClipOut] = []
    if whole:
        j, f = whole_clip(features, joints, source)
        out.append(ClipOut(clip_id, j, f, whole_texts(whole, len(j)), source, mirrored_from))
    for (a, b), texts in sorted(spans.items()):
        j, f = cropped_clip(features, a, b, source)
        origin = sub_clip_id(mirrored_from, a, b) if mirrored_from else ""
        out.append(ClipOut(sub_clip_id(clip_id, a, b), j, f, whole_texts(texts, len(j)), source, origin))
    return UnitResult(out, rejected)


def whole_texts(texts: list[str], n_frames: int) -> list[dict[str, float | str]]:
    """Manifest texts covering a whole clip of ``n_frames`` joint frames."""
    end = duration(n_frames)
    return [{"text": text, "start": 0.0, "end": end} for text in texts]


def process_humanml3d_clip(unit: Unit, options: PrepareOptions) -> UnitResult:
    """Load one HumanML3D clip (features, joints, captions) into its clip and sub-clips."""
    del options
    vecs, joints_path, texts_path = (Path(p) for p in unit.inputs)
    features = load_features(vecs)
    joints = load_npy(joints_path, "joints file") if joints_path.exists() else None
    captions = [(c.text, c.start, c.end, c.line) for c in parse_texts(texts_path)]
    return clips_from_captions(unit.key, features, joints, captions, str(vecs), unit.payload["mirrored_from"])


def find_split_file(root: Path, name: str) -> Path | None:
    """``root/{name}.txt`` or ``root/splits/{name}.txt``."""
    for path in (root / f"{name}.txt", root / "splits" / f"{name}.txt"):
        if path.exists():
            return path
    return None


def check_layout(root: Path, dataset: str = "humanml3d") -> None:
    """Raise a helpful :class:`LavimoInputError` when ``root`` is not a HumanML3D-style folder (of ``dataset``)."""
    if not root.is_dir():
        raise LavimoInputError(root, dataset_not_found(dataset))
    missing = [d for d in ("new_joint_vecs", "texts") if not (root / d).is_dir()]
    missing += [f"{s}.txt" for s in SPLITS if find_split_file(root, s) is None]
    if missing:
        problem = f"incomplete dataset folder ({root_key(dataset)}): missing {', '.join(missing)}"
        raise LavimoInputError(root, f"{problem}. {DATASET_HELP[dataset]}")


def read_splits(root: Path) -> dict[str, str]:
    """Clip id -> split from train/val/test lists."""
    split_of: dict[str, str] = {}
    for name in SPLITS:
        for clip_id in read_split(find_split_file(root, name)):
            split_of.setdefault(clip_id, name)
    return split_of


def humanml3d_units(root: Path, split_of: dict[str, str], mirror: bool, limit: int | None) -> list[Unit]:
    """One unit per listed clip id (``M`` ids dropped without ``mirror``); the first ``limit`` sources."""
    units = []
    for clip_id, origin in select_with_mirrors(split_of, mirror, limit):
        inputs = (root / "new_joint_vecs" / f"{clip_id}.npy", root / "new_joints" / f"{clip_id}.npy")
        inputs += (root / "texts" / f"{clip_id}.txt",)
        units.append(Unit(clip_id, str(inputs[0]), {"mirrored_from": origin}, tuple(str(p) for p in inputs)))
    return units


def copy_statistics(root: Path, out: Path) -> None:
    """Copy Mean.npy / Std.npy (feature normalisation) beside the manifest when the dataset has them."""
    for name in ("Mean.npy", "Std.npy"):
        if (root / name).exists():
            with atomic_path(out / name) as tmp:
                shutil.copyfile(root / name, tmp)


def write_dataset_splits(root: Path, out: Path, result: BuildResult) -> None:
    """splits/{train,val,test,all}.txt of the prepared clips (sub-clips included), and nsim_test if given."""
    frame = result.manifest
    lists = {name: sorted(frame.loc[frame["split"] == name, "clip_id"]) for name in SPLITS}
    lists["all"] = sorted(frame["clip_id"])
    nsim = find_split_file(root, "nsim_test")
    if nsim is not None:
        present = set(lists["test"])
        lists["nsim_test"] = [i for i in read_split(nsim) if i in present]
    write_splits(out / "splits", lists)


def prepare_humanml3d(
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: PrepareOptions | None = None,
    shard_size: int = 128,
    limit: int | None = None,
    workers: int = 1,
) -> BuildResult:
    """Prepare a HumanML3D folder into ``out`` (manifest, shards, splits, rejected.csv, Mean/Std)."""
    options = options or PrepareOptions()
    root, out = Path(root), Path(out)
    check_layout(root)
    split_of = read_splits(root)
    units = humanml3d_units(root, split_of, options.mirror, limit)
    result = build_dataset(
        out, units, process_humanml3d_clip, split_of, options, shard_size=shard_size, workers=workers,
        desc="prepare humanml3d",
    )  # fmt: skip
    write_dataset_splits(root, out, result)
    copy_statistics(root, out)
    return result
