"""The bundled demo set: Bandai-Namco BVH clips as one deterministic tar.xz per dataset, and its unpacking.

``resources/demo/`` holds ``{dataset}.tar.xz`` (``cfg/*.txt`` label lists, ``data/*.bvh`` and their
``data/*.json`` labels), ``LICENSE-{dataset}``, ``ATTRIBUTION.md`` and ``bundle.json`` (file counts
and sha256 of each archive; unpacking checks both). Archives are byte-reproducible: sorted members, zero
mtimes and owners.
"""

from __future__ import annotations

import io
import json
import logging
import lzma
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from lavimo.io import (
    DiskFullError,
    LavimoInputError,
    atomic_path,
    file_sha256,
    folder_lock,
    is_disk_full,
    save_json,
    save_text,
)

log = logging.getLogger(__name__)

DATASETS: tuple[str, ...] = ("dataset-1", "dataset-2")
BUNDLE_INDEX = "bundle.json"
STAMP = ".bundle-sha256"
XZ_PRESET = 9

# the notice required by CC BY-NC 4.0, verbatim from the project's data README (keep it wherever the data goes)
NOTICE = "\n".join(
    (
        '"Bandai-Namco-Research-Motiondataset" by Bandai Namco Research Inc., licensed under CC BY-NC 4.0',
        "(https://creativecommons.org/licenses/by-nc/4.0/). Changes: a subset of the clips was selected.",
        'Paper: Kobayashi et al., "Motion Capture Dataset for Practical Use of AI-based Motion Editing and '
        'Stylization", arXiv:2306.08861.',
        "Whatever is derived from it (captions, renders, features) is non-commercial and must carry that notice.",
    )
)
ATTRIBUTION = f"""\
# Attribution

The motion clips in this folder are a subset of the Bandai-Namco-Research-Motiondataset.

{NOTICE}

Files: `dataset-1.tar.xz` (Bandai-Namco-Research-Motiondataset-1, licence `LICENSE-dataset-1`) and
`dataset-2.tar.xz` (Bandai-Namco-Research-Motiondataset-2, licence `LICENSE-dataset-2`): BVH clips
(30 fps, cm), their JSON labels and the `cfg/` label lists, stored unchanged.
"""


def _members(dataset_dir: Path) -> list[tuple[str, Path]]:
    """(archive name, file) of the label lists, every BVH and the JSON labels of those BVHs, sorted."""
    files = sorted((dataset_dir / "cfg").glob("*.txt"))
    for bvh in sorted((dataset_dir / "data").glob("*.bvh")):
        files.append(bvh)
        if bvh.with_suffix(".json").exists():
            files.append(bvh.with_suffix(".json"))
    return sorted((f.relative_to(dataset_dir).as_posix(), f) for f in files)


def _tar_bytes(members: list[tuple[str, Path]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, path in members:
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def build_demo_bundle(src: str | os.PathLike[str], out: str | os.PathLike[str]) -> dict[str, Any]:
    """Build the demo bundle from a Bandai-Namco copy (``src/dataset-{1,2}``) into ``out``; returns the index."""
    src, out = Path(src), Path(out)
    index: dict[str, Any] = {"archives": {}}
    for name in DATASETS:
        dataset_dir = src / name
        if not (dataset_dir / "data").is_dir() or not (dataset_dir / "LICENSE").exists():
            raise LavimoInputError(dataset_dir, "expected a Bandai-Namco dataset folder with data/, cfg/ and LICENSE")
        members = _members(dataset_dir)
        archive = out / f"{name}.tar.xz"
        with atomic_path(archive) as tmp:
            tmp.write_bytes(lzma.compress(_tar_bytes(members), preset=XZ_PRESET))
        with atomic_path(out / f"LICENSE-{name}") as tmp:
            shutil.copyfile(dataset_dir / "LICENSE", tmp)
        index["archives"][name] = {
            "file": archive.name,
            "sha256": file_sha256(archive),
            "bytes": archive.stat().st_size,
            "bvh": sum(1 for n, _ in members if n.endswith(".bvh")),
            "labels": sum(1 for n, _ in members if n.endswith(".json")),
        }
    save_text(out / "ATTRIBUTION.md", ATTRIBUTION)
    save_json(out / BUNDLE_INDEX, index)
    return index


def read_bundle_index(bundle: str | os.PathLike[str]) -> dict[str, Any]:
    """The bundle's ``bundle.json``; a clear error when the folder is not a demo bundle."""
    path = Path(bundle) / BUNDLE_INDEX
    if not path.exists():
        raise LavimoInputError(
            path, "not a demo bundle (build it with `lavimo prepare bundle-demo --src ... --out resources/demo`)"
        )
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise LavimoInputError(path, f"unreadable bundle index ({type(error).__name__}): rebuild the bundle") from error
    archives = index.get("archives") if isinstance(index, dict) else None
    if not isinstance(archives, dict) or not all(
        isinstance(e, dict) and isinstance(e.get("file"), str) and isinstance(e.get("sha256"), str)
        for e in archives.values()
    ):
        raise LavimoInputError(path, "not a bundle index: expected {'archives': {name: {file, sha256, ...}}}")
    return index


def unpack_bundle(bundle: str | os.PathLike[str], dest: str | os.PathLike[str]) -> dict[str, Path]:
    """Extract every archive of the bundle to ``dest/{dataset}`` unless already there; returns the folders.

    Safe to run from several processes at once: they take turns (a lock on ``dest``), each extracts into
    its own staging folder, and a folder is replaced as a whole (renamed into place). An extracted folder is
    kept only while its stamp holds the archive's sha256 and its file counts are those of ``bundle.json``
    and of the archive; a half-extracted or damaged one is extracted again.
    """
    bundle, dest = Path(bundle), Path(dest)
    index = read_bundle_index(bundle)["archives"]
    folders: dict[str, Path] = {}
    with folder_lock(dest, "lavimo prepare: unpacking the demo bundle"):
        for stale in dest.glob(".*.partial-*"):  # staging folders of killed runs (the lock excludes live ones)
            shutil.rmtree(stale, ignore_errors=True)
        for name, entry in index.items():
            target = dest / name
            folders[name] = target
            stamp = _read_stamp(target)
            if stamp.get("sha256") == entry["sha256"]:
                problem = count_problem(target, {**entry, **stamp})
                if problem is None:
                    continue
                log.warning("%s: %s: extracting it again", target, problem)
            archive = bundle / entry["file"]
            if not archive.exists() or file_sha256(archive) != entry["sha256"]:
                raise LavimoInputError(archive, "missing or does not match the sha256 in bundle.json")
            _extract(archive, target, entry)
    return folders


def _read_stamp(folder: Path) -> dict[str, Any]:
    """The stamp of an extracted folder: {"sha256": ..., "files": N} ("files" absent in older stamps)."""
    path = folder / STAMP
    if not path.is_file():
        return {}
    lines = path.read_text().split()
    stamp: dict[str, Any] = {"sha256": lines[0]} if lines else {}
    if len(lines) > 1 and lines[1].isdigit():
        stamp["files"] = int(lines[1])
    return stamp


def count_problem(folder: Path, expected: dict[str, Any]) -> str | None:
    """What is wrong with an extracted folder's file counts (``files``, ``bvh``, ``labels`` of ``expected``)."""
    files = [p for p in folder.rglob("*") if p.is_file() and p.name != STAMP]
    found = {
        "files": len(files),
        "bvh": sum(1 for p in files if p.parent.name == "data" and p.suffix == ".bvh"),
        "labels": sum(1 for p in files if p.parent.name == "data" and p.suffix == ".json"),
    }
    wrong = [
        f"{found[k]} {k} files, expected {expected[k]}" for k in found if k in expected and found[k] != expected[k]
    ]
    return "; ".join(wrong) or None


def _extract(archive: Path, target: Path, entry: dict[str, Any]) -> None:
    """Extract into a staging folder of this process, check the counts, stamp, then rename into place."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        with tarfile.open(archive, mode="r:xz") as tar:
            members = sum(1 for m in tar.getmembers() if m.isfile())
            try:
                tar.extractall(staging, filter="data")
            except OSError as error:  # tarfile's write error names no file: name the folder being filled
                if is_disk_full(error):
                    raise DiskFullError(target) from None
                raise
        for path in staging.rglob("*"):
            if path.is_file():
                os.utime(path)  # extraction time, so that file stamps change with the content
        problem = count_problem(staging, {**entry, "files": members})
        if problem is not None:
            raise LavimoInputError(archive, f"extracted {problem} (bundle.json, archive)")
        staging.chmod(0o755)  # mkdtemp makes it private to its owner
        (staging / STAMP).write_text(f"{entry['sha256']}\n{members}\n")
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
