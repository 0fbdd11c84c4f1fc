"""The results layout, and the names it is built from: one home for each.

Under ``results/``::

    avatars/{backend}/00.npz .. 12.npz     the NUM_AVATARS avatars
    {ds}/                                  one folder per dataset in DATASETS
        manifest.parquet, motions/, splits/, rejected.csv
        frames/{clip_id}/00.png .. 07.png  a clip's rendered frames and their meta.json (flat: no shard folders)
        features/current.json              {"encoder_id": ...}: the frame-feature cache the pipeline uses
        features/{encoder_id}/             that cache (lavimo.video.cache)
        sentences/current.json             {"name": ...}: the caption-embedding cache the pipeline uses
        sentences/{name}.npy, {name}.json  that cache (lavimo.text.sentences)
        runs/{variant}/                    a training run (lavimo.train, lavimo.checkpoints)

Clip ids: a mirrored clip is ``MIRROR_PREFIX`` + the id of its source (HumanML3D's convention).

This module is a leaf (it imports only :mod:`lavimo.io`): the workflow's rules read it too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from lavimo.io import LavimoInputError, read_json, save_json

PathLike = str | os.PathLike[str]

# ---- datasets --------------------------------------------------------------------------------------------
DATASETS: tuple[str, ...] = ("demo", "humanml3d", "kitml")  # the demo set is bundled; the others are not
NUM_AVATARS = 13  # avatar files per backend; every clip is rendered on one of them

DATASET_HELP: dict[str, str] = {
    "humanml3d": (
        "HumanML3D is not bundled: it derives from AMASS, which you download yourself under its license. "
        "Build it with https://github.com/EricGuo5513/HumanML3D (or `lavimo prepare amass` / `snakemake "
        "prepare_amass` from AMASS npz files and SMPL-H models, then add HumanML3D's texts/), and set "
        "`datasets.humanml3d.root` in config.yaml to the folder holding new_joint_vecs/, new_joints/, texts/, "
        "train.txt, val.txt, test.txt, Mean.npy and Std.npy."
    ),
    "kitml": (
        "KIT-ML is not bundled. Get TMR's KIT-ML (https://github.com/Mathux/TMR: annotations.json and splits/, plus "
        "the AMASS-derived motions in datasets/motions/guoh3dfeats built from AMASS under its license) or Guo et "
        "al.'s KIT-ML release (https://github.com/EricGuo5513/HumanML3D: new_joint_vecs/, new_joints/, texts/, "
        "train.txt, val.txt, test.txt), and set `datasets.kitml.root` in config.yaml to that folder."
    ),
}


def root_key(dataset: str) -> str:
    """The config.yaml key of a dataset's input folder: ``datasets.{dataset}.root``."""
    return f"datasets.{dataset}.root"


def dataset_not_found(dataset: str) -> str:
    """What to say when a dataset's input folder is missing: the config key and how to get the dataset."""
    return f"dataset folder not found ({root_key(dataset)}). {DATASET_HELP[dataset]}"


# ---- clip ids and mirrors --------------------------------------------------------------------------------
MIRROR_PREFIX = "M"


def mirror_clip_id(clip_id: str) -> str:
    """Id of the mirrored clip: ``M`` + the original id (HumanML3D's convention)."""
    return MIRROR_PREFIX + clip_id


def unmirrored_id(clip_id: str) -> str:
    """``clip_id`` without the mirror prefix (the id itself when it has none)."""
    return clip_id.removeprefix(MIRROR_PREFIX)


def select_with_mirrors(ids: Iterable[str], mirror: bool, limit: int | None = None) -> list[tuple[str, str]]:
    """The clips to prepare from a dataset's listed ids, sorted: (clip id, the id it mirrors or "").

    A source is an id that is not the mirror of another listed id; the first ``limit`` sources (sorted) are
    kept, with their listed mirrors when ``mirror``.
    """
    listed = set(ids)
    sources = [i for i in sorted(listed) if not (i.startswith(MIRROR_PREFIX) and unmirrored_id(i) in listed)]
    if limit is not None:
        sources = sources[:limit]
    keep = set(sources) | ({mirror_clip_id(s) for s in sources} & listed if mirror else set())
    return [
        (i, unmirrored_id(i) if i.startswith(MIRROR_PREFIX) and unmirrored_id(i) in keep else "") for i in sorted(keep)
    ]


# ---- rendered frames -------------------------------------------------------------------------------------
FRAMES = "frames"
FRAME_META = "meta.json"  # the renderer's record of a clip: frame indices, avatar, engine, resolution, signature
FRAME_GLOB = "[0-9][0-9].png"


def frames_dir(dataset_dir: PathLike) -> Path:
    """A dataset's rendered frames: ``{dataset_dir}/frames``."""
    return Path(dataset_dir) / FRAMES


def clip_frames_dir(frames: PathLike, clip_id: str) -> Path:
    """The folder of one clip's frames in a frames folder: ``{frames}/{clip_id}``."""
    return Path(frames) / clip_id


def frame_file(index: int) -> str:
    """The file name of a clip's ``index``-th sampled frame: ``00.png``, ``01.png``, ..."""
    return f"{index:02d}.png"


# ---- caches and their pointers ---------------------------------------------------------------------------
FEATURES = "features"
SENTENCES = "sentences"
CURRENT = "current"  # the pointer the pipeline writes and reads; other names: e.g. an ablation study's cache
# the key naming the pointed-at cache in each kind of pointer file (as written since the caches exist)
FEATURES_POINTER_KEY = "encoder_id"
SENTENCES_POINTER_KEY = "name"


def features_dir(dataset_dir: PathLike) -> Path:
    """A dataset's frame-feature caches: ``{dataset_dir}/features``."""
    return Path(dataset_dir) / FEATURES


def sentences_dir(dataset_dir: PathLike) -> Path:
    """A dataset's caption-embedding caches: ``{dataset_dir}/sentences``."""
    return Path(dataset_dir) / SENTENCES


def pointer_path(folder: PathLike, pointer: str = CURRENT) -> Path:
    """The pointer file ``{folder}/{pointer}.json``."""
    return Path(folder) / f"{pointer}.json"


def write_pointer(folder: PathLike, key: str, target: str, pointer: str = CURRENT, **extra: object) -> Path:
    """Write ``{folder}/{pointer}.json`` = ``{key: target, **extra}`` atomically; returns its path."""
    path = pointer_path(folder, pointer)
    save_json(path, {key: target, **extra})
    return path


def read_pointer(folder: PathLike, key: str, pointer: str = CURRENT, what: str = "cache pointer") -> str:
    """The cache name ``{folder}/{pointer}.json`` holds under ``key``; a missing or bad file is an input error."""
    path = pointer_path(folder, pointer)
    data = read_json(path, what)
    if not isinstance(data, dict) or not isinstance(data.get(key), str):
        raise LavimoInputError(path, f"{what} names no cache (no {key!r})")
    return data[key]
