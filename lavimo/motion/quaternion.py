"""Batched quaternion and 6D-rotation helpers (numpy, broadcasting over leading axes).

Quaternions are stored (w, x, y, z) with the Hamilton product; rotation matrices act on column
vectors. The continuous 6D representation ("cont6d", Zhou et al. 2019) is the first two columns of
the rotation matrix, concatenated, as in HumanML3D's ``quaternion_to_cont6d``.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-12


def qnormalize(q: np.ndarray) -> np.ndarray:
    """Scale quaternions (..., 4) to unit length."""
    q = np.asarray(q, dtype=np.float64)
    return q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), _EPS)


def qinv(q: np.ndarray) -> np.ndarray:
    """Inverse (conjugate) of unit quaternions (..., 4)."""
    q = np.asarray(q, dtype=np.float64)
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def qmul(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Hamilton product q * r of quaternions (..., 4); applying the result = apply r, then q."""
    q = np.asarray(q, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    w1, x1, y1, z1 = np.moveaxis(q, -1, 0)
    w2, x2, y2, z2 = np.moveaxis(r, -1, 0)
    return np.stack(
        (
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ),
        axis=-1,
    )


def qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors (..., 3) by unit quaternions (..., 4) (shapes broadcast)."""
    q = np.asarray(q, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    qvec = q[..., 1:]
    uv = np.cross(qvec, v)
    uuv = np.cross(qvec, uv)
    return v + 2.0 * (q[..., :1] * uv + uuv)


def qbetween(v0: np.ndarray, v1: np.ndarray) -> np.ndarray:
    """Shortest-arc unit quaternion rotating direction v0 onto direction v1 (..., 3) -> (..., 4).

    Uses (|v0||v1| + v0.v1, v0 x v1), normalised; for exactly opposite vectors the arc is undefined
    and a half turn about an axis perpendicular to v0 is returned; a zero vector gives the identity.
    """
    v0 = np.asarray(v0, dtype=np.float64)
    v1 = np.asarray(v1, dtype=np.float64)
    v0, v1 = np.broadcast_arrays(v0, v1)
    w = np.sqrt((v0**2).sum(-1) * (v1**2).sum(-1)) + (v0 * v1).sum(-1)
    q = np.concatenate([w[..., None], np.cross(v0, v1)], axis=-1)
    scale = np.sqrt((v0**2).sum(-1) * (v1**2).sum(-1))
    q[scale < _EPS] = (1.0, 0.0, 0.0, 0.0)  # a zero vector: no rotation
    opposite = (np.linalg.norm(q, axis=-1) < 1e-9 * scale) & (scale >= _EPS)
    if np.any(opposite):
        axis = np.cross(v0[opposite], np.array([1.0, 0.0, 0.0]))
        weak = np.linalg.norm(axis, axis=-1) < 1e-6 * np.linalg.norm(v0[opposite], axis=-1)
        axis[weak] = np.cross(v0[opposite][weak], np.array([0.0, 1.0, 0.0]))
        q[opposite] = np.concatenate([np.zeros((*axis.shape[:-1], 1)), axis], axis=-1)
    return qnormalize(q)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of quaternions (..., 4) (need not be unit length)."""
    q = np.asarray(q, dtype=np.float64)
    w, x, y, z = np.moveaxis(q, -1, 0)
    s = 2.0 / (q * q).sum(-1)
    m = np.stack(
        (
            1 - s * (y * y + z * z),
            s * (x * y - z * w),
            s * (x * z + y * w),
            s * (x * y + z * w),
            1 - s * (x * x + z * z),
            s * (y * z - x * w),
            s * (x * z - y * w),
            s * (y * z + x * w),
            1 - s * (x * x + y * y),
        ),
        axis=-1,
    )
    return m.reshape((*q.shape[:-1], 3, 3))


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Unit quaternions (..., 4) with w >= 0 of rotation matrices (..., 3, 3) (Shepperd's method)."""
    m = np.asarray(m, dtype=np.float64)
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # four candidate (unnormalised) quaternions; pick the numerically largest per rotation
    candidates = np.stack(
        (
            np.stack((1 + m00 + m11 + m22, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                      m[..., 1, 0] - m[..., 0, 1]), -1),
            np.stack((m[..., 2, 1] - m[..., 1, 2], 1 + m00 - m11 - m22, m[..., 0, 1] + m[..., 1, 0],
                      m[..., 0, 2] + m[..., 2, 0]), -1),
            np.stack((m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0], 1 - m00 + m11 - m22,
                      m[..., 1, 2] + m[..., 2, 1]), -1),
            np.stack((m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1],
                      1 - m00 - m11 + m22), -1),
        ),
        axis=-2,
    )  # fmt: skip
    best = np.argmax(np.stack((m00 + m11 + m22, m00, m11, m22), -1), axis=-1)
    q = np.take_along_axis(candidates, best[..., None, None], axis=-2)[..., 0, :]
    q = qnormalize(q)
    return np.where(q[..., :1] < 0, -q, q)


def quat_to_cont6d(q: np.ndarray) -> np.ndarray:
    """Continuous 6D rotation (..., 6): the rotation matrix's first and second columns."""
    m = quat_to_matrix(q)
    return np.concatenate([m[..., :, 0], m[..., :, 1]], axis=-1)


def cont6d_to_matrix(cont6d: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) from 6D rotations (..., 6) by Gram-Schmidt, as in HumanML3D."""
    cont6d = np.asarray(cont6d, dtype=np.float64)
    x = cont6d[..., 0:3]
    x = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), _EPS)
    z = np.cross(x, cont6d[..., 3:6])
    z = z / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), _EPS)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-1)


def cont6d_to_quat(cont6d: np.ndarray) -> np.ndarray:
    """Unit quaternions (..., 4) from 6D rotations (..., 6)."""
    return matrix_to_quat(cont6d_to_matrix(cont6d))


def yaw_quat(angle: np.ndarray) -> np.ndarray:
    """Quaternions (..., 4) of a rotation by ``angle`` radians about +Y."""
    angle = np.asarray(angle, dtype=np.float64)
    zeros = np.zeros_like(angle)
    return np.stack([np.cos(angle / 2), zeros, np.sin(angle / 2), zeros], axis=-1)
