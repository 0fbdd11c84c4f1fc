"""The demo dataset: bundled Bandai-Namco BVH clips -> canonical motions, generated captions, splits.

Labels: each ``{dataset}_{content}_{style}_{id}.bvh`` has a JSON ``{"content": i, "style": j}`` whose
indices are 0-based into ``cfg/content_label.txt`` / ``cfg/style_label.txt`` (checked against the file
names of all 454 clips). Clip id = file stem; its mirror is ``M`` + stem with mirrored captions.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

from lavimo.datasets.build import STAGE, BuildResult, ClipOut, PrepareOptions, Unit, UnitResult, build_dataset
from lavimo.datasets.bundle import unpack_bundle
from lavimo.datasets.captions import (
    CONTENT_PHRASES,
    STYLE_PHRASES,
    captions_for,
    phrases_digest,
    strip_format_characters,
)
from lavimo.datasets.clips import check_motion, complete_joints, duration, mirrored
from lavimo.datasets.splits import dissimilar_subset, stratified_split, write_splits
from lavimo.io import LavimoInputError, Rejection
from lavimo.layout import mirror_clip_id
from lavimo.motion.mirror import mirror_text

NSIM_SIZE = 100


def read_label_list(path: Path, prefix: str) -> list[str]:
    """Labels of a ``cfg/*.txt`` list, without the ``{dataset}_`` prefix (format characters, e.g. a byte-order mark,
    removed; a NUL character refuses the list)."""
    if not path.exists():
        raise LavimoInputError(path, "label list missing")
    text = path.read_text(encoding="utf-8", errors="replace")
    if "\x00" in text:
        raise LavimoInputError(path, "label list holds a NUL character (binary data, not text)")
    names = strip_format_characters(text).split()
    if not names:
        raise LavimoInputError(path, "label list is empty")
    return [n.removeprefix(f"{prefix}_") for n in names]


def read_labels(json_path: Path, contents: list[str], styles: list[str]) -> tuple[str, str]:
    """(content, style) of a clip from its JSON label file, checked against its file name."""
    if not json_path.exists():
        raise LavimoInputError(json_path, "label file missing (every BVH needs its JSON labels)")
    text = json_path.read_text(encoding="utf-8", errors="replace").strip()
    if not text:
        raise LavimoInputError(json_path, "label file is empty")
    try:
        labels = json.loads(text)
        content_index, style_index = int(labels["content"]), int(labels["style"])
        if content_index < 0 or style_index < 0:
            raise IndexError("negative label index")
        content, style = contents[content_index], styles[style_index]
    except (ValueError, KeyError, IndexError, TypeError, OverflowError) as error:
        problem = f"bad labels, expected {{'content': i, 'style': j}} ({repr(error)[:80]})"
        raise LavimoInputError(json_path, problem) from None
    parts = json_path.stem.split("_")
    if len(parts) == 4 and (parts[1], parts[2]) != (content, style):
        raise LavimoInputError(json_path, f"labels {content}/{style} contradict the file name")
    if content not in CONTENT_PHRASES or style not in STYLE_PHRASES:
        raise LavimoInputError(json_path, f"no caption phrases for content {content!r} / style {style!r}")
    return content, style


def demo_units(raw: dict[str, Path]) -> tuple[list[Unit], list[Rejection]]:
    """One unit per BVH of the unpacked datasets; clips whose labels are unusable are rejected."""
    units: list[Unit] = []
    rejected: list[Rejection] = []
    digest = phrases_digest()  # edited phrase banks rebuild the shards
    for name, folder in sorted(raw.items()):
        contents = read_label_list(folder / "cfg" / "content_label.txt", name)
        styles = read_label_list(folder / "cfg" / "style_label.txt", name)
        for bvh in sorted((folder / "data").glob("*.bvh")):
            json_path = bvh.with_suffix(".json")
            try:
                content, style = read_labels(json_path, contents, styles)
            except LavimoInputError as error:
                rejected.append(Rejection(bvh.stem, STAGE, error.path, error.problem))
                continue
            payload = {"dataset": name, "content": content, "style": style, "phrases": digest}
            units.append(Unit(bvh.stem, str(bvh), payload, (str(bvh), str(json_path))))
    return units, rejected


def limit_units(units: list[Unit], limit: int | None) -> list[Unit]:
    """The first ``limit`` units taken round-robin over contents (so small demos cover many actions)."""
    if limit is None or limit >= len(units):
        return units
    by_content: dict[str, list[Unit]] = defaultdict(list)
    for unit in sorted(units, key=lambda u: u.key):
        by_content[unit.payload["content"]].append(unit)
    interleaved = sorted(
        ((rank, content, unit) for content, group in by_content.items() for rank, unit in enumerate(group)),
        key=lambda item: (item[0], item[1]),
    )
    return [unit for _, _, unit in interleaved[:limit]]


def _texts(captions: list[str], n_frames: int) -> list[dict[str, float | str]]:
    end = duration(n_frames)
    return [{"text": text, "start": 0.0, "end": end} for text in captions]


def process_demo_clip(unit: Unit, options: PrepareOptions) -> UnitResult:
    """BVH -> canonical joints (T, 22, 3) + features (T-1, 263) and captions; plus its mirror."""
    from lavimo.motion.pipeline import bvh_to_clip

    clip = bvh_to_clip(unit.source, min_seconds=options.min_seconds)
    joints, features = check_motion(complete_joints(clip.joints, clip.features), clip.features, unit.source)
    content, style = unit.payload["content"], unit.payload["style"]
    captions = captions_for(unit.key, content, style, n=options.n_captions, seed=options.seed)
    out = [ClipOut(unit.key, joints, features, _texts(captions, len(joints)), unit.source)]
    if options.mirror:
        m_joints, m_features = mirrored(joints, unit.source)
        m_texts = _texts([mirror_text(c) for c in captions], len(m_joints))
        out.append(ClipOut(mirror_clip_id(unit.key), m_joints, m_features, m_texts, unit.source, unit.key))
    return UnitResult(out)


def demo_splits(units: list[Unit], seed: int, limited: bool = False) -> dict[str, str]:
    """Unit key -> split, ~80/5/15 stratified by (dataset, content), or by dataset alone when ``limited``.

    A limited demo (:func:`limit_units`) holds one or two clips of each content, and groups that small all
    stay in train: stratified by (dataset, content) it would have no test clips, so it is stratified by dataset.
    """
    keys = [u.key for u in units]
    groups = [(u.payload["dataset"],) + (() if limited else (u.payload["content"],)) for u in units]
    return stratified_split(keys, groups, seed=seed)


def write_demo_splits(out: Path, result: BuildResult, units: list[Unit], seed: int) -> None:
    """``splits/{train,val,test,all,nsim_test}.txt``; nsim_test = test sources with distinct (content, style)."""
    frame = result.manifest
    lists = {name: sorted(frame.loc[frame["split"] == name, "clip_id"]) for name in ("train", "val", "test")}
    lists["all"] = sorted(frame["clip_id"])
    labels = {u.key: (u.payload["content"], u.payload["style"]) for u in units}
    test_sources = [c for c in lists["test"] if c in labels]
    lists["nsim_test"] = dissimilar_subset(test_sources, labels, seed=seed, size=NSIM_SIZE)
    write_splits(out / "splits", lists)


def prepare_demo(
    out: str | os.PathLike[str],
    bundle: str | os.PathLike[str] = "resources/demo",
    options: PrepareOptions | None = None,
    shard_size: int = 128,
    limit: int | None = None,
    workers: int = 1,
) -> BuildResult:
    """Unpack the bundle to ``out/raw`` and prepare the demo set into ``out``."""
    options = options or PrepareOptions()
    out = Path(out)
    raw = unpack_bundle(bundle, out / "raw")
    units, rejected = demo_units(raw)
    limited = limit is not None and limit < len(units)
    units = limit_units(units, limit)
    result = build_dataset(
        out,
        units,
        process_demo_clip,
        demo_splits(units, options.seed, limited),
        options,
        shard_size=shard_size,
        clips_per_unit=2 if options.mirror else 1,
        workers=workers,
        rejected=rejected,
        desc="prepare demo",
    )
    write_demo_splits(out, result, units, options.seed)
    return result
