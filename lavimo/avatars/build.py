"""Build the 13 avatar files and load them (numpy only at import: the Blender process loads avatars).

``{out_dir}/{00..12}.npz`` (written atomically), arrays:

| key            | shape / dtype     | meaning                                                        |
|----------------|-------------------|----------------------------------------------------------------|
| vertices       | (V, 3) float32    | rest mesh, metres, Y up, facing +Z, +X = body's left, floor y=0 |
| faces          | (F, 3) int32      | triangles, counter-clockwise seen from outside                 |
| skin_weights   | (V, 22) float32   | linear blend weights on the t2m joints, rows sum to 1          |
| rest_joints    | (22, 3) float32   | t2m joints in rest pose (pelvis/spine at the HumanML3D layout)  |
| vertex_region  | (V,) int16        | material region of each vertex (index into region_names)       |
| region_colors  | (R, 3) float32    | linear RGB in [0, 1] per region                                |
| region_names   | (R,) str          | REGION_NAMES: skin hair shirt trousers shoes eye_white iris mouth |
| preset         | () str            | JSON: the preset, backend, source model, V, F, height          |

The rest mesh's lowest point is on the floor (y = 0) and its pelvis joint on the vertical axis (x = z = 0).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from lavimo.avatars.body import Avatar, Body
from lavimo.avatars.presets import FIXED_COLORS, PRESETS, REGION_NAMES
from lavimo.io import LavimoInputError, save_npz
from lavimo.motion.skeleton import NUM_JOINTS, T2M_PARENTS

log = logging.getLogger(__name__)

BACKENDS = ("anny", "smpl")
WAIST_ABOVE_HIPS = 0.07  # trousers end this fraction of the stature above the hip joints
AVATAR_KEYS = (
    "vertices",
    "faces",
    "skin_weights",
    "rest_joints",
    "vertex_region",
    "region_colors",
    "region_names",
    "preset",
)


def srgb_to_linear(hex_color: str) -> np.ndarray:
    """'#rrggbb' (sRGB) -> linear RGB (3,) in [0, 1]."""
    c = np.array([int(hex_color.lstrip("#")[i : i + 2], 16) / 255.0 for i in (0, 2, 4)])
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def region_colors(preset: dict[str, Any]) -> np.ndarray:
    """Linear RGB (R, 3) of the preset's regions in REGION_NAMES order."""
    colors = {**FIXED_COLORS, **preset["colors"]}
    return np.stack([srgb_to_linear(colors[name]) for name in REGION_NAMES]).astype(np.float32)


def _along(vertices: np.ndarray, joints: np.ndarray, joint: int, child: int) -> np.ndarray:
    """Fraction (V,) of the way joint -> child of each vertex's projection on that bone."""
    bone = joints[child] - joints[joint]
    return (vertices - joints[joint]) @ bone / max(float(bone @ bone), 1e-12)


def _hair_mask(vertices: np.ndarray, joints: np.ndarray, dominant: np.ndarray, style: str) -> np.ndarray:
    """Scalp vertices covered by hair: above a hairline that runs from the forehead down to the nape."""
    if style == "none":
        return np.zeros(len(vertices), dtype=bool)
    head = dominant == 15
    if not head.any():
        return np.zeros(len(vertices), dtype=bool)
    top = vertices[head, 1].max()
    base = joints[15]
    dz = vertices[:, 2] - base[2]
    front, back = np.percentile(dz[head], 98), np.percentile(dz[head], 2)
    u = np.clip((dz - back) / max(front - back, 1e-6), 0.0, 1.0)  # 0 back .. 1 face
    forehead = base[1] + 0.62 * (top - base[1])
    nape = base[1] - (0.09 if style == "long" else 0.0) * (top - base[1]) / 0.15
    hairline = nape + (forehead - nape) * np.clip(u / 0.75, 0.0, 1.0) ** 2
    near = np.isin(dominant, (12, 15)) if style == "long" else head
    return near & (vertices[:, 1] > hairline)


def assign_regions(body: Body, preset: dict[str, Any]) -> np.ndarray:
    """Material region (V,) per vertex from the dominant joint, the limb fraction and the preset's clothes."""
    v, j = body.vertices, body.rest_joints
    dominant = body.skin_weights.argmax(1)
    region = np.zeros(len(v), dtype=np.int16)
    index = {name: i for i, name in enumerate(REGION_NAMES)}

    def paint(mask: np.ndarray, name: str) -> None:
        region[mask] = index[name]

    def limb(joints: tuple[int, int], child: tuple[int, int], upto: float) -> np.ndarray:
        return np.any([(dominant == a) & (_along(v, j, a, c) < upto) for a, c in zip(joints, child, strict=True)], 0)

    waist = 0.5 * (j[1, 1] + j[2, 1]) + WAIST_ABOVE_HIPS * v[:, 1].max()
    torso = np.isin(dominant, (0, 3, 6, 9, 13, 14)) | ((dominant == 12) & (v[:, 1] < j[12, 1] - 0.02))
    if preset["sleeves"] == "none":
        torso &= ~(np.isin(dominant, (13, 14)) & (np.abs(v[:, 0]) > 0.6 * np.abs(j[16, 0])))
    paint(torso & (v[:, 1] >= waist), "shirt")
    sleeve = {"none": 0.0, "short": 0.45, "long": 2.0}[preset["sleeves"]]
    paint(limb((16, 17), (18, 19), sleeve), "shirt")
    if preset["sleeves"] == "long":
        paint(limb((18, 19), (20, 21), 0.9), "shirt")
    legs_long = preset["legwear"] == "long"
    paint(torso & (v[:, 1] < waist), "trousers")
    paint(limb((1, 2), (4, 5), 2.0 if legs_long else 0.7), "trousers")
    if legs_long:
        paint(np.isin(dominant, (4, 5, 7, 8)), "trousers")
    ankle = 0.5 * (j[7, 1] + j[8, 1])
    paint(np.isin(dominant, (4, 5, 7, 8, 10, 11)) & (v[:, 1] < 1.35 * ankle), "shoes")
    paint(_hair_mask(v, j, dominant, preset["hair_style"]), "hair")
    for name, mask in body.parts.items():
        paint(mask, name)
    return region


def finalize(body: Body) -> Body:
    """Put the lowest vertex on the floor and the pelvis on the vertical axis."""
    shift = np.array([-body.rest_joints[0, 0], -body.vertices[:, 1].min(), -body.rest_joints[0, 2]])
    return Body(
        vertices=body.vertices + shift,
        faces=body.faces,
        skin_weights=body.skin_weights,
        rest_joints=body.rest_joints + shift,
        parts=body.parts,
        source=body.source,
    )


def avatar_arrays(body: Body, preset: dict[str, Any], backend: str, index: int) -> dict[str, np.ndarray]:
    """The arrays of one avatar file."""
    body = finalize(body)
    weights = np.clip(body.skin_weights, 0.0, None)
    weights = weights / weights.sum(1, keepdims=True)
    meta = {
        "index": index,
        "backend": backend,
        **preset,
        "source": body.source,
        "num_vertices": len(body.vertices),
        "num_faces": len(body.faces),
        "height_m": round(float(body.vertices[:, 1].max()), 4),
    }
    return {
        "vertices": body.vertices.astype(np.float32),
        "faces": body.faces.astype(np.int32),
        "skin_weights": weights.astype(np.float32),
        "rest_joints": body.rest_joints.astype(np.float32),
        "vertex_region": assign_regions(body, preset),
        "region_colors": region_colors(preset),
        "region_names": np.array(REGION_NAMES),
        "preset": np.array(json.dumps(meta)),
    }


def build_bodies(backend: str, smpl_model_dir: str | os.PathLike[str] | None = None) -> list[Body]:
    """Rest bodies of the 13 presets from ``backend``."""
    if backend == "anny":
        from lavimo.avatars.anny_backend import anny_bodies

        return anny_bodies(PRESETS)
    if backend == "smpl":
        if smpl_model_dir is None:
            raise LavimoInputError("--smpl-model-dir", "the smpl backend needs a directory of SMPL/SMPL-X model files")
        from lavimo.avatars.smpl_backend import smpl_bodies

        return smpl_bodies(PRESETS, smpl_model_dir)
    raise LavimoInputError(backend, f"unknown avatar backend (choose from {', '.join(BACKENDS)})")


def build_avatars(
    backend: str, out_dir: str | os.PathLike[str], smpl_model_dir: str | os.PathLike[str] | None = None
) -> list[Path]:
    """Write ``{out_dir}/{00..12}.npz`` for ``backend`` (anny | smpl); return their paths."""
    paths = []
    for index, (body, preset) in enumerate(zip(build_bodies(backend, smpl_model_dir), PRESETS, strict=True)):
        path = Path(out_dir) / f"{index:02d}.npz"
        save_npz(path, avatar_arrays(body, preset, backend, index))
        log.info("%s: %s, %d vertices, %d faces", path, preset["name"], len(body.vertices), len(body.faces))
        paths.append(path)
    return paths


def load_avatar(path: str | os.PathLike[str]) -> Avatar:
    """Read and check one avatar file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in AVATAR_KEYS}
    except (OSError, ValueError, KeyError) as error:
        raise LavimoInputError(path, f"not an avatar file ({error})") from error
    avatar = Avatar(
        vertices=arrays["vertices"],
        faces=arrays["faces"],
        skin_weights=arrays["skin_weights"],
        rest_joints=arrays["rest_joints"],
        vertex_region=arrays["vertex_region"],
        region_colors=arrays["region_colors"],
        region_names=tuple(str(n) for n in arrays["region_names"]),
        preset=json.loads(str(arrays["preset"])),
    )
    check_avatar(avatar, path)
    return avatar


def check_avatar(avatar: Avatar, path: str | os.PathLike[str] = "<avatar>") -> None:
    """Raise LavimoInputError when shapes or values are inconsistent."""
    n = len(avatar.vertices)
    problems = []
    if avatar.vertices.shape != (n, 3) or avatar.skin_weights.shape != (n, NUM_JOINTS):
        problems.append(f"vertices {avatar.vertices.shape} / skin_weights {avatar.skin_weights.shape} mismatch")
    if avatar.faces.ndim != 2 or avatar.faces.shape[1] != 3 or avatar.faces.min() < 0 or avatar.faces.max() >= n:
        problems.append("faces must be (F, 3) indices into the vertices")
    if avatar.rest_joints.shape != (NUM_JOINTS, 3):
        problems.append(f"rest_joints has shape {avatar.rest_joints.shape}")
    if avatar.vertex_region.shape != (n,) or avatar.vertex_region.max() >= len(avatar.region_names):
        problems.append("vertex_region must index region_names")
    if avatar.region_colors.shape != (len(avatar.region_names), 3):
        problems.append("region_colors must be (R, 3)")
    if not np.allclose(avatar.skin_weights.sum(1), 1.0, atol=1e-3):
        problems.append("skin weight rows must sum to 1")
    if problems:
        raise LavimoInputError(path, "; ".join(problems))


def bone_lengths(avatar: Avatar) -> np.ndarray:
    """Rest bone lengths (22,) parent(j) -> j (0 for the root)."""
    parents = np.array(T2M_PARENTS)
    lengths = np.zeros(NUM_JOINTS)
    lengths[1:] = np.linalg.norm(avatar.rest_joints[1:] - avatar.rest_joints[parents[1:]], axis=-1)
    return lengths
