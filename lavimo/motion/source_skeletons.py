"""Map source mocap skeletons onto the 22-joint t2m order, in metres, Y up, +X the body's left.

Every t2m joint is a weighted blend of source joints (weights sum to 1). Only the *directions*
of the resulting bones matter downstream: the HumanML3D pipeline retargets them onto the uniform
target skeleton, so a joint the source lacks is interpolated along the source chain that carries
the same bone, which keeps that bone's direction.

Bandai-Namco ("bandai_namco", Bandai-Namco-Research-Motiondataset-1/-2; every joint has 6 channels,
30 fps, centimetres, Y up, right-handed: a character facing +Z has its left at +X, as in t2m):

| t2m joint        | source                              | note                                         |
|------------------|-------------------------------------|----------------------------------------------|
| pelvis           | Hips                                | joint_Root (ground anchor) is not used       |
| l_hip, r_hip     | UpperLeg_L, UpperLeg_R              |                                              |
| l_knee, r_knee   | LowerLeg_L, LowerLeg_R              |                                              |
| l_ankle, r_ankle | Foot_L, Foot_R                      |                                              |
| l_foot, r_foot   | Toes_L, Toes_R                      |                                              |
| spine1           | Spine                               |                                              |
| spine2           | 0.5 Spine + 0.5 Chest               | missing: midpoint of the Spine->Chest bone   |
| spine3           | Chest                               | collars hang off it, as in SMPL              |
| neck, head       | Neck, Head                          | Head is the skull base (its End Site is 0)   |
| l_collar         | Shoulder_L                          | the clavicle root; likewise on the right     |
| l_shoulder       | UpperArm_L                          |                                              |
| l_elbow, l_wrist | LowerArm_L, Hand_L                  | likewise on the right                        |

Bandai-Namco details: the Hips' position channels carry the world translation (its OFFSET, e.g.
z = -452, is meaningless and replaced); joint_Root is the parent, at the origin except in four short
dataset-1 clips where it holds a constant z shift. Bone offsets run along each joint's local X (the
rest pose is no T-pose); the frame-0 rotations stand the body up. Left/right, up and units were
verified on all 454 clips (walk goes forward, walk-back backward, raise-up-left-hand raises the +X
hand, ankle->toe and knee directions agree with the facing).

CMU MotionBuilder-friendly BVH ("cmu", 31 joints as in the cgspeed conversion; Y up, right-handed,
units of the ASF files: 1 unit = 1/0.45 inch = 0.056444 m, detected from the skeleton size):

| t2m joint        | source                              | note                                         |
|------------------|-------------------------------------|----------------------------------------------|
| pelvis           | Hips                                | LowerBack / L-RHipJoint sit on Hips (0 offset) |
| l_hip .. l_foot  | LeftUpLeg, LeftLeg, LeftFoot, LeftToeBase | likewise on the right                  |
| spine1           | Spine                               |                                              |
| spine2           | 0.7 Spine + 0.3 Spine1              | missing: on the Spine->Spine1 bone           |
| spine3           | 0.4 Spine + 0.6 Spine1              | missing: Spine1 is the thorax top (neck base), |
|                  |                                     | higher than SMPL's spine3                    |
| neck, head       | Neck1, Head                         | Neck sits on Spine1 (0 offset)               |
| l_collar         | 0.65 LeftShoulder + 0.35 LeftArm    | LeftShoulder sits on Spine1: move the collar |
|                  |                                     | out along the clavicle, as SMPL's collar     |
| l_shoulder       | LeftArm                             |                                              |
| l_elbow, l_wrist | LeftForeArm, LeftHand               | fingers/thumb unused; likewise on the right  |

Names match case-insensitively after dropping a namespace prefix (``mixamorig:Hips`` -> ``hips``).
Units: an explicit ``unit_scale`` (metres per file unit) wins; otherwise the skeleton's leg + trunk
length is compared with the t2m target's (1.58 m) and the nearest of metre, centimetre, millimetre,
inch and CMU unit is taken. Up axis: the signed world axis closest to the mean ankle->head direction
is rotated (a proper rotation, never a reflection) onto +Y. Handedness cannot be detected that way,
so it is checked: the facing direction (right-left across x up) must agree with the way knees and toes point;
a mirrored skeleton is rejected rather than silently mirrored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from lavimo.io import LavimoInputError
from lavimo.motion.bvh import BvhMotion, forward_kinematics
from lavimo.motion.skeleton import NUM_JOINTS, T2M_JOINT_NAMES, T2M_TARGET_BONE_LENGTHS

Blend = tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class SourceSkeleton:
    """How one source skeleton maps onto the t2m joints."""

    name: str
    blends: dict[str, Blend]  # t2m joint name -> weighted source joints (normalised names)

    def required(self) -> set[str]:
        """Source joint names (normalised) the mapping needs."""
        return {name for blend in self.blends.values() for name, _ in blend}


def _one(name: str) -> Blend:
    return ((name, 1.0),)


def _lerp(a: str, b: str, t: float) -> Blend:
    return ((a, 1.0 - t), (b, t))


def _sided(left: dict[str, Blend], swap: tuple[tuple[str, str], ...]) -> dict[str, Blend]:
    """Add the right side to left-side blends by renaming ``swap`` pairs in joint and source names."""
    right: dict[str, Blend] = {}
    for joint, blend in left.items():
        renamed = []
        for name, weight in blend:
            for old, new in swap:
                name = name.replace(old, new)
            renamed.append((name, weight))
        right[joint.replace("l_", "r_")] = tuple(renamed)
    return {**left, **right}


BANDAI_NAMCO = SourceSkeleton(
    name="bandai_namco",
    blends={
        "pelvis": _one("hips"),
        "spine1": _one("spine"),
        "spine2": _lerp("spine", "chest", 0.5),
        "spine3": _one("chest"),
        "neck": _one("neck"),
        "head": _one("head"),
        **_sided(
            {
                "l_hip": _one("upperleg_l"),
                "l_knee": _one("lowerleg_l"),
                "l_ankle": _one("foot_l"),
                "l_foot": _one("toes_l"),
                "l_collar": _one("shoulder_l"),
                "l_shoulder": _one("upperarm_l"),
                "l_elbow": _one("lowerarm_l"),
                "l_wrist": _one("hand_l"),
            },
            (("_l", "_r"),),
        ),
    },
)

CMU = SourceSkeleton(
    name="cmu",
    blends={
        "pelvis": _one("hips"),
        "spine1": _one("spine"),
        "spine2": _lerp("spine", "spine1", 0.3),
        "spine3": _lerp("spine", "spine1", 0.6),
        "neck": _one("neck1"),
        "head": _one("head"),
        **_sided(
            {
                "l_hip": _one("leftupleg"),
                "l_knee": _one("leftleg"),
                "l_ankle": _one("leftfoot"),
                "l_foot": _one("lefttoebase"),
                "l_collar": _lerp("leftshoulder", "leftarm", 0.35),
                "l_shoulder": _one("leftarm"),
                "l_elbow": _one("leftforearm"),
                "l_wrist": _one("lefthand"),
            },
            (("left", "right"),),
        ),
    },
)

SKELETONS: dict[str, SourceSkeleton] = {s.name: s for s in (BANDAI_NAMCO, CMU)}

# metres per file unit of the units BVH files come in
UNIT_SCALES: dict[str, float] = {"m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254, "cmu": 0.0254 / 0.45}
# leg (hip-knee-ankle) + trunk (pelvis-spine1-spine2-spine3-neck-head) length of the t2m target
_LEG_TRUNK = (0, 1, 4, 7), (0, 3, 6, 9, 12, 15)
_TARGET_SIZE = float(sum(T2M_TARGET_BONE_LENGTHS[list(chain[1:])].sum() for chain in _LEG_TRUNK))


def normalise_name(name: str) -> str:
    """Joint name for matching: namespace prefix dropped, lower case."""
    return name.rsplit(":", 1)[-1].strip().lower()


def detect_skeleton(motion: BvhMotion) -> SourceSkeleton:
    """The known skeleton whose joints the file has; LavimoInputError listing the names otherwise."""
    names = {normalise_name(n) for n in motion.joint_names}
    for skeleton in SKELETONS.values():
        if skeleton.required() <= names:
            return skeleton
    shown = [n if len(n) <= 32 else n[:29] + "..." for n in motion.joint_names[:24]]  # a corrupt file: cut short
    more = f" ... ({len(motion.joint_names)} in all)" if len(motion.joint_names) > len(shown) else ""
    raise LavimoInputError(
        motion.path, f"unknown skeleton (known: {', '.join(SKELETONS)}); its joints are: {', '.join(shown)}{more}"
    )


def blend_matrix(joint_names: tuple[str, ...], skeleton: SourceSkeleton, path: str = "") -> np.ndarray:
    """(22, J) weights: t2m joints = weights @ source joints."""
    index = {normalise_name(n): j for j, n in enumerate(joint_names)}
    missing = sorted(skeleton.required() - index.keys())
    if missing:
        raise LavimoInputError(path, f"skeleton {skeleton.name!r} needs joints missing from the file: {missing}")
    weights = np.zeros((NUM_JOINTS, len(joint_names)))
    for k, joint in enumerate(T2M_JOINT_NAMES):
        for name, weight in skeleton.blends[joint]:
            weights[k, index[name]] += weight
    return weights


def apply_blend(weights: np.ndarray, world: np.ndarray) -> np.ndarray:
    """(K, J) weights applied to (T, J, 3) positions -> (T, K, 3), as one matrix product."""
    n_frames, n_joints, _ = world.shape
    flat = world.transpose(1, 0, 2).reshape(n_joints, n_frames * 3)
    return (weights @ flat).reshape(-1, n_frames, 3).transpose(1, 0, 2)


def skeleton_size(joints: np.ndarray) -> float:
    """Median over frames of the left leg + trunk length of t2m joints (T, 22, 3), in their units."""
    total = np.zeros(joints.shape[0])
    for chain in _LEG_TRUNK:
        total += np.linalg.norm(np.diff(joints[:, list(chain)], axis=1), axis=-1).sum(axis=1)
    return float(np.median(total))


def detect_unit_scale(joints: np.ndarray, path: str = "") -> float:
    """Metres per unit of t2m joints (T, 22, 3) in file units: the known unit nearest the human size."""
    size = skeleton_size(joints)
    if not np.isfinite(size) or size <= 0:
        raise LavimoInputError(path, "degenerate skeleton (zero size): cannot detect its units")
    scales = np.array(list(UNIT_SCALES.values()))
    return float(scales[np.argmin(np.abs(np.log(size * scales / _TARGET_SIZE)))])


def up_rotation(joints: np.ndarray) -> np.ndarray:
    """Proper rotation (3, 3) taking the signed axis nearest the mean ankle->head direction onto +Y."""
    up = (joints[:, 15] - 0.5 * (joints[:, 7] + joints[:, 8])).mean(axis=0)
    axis = int(np.argmax(np.abs(up)))
    sign = float(np.sign(up[axis])) or 1.0
    rotations = {  # rows: new x, y, z in terms of old axes
        (0, 1.0): [[0, -1, 0], [1, 0, 0], [0, 0, 1]],
        (0, -1.0): [[0, 1, 0], [-1, 0, 0], [0, 0, 1]],
        (1, 1.0): [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
        (1, -1.0): [[1, 0, 0], [0, -1, 0], [0, 0, -1]],
        (2, 1.0): [[1, 0, 0], [0, 0, 1], [0, -1, 0]],
        (2, -1.0): [[1, 0, 0], [0, 0, -1], [0, 1, 0]],
    }
    return np.array(rotations[(axis, sign)], dtype=np.float64)


def facing_agreement(joints: np.ndarray) -> float:
    """How well (Y-up) joints' facing direction agrees with the way knees and toes point, in [-1, 1].

    Facing = (right -> left across the hips and shoulders) x up. Per frame, the knees' offsets from
    their hip-ankle midpoints and the toes' offsets from the ankles are projected on it; the result is
    sum / sum of absolute values, so bent knees and flat feet dominate (a sprinter's toes point back
    in the swing phase; a straight leg's knee says nothing). About +1 for a correctly handed skeleton
    (all 454 Bandai-Namco clips: 1.00), about -1 for a mirrored one.
    """
    across = (joints[:, 1] - joints[:, 2]) + (joints[:, 16] - joints[:, 17])
    forward = np.cross(across, [0.0, 1.0, 0.0])
    forward /= np.maximum(np.linalg.norm(forward, axis=-1, keepdims=True), 1e-9)
    knees = joints[:, [4, 5]] - 0.5 * (joints[:, [1, 2]] + joints[:, [7, 8]])
    toes = joints[:, [10, 11]] - joints[:, [7, 8]]
    score = np.einsum("tkc,tc->t", (knees + toes)[..., [0, 2]], forward[:, [0, 2]])
    total = np.abs(score).sum()
    return float(score.sum() / total) if total > 0 else 0.0


def to_t2m(
    world: np.ndarray,
    joint_names: tuple[str, ...],
    skeleton: SourceSkeleton,
    unit_scale: float | None = None,
    path: str | os.PathLike[str] = "",
) -> np.ndarray:
    """Source world positions (T, J, 3) in file units -> t2m joints (T, 22, 3), metres, Y up."""
    path = str(path)
    joints = apply_blend(blend_matrix(joint_names, skeleton, path), world)
    scale = detect_unit_scale(joints, path) if unit_scale is None else float(unit_scale)
    joints = joints @ (up_rotation(joints).T * scale)
    agreement = facing_agreement(joints)
    if agreement < -0.25:
        raise LavimoInputError(
            path,
            f"left and right look mirrored (facing vs knees/toes agreement {agreement:.2f}): "
            "a left-handed coordinate system or swapped L/R joint names",
        )
    return joints


def bvh_to_t2m(
    motion: BvhMotion, skeleton: SourceSkeleton | str | None = None, unit_scale: float | None = None
) -> np.ndarray:
    """Forward kinematics + mapping of a parsed BVH: (T, 22, 3) t2m joints, metres, Y up, world frame."""
    if skeleton is None:
        skeleton = detect_skeleton(motion)
    elif isinstance(skeleton, str):
        if skeleton not in SKELETONS:
            raise LavimoInputError(motion.path, f"unknown skeleton {skeleton!r} (known: {', '.join(SKELETONS)})")
        skeleton = SKELETONS[skeleton]
    return to_t2m(forward_kinematics(motion), motion.joint_names, skeleton, unit_scale, motion.path)
