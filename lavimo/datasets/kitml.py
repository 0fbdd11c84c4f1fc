"""KIT-ML -> prepared dataset, from either of its two public layouts (``datasets.kitml.root``).

* TMR (what LAVIMO follows): ``annotations.json`` ``{id: {path, duration, annotations: [{seg_id, text,
  start, end}]}}`` + ``splits/{train,val,test,all,nsim_test}.txt``; motions are AMASS-derived HumanML3D
  features (T, 263) at 20 fps in ``{motions}/{path}.npy`` (TMR's ``datasets/motions/guoh3dfeats``).
  Each annotation's span crops feature frames ``int(start*20):int(end*20)``; an id whose annotations
  cover several spans gets one clip per span (the first keeps the id, the others ``{id}_{a}_{b}``).
* Guo et al.'s release: the HumanML3D layout with 251-dim features of a 21-joint skeleton at 12.5 fps.
  Joints are recovered with :mod:`lavimo.motion.kit`, mapped onto the 22 t2m joints by name (spine2 and
  the collars interpolated), resampled to 20 fps and re-featurised as 263-dim HumanML3D features.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from lavimo.datasets.build import STAGE, BuildResult, ClipOut, PrepareOptions, Unit, UnitResult, build_dataset
from lavimo.datasets.captions import clean_caption
from lavimo.datasets.clips import FPS, from_joints
from lavimo.datasets.humanml3d import (
    check_layout,
    clips_from_captions,
    copy_statistics,
    cropped_clip,
    find_split_file,
    humanml3d_units,
    load_features,
    parse_texts,
    read_splits,
    span_frames,
    whole_texts,
    write_dataset_splits,
)
from lavimo.datasets.splits import SPLITS, read_split
from lavimo.io import LavimoInputError, Rejection
from lavimo.layout import DATASET_HELP, root_key, select_with_mirrors
from lavimo.motion.kit import KIT_FEATURE_DIM, KIT_FPS, kit_features_to_joints
from lavimo.motion.resample import resample
from lavimo.motion.skeleton import NUM_JOINTS

ANNOTATIONS = "annotations.json"
# t2m joint <- weighted KIT-ML joints (21-joint order of HumanML3D's paramUtil: 0 root, 1-4 spine to head,
# 5-7 right arm, 8-10 left arm, 11-15 right leg, 16-20 left leg)
KIT_TO_T2M: tuple[dict[int, float], ...] = (
    {0: 1.0}, {16: 1.0}, {11: 1.0}, {1: 1.0}, {17: 1.0}, {12: 1.0}, {1: 0.5, 2: 0.5}, {18: 1.0}, {13: 1.0},
    {2: 1.0}, {19: 1.0}, {14: 1.0}, {3: 1.0}, {3: 0.5, 8: 0.5}, {3: 0.5, 5: 0.5}, {4: 1.0}, {8: 1.0}, {5: 1.0},
    {9: 1.0}, {6: 1.0}, {10: 1.0}, {7: 1.0},
)  # fmt: skip


def kit_to_t2m_matrix() -> np.ndarray:
    """(22, 21) matrix mapping KIT-ML joints to t2m joints."""
    matrix = np.zeros((NUM_JOINTS, 21))
    for t2m_joint, weights in enumerate(KIT_TO_T2M):
        for kit_joint, weight in weights.items():
            matrix[t2m_joint, kit_joint] = weight
    return matrix


def find_motions_dir(root: Path, motions_dir: str | os.PathLike[str] | None) -> Path:
    """The folder of TMR's ``{path}.npy`` motions: the given one, or the first that exists near ``root``."""
    if motions_dir is not None:
        candidates = [Path(motions_dir)]
    else:
        candidates = [root / "motions" / "guoh3dfeats", root / "motions", root / "guoh3dfeats"]
        candidates += [root.parent.parent / "motions" / "guoh3dfeats"]
    for path in candidates:
        if path.is_dir():
            return path
    raise LavimoInputError(
        candidates[0], f"TMR motion folder not found (tried {', '.join(map(str, candidates))}). {DATASET_HELP['kitml']}"
    )


def read_annotations(path: Path) -> dict[str, Any]:
    """TMR's annotations.json, checked for its shape."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise LavimoInputError(path, f"not a readable annotations.json ({error})") from error
    if not isinstance(data, dict) or not all(isinstance(v, dict) and "path" in v for v in data.values()):
        raise LavimoInputError(path, "expected {id: {path, duration, annotations: [...]}}")
    return data


def tmr_splits(root: Path, annotations: dict[str, Any]) -> dict[str, str]:
    """Id -> split from ``splits/{train,val,test}.txt`` (ids without annotations are skipped)."""
    split_of: dict[str, str] = {}
    for name in SPLITS:
        path = find_split_file(root, name)
        if path is None:
            raise LavimoInputError(root / "splits" / f"{name}.txt", f"split list missing. {DATASET_HELP['kitml']}")
        for key in read_split(path):
            if key in annotations:
                split_of.setdefault(key, name)
    return split_of


def tmr_units(
    annotations: dict[str, Any], split_of: dict[str, str], motions: Path, mirror: bool, limit: int | None
) -> list[Unit]:
    """One unit per annotated id that is in a split; ``M`` ids only with ``mirror``; first ``limit`` sources."""
    units = []
    for key, origin in select_with_mirrors(split_of, mirror, limit):
        entry = annotations[key]
        motion = motions / f"{entry['path']}.npy"
        payload = {"annotations": entry.get("annotations", []), "mirrored_from": origin}
        units.append(Unit(key, str(motion), payload, (str(motion),)))
    return units


def segment_name(annotation: Any, index: int) -> str:
    """An annotation's ``seg_id``, or ``#index`` when it has none."""
    seg_id = annotation.get("seg_id") if isinstance(annotation, dict) else None
    return seg_id if isinstance(seg_id, str) else f"#{index}"


def read_annotation(annotation: Any, where: str, source: str) -> tuple[str, float, float]:
    """(caption, start, end) of one TMR annotation; a malformed one raises :class:`LavimoInputError`."""
    if not isinstance(annotation, dict):
        raise LavimoInputError(
            source, f"{where}: expected {{seg_id, text, start, end}}, got {type(annotation).__name__}"
        )
    text = clean_caption(annotation.get("text"), source, where)
    try:
        start, end = float(annotation["start"]), float(annotation["end"])
    except (KeyError, TypeError, ValueError):
        times = f"{str(annotation.get('start'))[:40]!r}, {str(annotation.get('end'))[:40]!r}"
        raise LavimoInputError(source, f"{where}: bad start/end times {times}") from None
    return text, start, end


def process_tmr_clip(unit: Unit, options: PrepareOptions) -> UnitResult:
    """Crop one TMR motion by its annotations' spans into clips (joints recovered from the features).

    A malformed annotation (no text, a NUL in it, times that are not numbers) is rejected on its own."""
    del options
    annotations = unit.payload["annotations"]
    if not annotations:
        raise LavimoInputError(unit.source, f"{unit.key}: no annotations")
    if not isinstance(annotations, list):
        raise LavimoInputError(unit.source, f"{unit.key}: annotations are not a list")
    features = load_features(Path(unit.source))
    result = UnitResult()
    spans: dict[tuple[float, float], list[tuple[str, str]]] = {}
    for index, annotation in enumerate(annotations):
        seg_id = segment_name(annotation, index)
        try:
            text, start, end = read_annotation(annotation, f"{unit.key} {seg_id}", unit.source)
        except LavimoInputError as error:
            result.rejected.append(Rejection(f"{unit.key}:{seg_id}", STAGE, error.path, error.problem))
            continue
        spans.setdefault((start, end), []).append((seg_id, text))
    origin = unit.payload["mirrored_from"]
    for index, ((start, end), group) in enumerate(spans.items()):
        try:
            a, b = span_frames(start, end, len(features), unit.source, f"{unit.key} {group[0][0]}")
            joints, feats = cropped_clip(features, a, b, unit.source)
        except LavimoInputError as error:
            result.rejected += [Rejection(f"{unit.key}:{seg}", STAGE, error.path, error.problem) for seg, _ in group]
            continue
        suffix = "" if index == 0 else f"_{int(start * FPS)}_{int(end * FPS)}"
        texts = whole_texts([text for _, text in group], len(joints))
        mirrored_from = origin + suffix if origin else ""
        result.clips.append(ClipOut(unit.key + suffix, joints, feats, texts, unit.source, mirrored_from))
    return result


def kit_clip(features: np.ndarray, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Guo's KIT-ML features (T, 251) at 12.5 fps -> t2m joints (T', 22, 3) and features (T'-1, 263) at 20 fps."""
    kit_joints = kit_features_to_joints(features, source=source).astype(np.float64)
    t2m_joints = np.einsum("tkc,jk->tjc", kit_joints, kit_to_t2m_matrix())
    return from_joints(resample(t2m_joints, KIT_FPS, FPS), source)


def process_guo_kit_clip(unit: Unit, options: PrepareOptions) -> UnitResult:
    """One clip of Guo's KIT-ML layout -> 22-joint 20 fps clip and its captions (cropped in seconds)."""
    del options
    vecs, _, texts_path = (Path(p) for p in unit.inputs)
    joints, features = kit_clip(load_features(vecs, KIT_FEATURE_DIM), str(vecs))
    captions = [(c.text, c.start, c.end, c.line) for c in parse_texts(texts_path)]
    # joints[:-1] pairs with the features frame by frame, as new_joints do with new_joint_vecs
    return clips_from_captions(unit.key, features, joints[:-1], captions, str(vecs), unit.payload["mirrored_from"])


def _is_guo_layout(root: Path) -> bool:
    return (root / "new_joint_vecs").is_dir() and not (root / ANNOTATIONS).exists()


def prepare_kitml(
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: PrepareOptions | None = None,
    shard_size: int = 128,
    limit: int | None = None,
    workers: int = 1,
    motions_dir: str | os.PathLike[str] | None = None,
) -> BuildResult:
    """Prepare KIT-ML (TMR or Guo layout, detected) into ``out``."""
    options = options or PrepareOptions()
    root, out = Path(root), Path(out)
    if _is_guo_layout(root):
        check_layout(root, "kitml")
        split_of = read_splits(root)
        units, process = humanml3d_units(root, split_of, options.mirror, limit), process_guo_kit_clip
    else:
        if not (root / ANNOTATIONS).exists():
            expected = f"expected {ANNOTATIONS} or new_joint_vecs/"
            raise LavimoInputError(root, f"no KIT-ML here ({root_key('kitml')}): {expected}. {DATASET_HELP['kitml']}")
        annotations = read_annotations(root / ANNOTATIONS)
        split_of = tmr_splits(root, annotations)
        motions = find_motions_dir(root, motions_dir)
        units, process = tmr_units(annotations, split_of, motions, options.mirror, limit), process_tmr_clip
    result = build_dataset(
        out, units, process, split_of, options, shard_size=shard_size, workers=workers, desc="prepare kitml"
    )
    write_dataset_splits(root, out, result)
    copy_statistics(root, out)
    return result
