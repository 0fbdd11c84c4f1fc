"""Retarget t2m joint positions onto an avatar's 22-joint rig (numpy only: runs inside Blender).

Every t2m joint j carries one global rotation R_j that moves the body segment hanging from it
(the thigh for l_hip, the foot for l_ankle, ...). The rotations come from inverse kinematics on the
source bone directions:

- one child (spines, neck, collars, knees, elbows, ankles): the *swing* that turns the parent-rotated
  rest bone onto the source bone, so the twist is carried over from the parent;
- pelvis and spine3 (three children each): the rotation that best maps the three rest child
  directions onto the source ones (Kabsch), i.e. the hip and the shoulder frames;
- hips and shoulders: the frame of the limb bone and the knee / elbow hinge axis (normal of the plane
  of the limb's two bones) once the limb is bent enough, blended with the parent-carried twist when
  it is nearly straight;
- end joints (feet, head, wrists): their parent's rotation.

Pelvis, spine1-3 and the toe joints are virtual: where they sit relative to the anatomical joints
differs between source skeletons (HumanML3D's SMPL pelvis sits ~9 cm above the hips, a Bandai-Namco
``Hips`` almost level with them; a flat Bandai foot has its ankle->toe bone pitched ~40 deg down,
HumanML3D's ~18 deg). ``retarget`` therefore re-places them per clip (``adapt=True``): the pelvis and
spine3 pivots so that their three child bones have the source's layout (chirality included), spine1
and spine2 at the source's fractions of the way up to spine3, and each toe joint so that a flat source
foot gives a flat avatar foot. Hips, knees, ankles, collars, shoulders, neck... never move. The joints
used are returned in ``Posed.rest_joints``; skinning pivots about them and re-splits the trunk weights
around the moved spine joints (:func:`lavimo.avatars.skinning.skin_weights_for`).

The root follows the source hip centre scaled by the leg length ratio (avatar / source hip->knee->ankle
length), then one vertical offset per clip puts the foot joints at their rest height on the source's
contact frames (median).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from lavimo.motion.skeleton import NUM_JOINTS, T2M_PARENTS

PARENTS = np.array(T2M_PARENTS)
CHILDREN: dict[int, tuple[int, ...]] = {
    j: tuple(c for c in range(NUM_JOINTS) if T2M_PARENTS[c] == j) for j in range(NUM_JOINTS)
}
TRIADS: dict[int, tuple[int, int, int]] = {0: (1, 2, 3), 9: (12, 13, 14)}
# hinge limbs: joint -> (child, grandchild, direction the distal bone flexes towards at rest)
HINGES: dict[int, tuple[int, int, tuple[float, float, float]]] = {
    1: (4, 7, (0.0, 0.0, -1.0)),
    2: (5, 8, (0.0, 0.0, -1.0)),
    16: (18, 20, (0.0, 0.0, 1.0)),
    17: (19, 21, (0.0, 0.0, 1.0)),
}
FOOT_JOINTS: tuple[int, int, int, int] = (7, 10, 8, 11)  # l_ankle, l_foot, r_ankle, r_foot
CONTACT_THRESHOLD = 0.002  # HumanML3D: squared displacement (m^2) per 20 fps frame
HINGE_BEND_DEG = (15.0, 30.0)  # hinge plane weight ramps from 0 to 1 between these bends

# Layout of the HumanML3D target skeleton (new_joints/012314.npy, symmetrised): the unit directions of
# the pelvis -> (l_hip, r_hip, spine1) and spine3 -> (neck, l_collar, r_collar) bones in the joint's
# local frame (x = right-to-left across, y = up towards spine1 / neck, z = x cross y = forward), and
# where spine1 and spine2 project on the line hip centre -> spine3 (fractions of its length).
HUMANML3D_PELVIS_DIRS = np.array([[0.565, -0.790, -0.235], [-0.565, -0.790, -0.235], [0.0, 1.0, 0.0]])
HUMANML3D_SPINE3_DIRS = np.array([[0.0, 1.0, 0.0], [0.511, 0.852, -0.108], [-0.511, 0.852, -0.108]])
HUMANML3D_SPINE_FRACTIONS = (0.531, 0.892)
TRIAD_FRAMES: dict[int, tuple[tuple[int, int], int]] = {0: ((1, 2), 3), 9: ((13, 14), 12)}  # across, up


class Rigged(Protocol):
    """What retargeting needs of an avatar."""

    rest_joints: np.ndarray  # (22, 3)


@dataclass
class Posed:
    """An avatar posed by a motion: per-frame global joint rotations and positions."""

    global_rotations: np.ndarray  # (T, 22, 3, 3): rest -> posed, per joint segment
    root_translation: np.ndarray  # (T, 3): posed pelvis position
    joints: np.ndarray  # (T, 22, 3): posed joint positions (m, Y up)
    rest_joints: np.ndarray  # (22, 3): pivots used (the avatar's, virtual ones adapted to the source)
    leg_ratio: float  # avatar leg length / source leg length


def normalize(v: np.ndarray) -> np.ndarray:
    """Unit vectors along the last axis (zero vectors stay zero)."""
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(norm, 1e-12)


def swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotations (..., 3, 3) turning unit vectors a onto b about their common normal (minimal rotation)."""
    a, b = np.broadcast_arrays(a, b)
    axis = np.cross(a, b)
    sin = np.linalg.norm(axis, axis=-1)
    cos = np.clip((a * b).sum(-1), -1.0, 1.0)
    # antiparallel: rotate by pi about any axis perpendicular to a
    helper = np.where(np.abs(a[..., :1]) < 0.9, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
    fallback = normalize(np.cross(a, helper))
    axis = np.where(sin[..., None] > 1e-9, axis / np.maximum(sin, 1e-12)[..., None], fallback)
    sin = np.where(sin > 1e-9, sin, 0.0)
    k = np.zeros((*a.shape, 3))
    k[..., 0, 1], k[..., 0, 2], k[..., 1, 2] = -axis[..., 2], axis[..., 1], -axis[..., 0]
    k[..., 1, 0], k[..., 2, 0], k[..., 2, 1] = axis[..., 2], -axis[..., 1], axis[..., 0]
    eye = np.broadcast_to(np.eye(3), k.shape)
    return eye + sin[..., None, None] * k + (1.0 - cos)[..., None, None] * (k @ k)


def frame(u: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Orthonormal frames (..., 3, 3) with columns u, h made orthogonal to u, and u x h."""
    u = normalize(u)
    h = normalize(h - (h * u).sum(-1, keepdims=True) * u)
    return np.stack([u, h, np.cross(u, h)], axis=-1)


def kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Rotations (..., 3, 3) that best map directions src (..., K, 3) onto dst (..., K, 3)."""
    cov = np.einsum("...ki,...kj->...ij", dst, src)
    u, _, vt = np.linalg.svd(cov)
    det = np.sign(np.linalg.det(u @ vt))
    d = np.ones(cov.shape[:-1])
    d[..., -1] = det
    return (u * d[..., None, :]) @ vt


def triad_directions(joints: np.ndarray, joint: int) -> np.ndarray:
    """Unit child bone directions (..., 3, 3) of a triad joint, in its local frame (see TRIAD_FRAMES)."""
    (left, right), up = TRIAD_FRAMES[joint]
    axes = frame(joints[..., left, :] - joints[..., right, :], joints[..., up, :] - joints[..., joint, :])
    dirs = normalize(joints[..., list(TRIADS[joint]), :] - joints[..., joint, None, :])
    return np.einsum("...ji,...kj->...ki", axes, dirs)


def _misfit(children: np.ndarray, pivot: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Residuals (3, 3) of the best rotation of the directions pivot->children onto ``directions``."""
    dirs = normalize(children - pivot)
    return dirs @ kabsch(directions, dirs) - directions


def fit_pivot(children: np.ndarray, directions: np.ndarray, init: np.ndarray, iterations: int = 60) -> np.ndarray:
    """The point near ``init`` from which three ``children`` points lie along ``directions`` (3, 3).

    ``directions`` are unit vectors in any frame (only their mutual layout, chirality included,
    matters). Damped Gauss-Newton on the Kabsch residuals plus a weak pull towards ``init``.
    """
    directions = normalize(np.asarray(directions, dtype=np.float64))
    scale = max(float(np.linalg.norm(children - init, axis=-1).mean()), 1e-3)

    def residuals(x: np.ndarray) -> np.ndarray:
        return np.concatenate([_misfit(children, x, directions).ravel(), 0.01 * (x - init) / scale])

    x, damping = np.asarray(init, dtype=np.float64).copy(), 1e-3
    for _ in range(iterations):
        r = residuals(x)
        jac = np.stack([(residuals(x + e) - residuals(x - e)) / 2e-6 for e in np.eye(3) * 1e-6], axis=1)
        step = np.linalg.solve(jac.T @ jac + damping * np.eye(3), -jac.T @ r)
        if (residuals(x + step) ** 2).sum() < (r**2).sum():
            x, damping = x + step, damping * 0.3
        else:
            damping *= 10.0
        if np.linalg.norm(step) < 1e-7 * scale:
            break
    return x


def misfit_deg(children: np.ndarray, pivot: np.ndarray, directions: np.ndarray) -> float:
    """Largest angle (deg) between the best-rotated pivot->children directions and ``directions``."""
    directions = normalize(np.asarray(directions, dtype=np.float64))
    fitted = directions + _misfit(children, pivot, directions)
    cos = np.clip((normalize(fitted) * directions).sum(-1), -1.0, 1.0)
    return float(np.degrees(np.arccos(cos)).max())


def source_layout(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Median pelvis and spine3 triad directions (local frames) and spine fractions of a motion (T, 22, 3)."""
    pelvis = normalize(np.median(triad_directions(joints, 0), axis=0))
    spine3 = normalize(np.median(triad_directions(joints, 9), axis=0))
    return pelvis, spine3, spine_fractions(joints)


def spine_fractions(joints: np.ndarray) -> tuple[float, float]:
    """Where spine1 and spine2 lie on the line hip centre -> spine3 (fractions of its length, median)."""
    joints = joints.reshape(-1, NUM_JOINTS, 3)
    hips = 0.5 * (joints[:, 1] + joints[:, 2])
    line = joints[:, 9] - hips
    length2 = np.maximum((line * line).sum(-1), 1e-12)
    f1 = ((joints[:, 3] - hips) * line).sum(-1) / length2
    f2 = ((joints[:, 6] - hips) * line).sum(-1) / length2
    return float(np.median(f1)), float(np.median(f2))


def point_on_polyline(points: np.ndarray, s: float) -> np.ndarray:
    """The point at arc length ``s`` along a polyline (extrapolated past its ends)."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=-1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    i = int(np.clip(np.searchsorted(cum, s) - 1, 0, len(seg) - 1))
    return points[i] + (s - cum[i]) / max(seg[i], 1e-12) * (points[i + 1] - points[i])


def point_at_level(points: np.ndarray, axis: np.ndarray, level: float) -> np.ndarray:
    """The point of a polyline whose projection on ``axis`` (from the first point) is ``level``."""
    levels = np.maximum.accumulate((points - points[0]) @ axis)
    i = int(np.clip(np.searchsorted(levels, level) - 1, 0, len(points) - 2))
    rise = max(float(levels[i + 1] - levels[i]), 1e-9)
    return points[i] + (level - levels[i]) / rise * (points[i + 1] - points[i])


def place_virtual_joints(
    rest: np.ndarray,
    pelvis_dirs: np.ndarray,
    spine3_dirs: np.ndarray,
    fractions: tuple[float, float],
    max_shift: float = 0.25,
    max_error_deg: float = 3.0,
) -> np.ndarray:
    """Rest joints with spine3, spine1, spine2 and the pelvis re-placed to match a skeleton layout.

    spine3 is the pivot from which neck and collars lie along ``spine3_dirs``; spine1 and spine2
    sit on the rest spine at ``fractions`` of the way hip centre->spine3 (projected on that line); the pelvis is the
    pivot from which the hips and spine1 lie along ``pelvis_dirs``. A pivot that cannot be
    matched (moves more than ``max_shift`` m or misses by more than ``max_error_deg``) is kept.
    """
    out = np.asarray(rest, dtype=np.float64).copy()
    hips = 0.5 * (out[1] + out[2])

    def fitted(joint: int, directions: np.ndarray) -> np.ndarray:
        children = out[list(TRIADS[joint])]
        pivot = fit_pivot(children, directions, out[joint])
        ok = (
            np.isfinite(pivot).all()
            and np.linalg.norm(pivot - out[joint]) <= max_shift
            and misfit_deg(children, pivot, directions) <= max_error_deg
        )
        return pivot if ok else out[joint]

    if np.isfinite(spine3_dirs).all():
        out[9] = fitted(9, spine3_dirs)
    spine = np.stack([hips, rest[3], rest[6], rest[9], rest[12]])
    axis = normalize(out[9] - hips)
    for joint, fraction in ((3, fractions[0]), (6, fractions[1])):
        out[joint] = point_at_level(spine, axis, fraction * float(np.linalg.norm(out[9] - hips)))
    if np.isfinite(pelvis_dirs).all():
        out[0] = fitted(0, pelvis_dirs)
    return out


def flat_foot_pitch(source: np.ndarray, ankle: int, toe: int) -> float | None:
    """Median pitch (deg, negative = toe below ankle) of the ankle->toe bone while both are in contact."""
    contacts = foot_contacts(source)
    both = contacts[:, FOOT_JOINTS.index(ankle)] & contacts[:, FOOT_JOINTS.index(toe)]
    if both.sum() < 3:
        return None
    bone = source[both, toe] - source[both, ankle]
    return float(np.degrees(np.median(np.arctan2(bone[:, 1], np.linalg.norm(bone[:, [0, 2]], axis=-1)))))


def place_foot(rest: np.ndarray, ankle: int, toe: int, pitch_deg: float) -> np.ndarray:
    """The toe joint moved along the avatar's foot so that ankle->toe has ``pitch_deg`` when the foot is flat.

    It keeps its height above the floor while its reach stays within 0.3..1.5 of the rest reach;
    a pitch shallower than 3 deg keeps the rest toe joint.
    """
    bone = rest[toe] - rest[ankle]
    reach = float(np.linalg.norm(bone[[0, 2]]))
    slope = np.tan(np.radians(-pitch_deg))
    if slope < np.tan(np.radians(3.0)) or reach < 1e-6:
        return rest[toe].copy()
    new_reach = float(np.clip((rest[ankle, 1] - rest[toe, 1]) / slope, 0.3 * reach, 1.5 * reach))
    horizontal = np.array([bone[0], 0.0, bone[2]]) / reach
    return rest[ankle] + new_reach * horizontal - np.array([0.0, new_reach * slope, 0.0])


def adapt_rest_joints(rest: np.ndarray, source: np.ndarray) -> np.ndarray:
    """The avatar's rest joints with its virtual joints matched to the layout of a source motion.

    Pelvis, spine1..3 (see :func:`place_virtual_joints`) and the toe joints (a flat source foot maps
    onto the avatar's flat foot; the toe joints carry no skin weight of their own).
    """
    pelvis, spine3, fractions = source_layout(source)
    if not (0.05 < fractions[0] < fractions[1] < 0.98):
        fractions = HUMANML3D_SPINE_FRACTIONS
    out = place_virtual_joints(rest, pelvis, spine3, fractions)
    for ankle, toe in ((7, 10), (8, 11)):
        pitch = flat_foot_pitch(source, ankle, toe)
        if pitch is not None:
            out[toe] = place_foot(out, ankle, toe, pitch)
    return out


def bone_directions(joints: np.ndarray) -> np.ndarray:
    """Unit bone vectors (..., 22, 3): entry j is parent(j) -> j (entry 0 is zero)."""
    d = np.zeros_like(joints, dtype=np.float64)
    d[..., 1:, :] = normalize(joints[..., 1:, :] - joints[..., PARENTS[1:], :])
    return d


def _hinge_rotation(
    parent_rot: np.ndarray, rest_dirs: np.ndarray, src_dirs: np.ndarray, hinge: tuple[int, int, tuple]
) -> np.ndarray:
    """Rotation of a hip / shoulder: limb bone exact, twist from the knee / elbow plane when bent."""
    child, grandchild, flex = hinge
    axis_rest = normalize(np.cross(rest_dirs[child], np.asarray(flex)))
    u = src_dirs[:, child]
    normal = np.cross(u, src_dirs[:, grandchild])
    bend = np.degrees(np.arctan2(np.linalg.norm(normal, axis=-1), (u * src_dirs[:, grandchild]).sum(-1)))
    lo, hi = HINGE_BEND_DEG
    w = np.clip((bend - lo) / (hi - lo), 0.0, 1.0)[:, None]
    carried = parent_rot @ axis_rest
    carried = carried - (carried * u).sum(-1, keepdims=True) * u
    axis = w * normalize(normal) + (1.0 - w) * normalize(carried)
    axis = np.where(np.linalg.norm(axis, axis=-1, keepdims=True) > 1e-3, axis, carried)
    return frame(u, axis) @ frame(rest_dirs[child], axis_rest).T


def solve_rotations(rest: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Global rotations (T, 22, 3, 3) that pose the rest skeleton along the source bone directions."""
    rest_dirs = bone_directions(rest)
    src_dirs = bone_directions(source)
    n = len(source)
    rot = np.empty((n, NUM_JOINTS, 3, 3))
    for j in range(NUM_JOINTS):
        parent_rot = np.broadcast_to(np.eye(3), (n, 3, 3)) if PARENTS[j] < 0 else rot[:, PARENTS[j]]
        children = CHILDREN[j]
        if j in TRIADS:
            rot[:, j] = kabsch(rest_dirs[list(children)], src_dirs[:, list(children)])
        elif j in HINGES:
            rot[:, j] = _hinge_rotation(parent_rot, rest_dirs, src_dirs, HINGES[j])
        elif not children:
            rot[:, j] = parent_rot
        else:
            carried = parent_rot @ rest_dirs[children[0]]
            rot[:, j] = swing(carried, src_dirs[:, children[0]]) @ parent_rot
    return rot


def forward_kinematics(rest: np.ndarray, rotations: np.ndarray, root: np.ndarray) -> np.ndarray:
    """Joint positions (T, 22, 3): root, then each joint = parent + R_parent (rest offset)."""
    joints = np.empty((*rotations.shape[:2], 3))
    joints[:, 0] = root
    for j in range(1, NUM_JOINTS):
        p = PARENTS[j]
        joints[:, j] = joints[:, p] + rotations[:, p] @ (rest[j] - rest[p])
    return joints


def foot_contacts(joints: np.ndarray, threshold: float = CONTACT_THRESHOLD) -> np.ndarray:
    """Contacts (T, 4) of l_ankle, l_foot, r_ankle, r_foot as in HumanML3D (20 fps squared speed)."""
    feet = joints[:, list(FOOT_JOINTS)]
    speed2 = ((feet[1:] - feet[:-1]) ** 2).sum(-1)
    contact = speed2 < threshold
    return np.concatenate([contact, contact[-1:]], axis=0) if len(contact) else np.zeros((len(joints), 4), bool)


def leg_length(joints: np.ndarray) -> float:
    """Mean hip->knee->ankle length of both legs (median over frames)."""
    joints = joints.reshape(-1, NUM_JOINTS, 3)
    bones = [(1, 4), (4, 7), (2, 5), (5, 8)]
    lengths = sum(np.linalg.norm(joints[:, a] - joints[:, b], axis=-1) for a, b in bones)
    return float(np.median(lengths)) / 2.0


def floor_offset(rest: np.ndarray, posed: np.ndarray, contacts: np.ndarray) -> float:
    """Vertical shift putting the feet at their rest height on contact frames (median)."""
    lift = rest[list(FOOT_JOINTS), 1] - posed[:, list(FOOT_JOINTS), 1]
    if contacts.any():
        return float(np.median(lift[contacts]))
    return float(lift.max())  # no contact (a jump?): the lowest foot touches the floor once


def retarget(avatar: Rigged, joints: np.ndarray, adapt: bool = True) -> Posed:
    """Pose ``avatar`` along a t2m motion ``joints`` (T, 22, 3) in metres, Y up, floor at y=0."""
    source = np.asarray(joints, dtype=np.float64)
    if source.ndim != 3 or source.shape[1:] != (NUM_JOINTS, 3) or len(source) < 1:
        raise ValueError(f"expected joints of shape (T, {NUM_JOINTS}, 3), got {source.shape}")
    rest = np.asarray(avatar.rest_joints, dtype=np.float64)
    if adapt:
        rest = adapt_rest_joints(rest, source)
    rotations = solve_rotations(rest, source)
    ratio = leg_length(rest) / max(leg_length(source), 1e-6)
    hips_rest = 0.5 * (rest[1] + rest[2])
    hips_src = 0.5 * (source[:, 1] + source[:, 2])
    root = ratio * hips_src - rotations[:, 0] @ (hips_rest - rest[0])
    posed = forward_kinematics(rest, rotations, root)
    posed[..., 1] += floor_offset(rest, posed, foot_contacts(source))
    return Posed(
        global_rotations=rotations, root_translation=posed[:, 0].copy(), joints=posed, rest_joints=rest, leg_ratio=ratio
    )


def bone_errors_deg(source: np.ndarray, posed: np.ndarray) -> np.ndarray:
    """Angles (T, 21) in degrees between the source and the posed bone directions."""
    a, b = bone_directions(source)[:, 1:], bone_directions(posed)[:, 1:]
    return np.degrees(np.arccos(np.clip((a * b).sum(-1), -1.0, 1.0)))


def contact_heights(source: np.ndarray, posed: Posed) -> np.ndarray:
    """Posed foot joint height minus its rest height, on the source's contact frames (flat array, m)."""
    contacts = foot_contacts(np.asarray(source, dtype=np.float64))
    lift = posed.joints[:, list(FOOT_JOINTS), 1] - posed.rest_joints[list(FOOT_JOINTS), 1]
    return lift[contacts]
