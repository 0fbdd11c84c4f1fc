"""A lighter render mesh for an avatar: quadric edge collapses (numpy + fast-simplification).

Software OpenGL spends most of a Workbench frame on the avatar's triangles (extracting the mesh and
shading its vertices), about linearly in their number. Each vertex of the simplified mesh stands for the
cluster of original vertices collapsed into it: it takes the cluster's mean skin weights and the body region
most of the cluster has, so the simplified avatar poses and is coloured like the full one.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lavimo.avatars.body import Avatar


def simplified_mesh(vertices: np.ndarray, faces: np.ndarray, keep: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertices (K, 3), faces (F', 3), cluster (V,): new vertex of each original one) of the mesh reduced to
    about ``keep`` of its triangles. Deterministic."""
    import fast_simplification

    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if not 0.0 < keep < 1.0:
        raise ValueError(f"keep must be a fraction of the triangles in (0, 1), got {keep}")
    _, _, collapses = fast_simplification.simplify(vertices, faces, target_reduction=1.0 - keep, return_collapses=True)
    new_vertices, new_faces, cluster = fast_simplification.replay_simplification(vertices, faces, collapses)
    return np.asarray(new_vertices), np.asarray(new_faces, dtype=np.int64), np.asarray(cluster, dtype=np.int64)


def simplify_avatar(avatar: Avatar, keep: float) -> Avatar:
    """``avatar`` with about ``keep`` of its triangles (``keep`` >= 1: the avatar itself); rig and colours unchanged."""
    if keep >= 1.0:
        return avatar
    new_vertices, faces, cluster = simplified_mesh(avatar.vertices, avatar.faces, keep)
    count = len(new_vertices)
    sizes = np.bincount(cluster, minlength=count).astype(np.float64)
    weights = np.zeros((count, avatar.skin_weights.shape[1]))
    np.add.at(weights, cluster, avatar.skin_weights)
    weights /= sizes[:, None]
    regions = np.asarray(avatar.vertex_region)
    votes = np.zeros((count, int(regions.max()) + 1), np.int64)
    np.add.at(votes, (cluster, regions), 1)
    return dataclasses.replace(
        avatar,
        vertices=new_vertices.astype(np.asarray(avatar.vertices).dtype),
        faces=faces.astype(np.asarray(avatar.faces).dtype),
        skin_weights=weights.astype(np.asarray(avatar.skin_weights).dtype),
        vertex_region=votes.argmax(axis=1).astype(regions.dtype),
    )
