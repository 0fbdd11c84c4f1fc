"""Raw AMASS (SMPL-H npz) -> the HumanML3D layout (new_joints/, new_joint_vecs/, M-prefixed mirrors).

Follows HumanML3D's ``raw_pose_processing`` + ``motion_representation``: the SMPL-H body model (smplx,
model files supplied by the user) gives the joints (first 22) at 20 fps (every k-th frame when the
capture rate is a multiple of 20, as HumanML3D does; linear resampling otherwise); axes go from AMASS's
Z up to Y up as HumanML3D maps them, (x, y, z) -> (-x, z, y), checked with an upright test; a few
sub-datasets lose their first seconds (HumanML3D's offsets); ``index.csv`` rows crop
``[start_frame:end_frame]`` (Python slice, so -1 drops the last frame, as in HumanML3D) and name the clip;
each clip and its mirror are canonicalised and featurised. HumanAct12 rows read joints from
``{amass_root}/humanact12/...npy`` as HumanML3D does. Captions (texts/) come from HumanML3D itself.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from lavimo.io import LavimoInputError, Rejection, load_npy, save_npy, write_rejections
from lavimo.layout import mirror_clip_id
from lavimo.motion.humanml3d import process_joints
from lavimo.motion.mirror import mirror_joints
from lavimo.motion.plausibility import check_duration
from lavimo.motion.resample import resample

LOG = logging.getLogger(__name__)
STAGE = "prepare"
FPS = 20
NUM_BETAS = 10
BATCH_FRAMES = 1024
INDEX_COLUMNS = ("source_path", "start_frame", "end_frame", "new_name")
# seconds HumanML3D drops from the start of these AMASS sub-datasets before cropping by index.csv
LEADING_SECONDS: dict[str, float] = {
    "Eyes_Japan_Dataset": 3.0,
    "MPI_HDM05": 3.0,
    "TotalCapture": 1.0,
    "MPI_Limits": 1.0,
    "Transitions_mocap": 0.5,
}
# AMASS world (Z up) -> HumanML3D (Y up): (x, y, z) -> (-x, z, y), a proper rotation
Z_UP_TO_Y_UP = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])


@dataclass(frozen=True)
class IndexRow:
    """One row of HumanML3D's index.csv."""

    source_path: str
    start_frame: int
    end_frame: int
    name: str


@dataclass
class AmassSummary:
    """What a conversion did."""

    rows: int = 0
    written: int = 0
    skipped: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    out: str = ""

    def line(self) -> str:
        """One summary line."""
        return (
            f"amass -> {self.out}: {self.rows} index rows, {self.written} clips written, "
            f"{self.skipped} up to date, {len(self.rejected)} rejected"
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary (the ``--marker`` file)."""
        return {"out": self.out, "rows": self.rows, "written": self.written, "skipped": self.skipped,
                "rejected": len(self.rejected)}  # fmt: skip


def read_index(path: str | os.PathLike[str]) -> list[IndexRow]:
    """Rows of index.csv (source_path, start_frame, end_frame, new_name)."""
    path = Path(path)
    if not path.exists():
        raise LavimoInputError(path, "index.csv missing (it ships with https://github.com/EricGuo5513/HumanML3D)")
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as error:  # empty, binary, ragged (pandas' errors are ValueErrors)
        detail = " ".join(str(error).split())[:80]
        raise LavimoInputError(path, f"not a readable index.csv ({type(error).__name__}: {detail})") from None
    missing = [c for c in INDEX_COLUMNS if c not in frame.columns]
    if missing:
        raise LavimoInputError(path, f"index.csv lacks columns {missing}")
    if frame.empty:
        raise LavimoInputError(path, "index.csv lists no clip")
    rows = []
    for number, r in enumerate(frame.itertuples(index=False), start=2):  # line 1 is the header
        try:
            rows.append(IndexRow(str(r.source_path), int(r.start_frame), int(r.end_frame), Path(str(r.new_name)).stem))
        except (TypeError, ValueError, OverflowError):
            frames = f"{str(r.start_frame)[:20]!r}, {str(r.end_frame)[:20]!r}"
            raise LavimoInputError(
                path, f"line {number}: start_frame/end_frame {frames} are not whole numbers"
            ) from None
    return rows


def amass_file(amass_root: Path, source_path: str) -> Path:
    """The AMASS npz (or HumanAct12 npy) behind an index.csv ``./pose_data/...npy`` path."""
    parts = PurePosixPath(source_path).parts
    rel = PurePosixPath(*parts[parts.index("pose_data") + 1 :]) if "pose_data" in parts else PurePosixPath(*parts)
    path = amass_root / rel
    return path if "humanact12" in rel.parts else path.with_suffix(".npz")


def model_file(smplh_dir: Path, gender: str) -> Path:
    """SMPL-H model of a gender: ``{gender}/model.npz`` (AMASS layout) or ``SMPLH_{GENDER}.npz/.pkl``."""
    candidates = [smplh_dir / gender / "model.npz", smplh_dir / f"SMPLH_{gender.upper()}.npz"]
    candidates.append(smplh_dir / f"SMPLH_{gender.upper()}.pkl")
    for path in candidates:
        if path.exists():
            return path
    raise LavimoInputError(
        smplh_dir,
        f"no SMPL-H {gender} model (tried {', '.join(p.name for p in candidates)}); download the extended SMPL+H "
        "model used in AMASS from https://mano.is.tue.mpg.de under its license (datasets.amass.smplh_dir)",
    )


_MODELS: dict[str, Any] = {}


def _model_arrays(path: Path) -> Any:
    """An .npz SMPL-H model's arrays, read without unpickling, as smplx's ``data_struct``.

    smplx's own loader reads .npz models with ``allow_pickle=True``; here an entry holding Python objects (which
    smplx never uses) is left out unread, so a crafted model file cannot run code.
    """
    from smplx.utils import Struct

    arrays: dict[str, np.ndarray] = {}
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise LavimoInputError(path, "not an SMPL-H model: a single .npy array, not an .npz archive")
        with data:
            for key in data.files:
                try:
                    arrays[key] = data[key]
                except ValueError as error:
                    if "Object arrays" not in str(error):
                        raise
                    LOG.debug("%s: entry %r holds Python objects: left out unread", path, key)
    except LavimoInputError:
        raise
    except (OSError, ValueError, EOFError) as error:
        raise LavimoInputError(path, f"unreadable SMPL-H model ({error})") from error
    return Struct(**arrays)


def body_model(smplh_dir: Path, gender: str) -> Any:
    """The smplx SMPL-H model of a gender (cached per process); HumanML3D uses the female one unless male."""
    import smplx

    gender = "male" if gender == "male" else "female"
    path = model_file(smplh_dir, gender)
    if str(path) not in _MODELS:
        arrays = _model_arrays(path) if path.suffix == ".npz" else None  # a .pkl model is a pickle: smplx's loader
        _MODELS[str(path)] = smplx.SMPLH(
            str(path), data_struct=arrays, gender=gender, ext=path.suffix[1:], use_pca=False, flat_hand_mean=True,
            num_betas=NUM_BETAS,
        )  # fmt: skip
    return _MODELS[str(path)]


def _field(data: Any, path: Path, *names: str) -> np.ndarray:
    for name in names:
        if name in data:
            return np.asarray(data[name])
    raise LavimoInputError(path, f"not an AMASS pose file: no {' / '.join(names)}")


def _gender(array: np.ndarray, path: Path) -> str:
    """AMASS's gender entry, one string (``str`` or ``bytes`` array), as text."""
    if array.dtype.kind not in "US" or array.size != 1:
        raise LavimoInputError(path, f"gender is not one string but a {array.dtype} array of shape {array.shape}")
    value = array.reshape(-1)[0].item()
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def load_amass(path: Path) -> dict[str, Any]:
    """poses (T, 156), trans (T, 3), betas, gender and fps of an AMASS npz.

    Read without unpickling (``allow_pickle=False``): an entry holding Python objects, which could run code, is
    refused naming the file.
    """
    if not path.exists():
        raise LavimoInputError(path, "AMASS file missing (download the SMPL+H G data from https://amass.is.tue.mpg.de)")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise LavimoInputError(path, "not an AMASS pose file: a single .npy array, not an .npz archive")
        with data:
            poses = _field(data, path, "poses").astype(np.float64)
            trans = _field(data, path, "trans").astype(np.float64)
            betas = _field(data, path, "betas").astype(np.float64).reshape(-1)
            gender = _gender(_field(data, path, "gender"), path)
            fps = float(_field(data, path, "mocap_framerate", "mocap_frame_rate"))
    except LavimoInputError:
        raise
    except ValueError as error:
        if "Object arrays" in str(error):  # pickled Python objects: unpickling them could run code
            problem = "an entry holds pickled Python objects, refused unread (AMASS entries are plain arrays)"
        elif "pickled data" in str(error):  # neither zip nor NumPy header: numpy would unpickle it
            problem = "not an .npz archive (no zip or NumPy header; a pickle?), refused unread"
        else:
            problem = f"unreadable AMASS npz ({error})"
        raise LavimoInputError(path, problem) from error
    except (OSError, EOFError, TypeError) as error:
        raise LavimoInputError(path, f"unreadable AMASS npz ({error})") from error
    if poses.ndim != 2 or poses.shape[1] < 66 or trans.shape != (len(poses), 3) or not fps > 0:
        raise LavimoInputError(path, f"bad AMASS arrays: poses {poses.shape}, trans {trans.shape}, fps {fps}")
    if not (np.isfinite(poses).all() and np.isfinite(trans).all() and np.isfinite(fps)):
        raise LavimoInputError(path, "NaN or Inf in poses/trans/fps")
    check_duration(len(poses), 1.0 / fps, str(path))  # resampled to 20 fps: a tiny fps would take gigabytes
    return {"poses": poses, "trans": trans, "betas": betas, "gender": gender, "fps": fps}


def to_20fps_frames(n_frames: int, fps: float) -> np.ndarray | None:
    """Frame indices giving 20 fps when ``fps`` is a multiple of 20 (HumanML3D's stride), else None."""
    ratio = fps / FPS
    return np.arange(0, n_frames, round(ratio)) if abs(ratio - round(ratio)) < 1e-6 and ratio >= 1 else None


def amass_joints(path: Path, smplh_dir: Path) -> np.ndarray:
    """World joints (T, 22, 3) at 20 fps, Y up, of an AMASS sequence (SMPL-H forward pass in batches)."""
    import torch

    data = load_amass(path)
    frames = to_20fps_frames(len(data["poses"]), data["fps"])
    poses = data["poses"] if frames is None else data["poses"][frames]
    trans = data["trans"] if frames is None else data["trans"][frames]
    poses = np.pad(poses, ((0, 0), (0, max(0, 156 - poses.shape[1]))))
    model = body_model(smplh_dir, data["gender"])
    betas = torch.tensor(np.pad(data["betas"], (0, max(0, NUM_BETAS - len(data["betas"]))))[:NUM_BETAS])
    chunks = []
    with torch.no_grad():
        for start in range(0, len(poses), BATCH_FRAMES):
            p = torch.tensor(poses[start : start + BATCH_FRAMES], dtype=torch.float32)
            t = torch.tensor(trans[start : start + BATCH_FRAMES], dtype=torch.float32)
            out = model(
                global_orient=p[:, :3], body_pose=p[:, 3:66], left_hand_pose=p[:, 66:111],
                right_hand_pose=p[:, 111:156], transl=t, betas=betas.float().expand(len(p), -1), return_verts=False,
            )  # fmt: skip
            chunks.append(out.joints[:, :22].double().numpy())
    joints = np.concatenate(chunks) @ Z_UP_TO_Y_UP.T
    if frames is None:
        joints = resample(joints, data["fps"], FPS)
    return check_upright(joints, path)


def check_upright(joints: np.ndarray, source: Path) -> np.ndarray:
    """Raise unless the head is above the pelvis and the pelvis above the ankles (along +Y) on average."""
    head, pelvis, ankles = joints[:, 15, 1].mean(), joints[:, 0, 1].mean(), joints[:, [7, 8], 1].mean()
    if not head > pelvis > ankles:
        raise LavimoInputError(source, "body is not upright after Z-up -> Y-up: not an AMASS (Z-up) sequence?")
    return joints


def humanact12_joints(path: Path) -> np.ndarray:
    """HumanAct12 joints (T, >=22, 3) as HumanML3D stores them (already Y up, 20 fps)."""
    if not path.exists():
        raise LavimoInputError(path, "HumanAct12 file missing (HumanML3D's pose_data/humanact12)")
    joints = load_npy(path, "HumanAct12 joints")
    if joints.ndim != 3 or joints.shape[1] < 22 or joints.shape[2] != 3:
        raise LavimoInputError(path, f"expected joints (T, >=22, 3), got {joints.shape}")
    return joints[:, :22].astype(np.float64)


def crop_row(joints: np.ndarray, row: IndexRow) -> np.ndarray:
    """HumanML3D's crop: drop the sub-dataset's leading seconds, then ``[start_frame:end_frame]``."""
    if "humanact12" in row.source_path:
        return joints
    for name, seconds in LEADING_SECONDS.items():
        if name in row.source_path:
            joints = joints[int(seconds * FPS) :]
    return joints[row.start_frame : row.end_frame]


def outputs(out: Path, name: str, mirror: bool) -> list[Path]:
    """Files a row writes."""
    names = [name, mirror_clip_id(name)] if mirror else [name]
    return [out / sub / f"{n}.npy" for n in names for sub in ("new_joints", "new_joint_vecs")]


def _up_to_date(paths: list[Path], source: Path) -> bool:
    if not source.exists() or not all(p.exists() for p in paths):
        return False
    return min(p.stat().st_mtime_ns for p in paths) >= source.stat().st_mtime_ns


def _write_clip(out: Path, name: str, world: np.ndarray, source: str) -> None:
    joints, features = process_joints(world, source=source)
    if not (np.isfinite(joints).all() and np.isfinite(features).all()):
        raise LavimoInputError(source, f"{name}: NaN or Inf after processing")
    save_npy(out / "new_joint_vecs" / f"{name}.npy", features.astype(np.float32))
    save_npy(out / "new_joints" / f"{name}.npy", joints.astype(np.float32))


def convert_source(task: tuple[Path, Path, Path, list[IndexRow], bool]) -> tuple[int, int, list[Rejection]]:
    """Worker: run one AMASS file once and write every index row cut from it; (written, skipped, rejected)."""
    amass_root, smplh_dir, out, rows, mirror = task
    source = amass_file(amass_root, rows[0].source_path)
    todo = [r for r in rows if not _up_to_date(outputs(out, r.name, mirror), source)]
    if not todo:
        return 0, len(rows), []
    try:
        world = humanact12_joints(source) if "humanact12" in source.parts else amass_joints(source, smplh_dir)
    except LavimoInputError as error:
        return 0, len(rows) - len(todo), [Rejection(r.name, STAGE, error.path, error.problem) for r in todo]
    written, rejected = 0, []
    for row in todo:
        clip = crop_row(world, row)
        try:
            if len(clip) < 2:
                raise LavimoInputError(
                    source, f"{row.name}: frames [{row.start_frame}:{row.end_frame}] hold {len(clip)}"
                )
            _write_clip(out, row.name, clip, str(source))
            if mirror:
                _write_clip(out, mirror_clip_id(row.name), mirror_joints(clip), str(source))
            written += 1
        except LavimoInputError as error:
            rejected.append(Rejection(row.name, STAGE, error.path, error.problem))
    return written, len(rows) - len(todo), rejected


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def amass_to_humanml3d(
    amass_root: str | os.PathLike[str],
    smplh_dir: str | os.PathLike[str],
    index_csv: str | os.PathLike[str],
    out: str | os.PathLike[str],
    mirror: bool = True,
    limit: int | None = None,
    workers: int = 1,
    rejected_csv: str | os.PathLike[str] | None = None,
) -> AmassSummary:
    """Convert the AMASS files named by ``index_csv`` into the HumanML3D layout under ``out``."""
    amass_root, smplh_dir, out = Path(amass_root), Path(smplh_dir), Path(out)
    if not amass_root.is_dir():
        problem = "AMASS folder not found (datasets.amass.root): put the unzipped AMASS sub-datasets (KIT/, CMU/, ...)"
        raise LavimoInputError(amass_root, f"{problem} there, from https://amass.is.tue.mpg.de under its license")
    rows = read_index(index_csv)[:limit]
    by_source: dict[str, list[IndexRow]] = defaultdict(list)
    for row in rows:
        by_source[row.source_path].append(row)
    summary = AmassSummary(rows=len(rows), out=str(out))
    tasks = []
    for group in by_source.values():
        source = amass_file(amass_root, group[0].source_path)
        if all(_up_to_date(outputs(out, r.name, mirror), source) for r in group):
            summary.skipped += len(group)  # decided here: no worker (and no torch import) for finished files
        else:
            tasks.append((amass_root, smplh_dir, out, group, mirror))
    bar = tqdm(total=len(rows), initial=summary.skipped, desc="amass -> humanml3d", unit="clip", mininterval=1.0)
    pool = None
    if workers > 1 and len(tasks) > 1:
        pool = multiprocessing.get_context("spawn").Pool(min(workers, len(tasks)), initializer=_init_worker)
    results = pool.imap_unordered(convert_source, tasks) if pool is not None else map(convert_source, tasks)
    try:
        for written, skipped, rejected in results:
            summary.written += written
            summary.skipped += skipped
            summary.rejected += rejected
            bar.update(written + skipped + len(rejected))
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
    write_rejections(rejected_csv or out / "rejected.csv", summary.rejected, STAGE)
    return summary
