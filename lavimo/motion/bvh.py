"""BVH reading and forward kinematics, vectorised over frames.

Conventions (those of every common BVH exporter and Blender's importer):

* ``CHANNELS`` lists a joint's motion columns in file order; rotations are Euler angles in degrees,
  applied intrinsically in channel order: ``Zrotation Xrotation Yrotation`` means ``R = Rz @ Rx @ Ry``
  acting on column vectors, so ``world = R_parent @ (R_joint @ child_offset + ...)``.
* A joint with position channels (the root, or every joint in Bandai-Namco files) takes its local
  translation from those channels, which replace its ``OFFSET``; a joint without them is translated by
  its ``OFFSET``. Missing position axes fall back to the offset's component.
* Units are whatever the file uses (BVH has no unit field); :mod:`lavimo.motion.source_skeletons`
  detects them and converts to metres.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lavimo.io import LavimoInputError
from lavimo.motion.plausibility import MAX_ANGLE_DEG, check_duration, check_frame_time

TOKEN_CHARS = 32  # a token quoted in an error message is cut to this many characters
_MOTION_LINE = re.compile(r"^[ \t]*MOTION[ \t]*\r?$", re.MULTILINE)
_POSITION_CHANNELS = {"xposition": 0, "yposition": 1, "zposition": 2}
_ROTATION_CHANNELS = {"xrotation": "X", "yrotation": "Y", "zrotation": "Z"}


@dataclass
class BvhMotion:
    """A parsed BVH file: the hierarchy plus per-frame local translations and rotations."""

    path: str
    joint_names: tuple[str, ...]
    parents: np.ndarray  # (J,) int, -1 for the root
    offsets: np.ndarray  # (J, 3) rest offsets from the parent, file units
    channels: tuple[tuple[str, ...], ...]  # channel names per joint, file order
    frame_time: float  # seconds
    positions: np.ndarray  # (T, J, 3) local translations (position channels or the offset)
    rotations: np.ndarray  # (T, J, 3) Euler angles in degrees, in ``rotation_orders[j]`` order
    rotation_orders: tuple[str, ...]  # per joint, e.g. "ZXY" ("" for a joint without rotation channels)
    end_sites: dict[int, np.ndarray] = field(default_factory=dict)  # joint index -> End Site offset (3,)

    @property
    def fps(self) -> float:
        """Frames per second (1 / frame time)."""
        return 1.0 / self.frame_time

    @property
    def n_frames(self) -> int:
        """Number of frames T."""
        return int(self.positions.shape[0])

    def index(self, name: str) -> int:
        """Index of the joint called ``name``."""
        return self.joint_names.index(name)


@dataclass
class _Hierarchy:
    names: list[str] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    offsets: list[list[float]] = field(default_factory=list)
    channels: list[tuple[str, ...]] = field(default_factory=list)
    end_sites: dict[int, np.ndarray] = field(default_factory=dict)


def read_bvh(path: str | os.PathLike[str]) -> BvhMotion:
    """Read a BVH file; every problem is raised as :class:`LavimoInputError` naming the file."""
    path = Path(path)
    text = _read_text(path)
    match = _MOTION_LINE.search(text)
    if match is None or "HIERARCHY" not in text[: match.start()]:
        raise LavimoInputError(path, "not a BVH file (no HIERARCHY ... MOTION sections)")
    head, body = text[: match.start()], text[match.end() :]
    hierarchy = _parse_hierarchy(path, head)
    n_frames, frame_time, data = _parse_motion(path, body, sum(len(c) for c in hierarchy.channels))
    positions, rotations, orders = _split_channels(path, hierarchy, data, n_frames)
    return BvhMotion(
        path=str(path),
        joint_names=tuple(hierarchy.names),
        parents=np.asarray(hierarchy.parents, dtype=np.int64),
        offsets=np.asarray(hierarchy.offsets, dtype=np.float64).reshape(-1, 3),
        channels=tuple(hierarchy.channels),
        frame_time=frame_time,
        positions=positions,
        rotations=rotations,
        rotation_orders=orders,
        end_sites=hierarchy.end_sites,
    )


def _read_text(path: Path) -> str:
    if not path.exists():
        raise LavimoInputError(path, "file does not exist")
    if not path.is_file():
        raise LavimoInputError(path, "not a regular file")
    raw = path.read_bytes()
    if b"\x00" in raw:
        raise LavimoInputError(path, "not a BVH file (binary data)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # joint names in a legacy encoding; the numbers are ASCII anyway


def _parse_hierarchy(path: Path, head: str) -> _Hierarchy:
    """Parse the HIERARCHY section with a token-stream state machine."""
    tokens = head.split()
    hierarchy = _Hierarchy()
    stack: list[int] = []  # open joints; -2 marks an open End Site
    i = tokens.index("HIERARCHY") + 1
    try:
        while i < len(tokens):
            token = tokens[i]
            if token in ("ROOT", "JOINT"):
                if token == "ROOT" and stack:
                    raise LavimoInputError(path, "ROOT inside another joint")
                parent = stack[-1] if stack else -1
                if parent == -2:
                    raise LavimoInputError(path, "JOINT inside an End Site")
                hierarchy.names.append(tokens[i + 1])
                hierarchy.parents.append(parent)
                hierarchy.offsets.append([0.0, 0.0, 0.0])
                hierarchy.channels.append(())
                i += 2
                i = _expect(path, tokens, i, "{")
                stack.append(len(hierarchy.names) - 1)
            elif token == "End":
                if not stack or stack[-1] < 0 or tokens[i + 1] != "Site":
                    raise LavimoInputError(path, "misplaced End Site")
                i = _expect(path, tokens, i + 2, "{")
                stack.append(-2)
            elif token == "OFFSET":
                if not stack:
                    raise LavimoInputError(path, "OFFSET outside a joint")
                offset = [_number(path, v, "OFFSET") for v in tokens[i + 1 : i + 4]]
                if len(offset) != 3:
                    raise LavimoInputError(path, "malformed HIERARCHY (OFFSET with fewer than 3 values)")
                if stack[-1] == -2:
                    hierarchy.end_sites[stack[-2]] = np.asarray(offset)
                else:
                    hierarchy.offsets[stack[-1]] = offset
                i += 4
            elif token == "CHANNELS":
                i = _parse_channels(path, tokens, i, hierarchy, stack)
            elif token == "}":
                if not stack:
                    raise LavimoInputError(path, "unbalanced braces in HIERARCHY")
                stack.pop()
                i += 1
            else:
                raise LavimoInputError(path, f"unexpected token {_quote(token)} in HIERARCHY")
    except LavimoInputError:
        raise
    except IndexError:
        raise LavimoInputError(path, "malformed HIERARCHY (it ends too early)") from None
    except ValueError as error:
        raise LavimoInputError(path, f"malformed HIERARCHY ({_cut(str(error), 2 * TOKEN_CHARS)})") from None
    if stack:
        raise LavimoInputError(path, "unbalanced braces in HIERARCHY")
    if not hierarchy.names:
        raise LavimoInputError(path, "HIERARCHY has no joints")
    return hierarchy


def _expect(path: Path, tokens: list[str], i: int, expected: str) -> int:
    if tokens[i] != expected:
        raise LavimoInputError(path, f"expected {expected!r} in HIERARCHY, got {_quote(tokens[i])}")
    return i + 1


def _parse_channels(path: Path, tokens: list[str], i: int, hierarchy: _Hierarchy, stack: list[int]) -> int:
    if not stack or stack[-1] < 0:
        raise LavimoInputError(path, "CHANNELS outside a joint")
    joint = _quote(hierarchy.names[stack[-1]])
    try:
        count = int(tokens[i + 1])
    except ValueError:
        raise LavimoInputError(path, f"joint {joint}: CHANNELS count {_quote(tokens[i + 1])} is not a number") from None
    known = _POSITION_CHANNELS.keys() | _ROTATION_CHANNELS.keys()
    if not 0 <= count <= len(known):
        raise LavimoInputError(path, f"joint {joint}: CHANNELS {count}, expected 0 to {len(known)} channels")
    names = tuple(tokens[i + 2 : i + 2 + count])
    if len(names) != count or any(n.lower() not in known for n in names):
        listed = ", ".join(_quote(n) for n in names)
        raise LavimoInputError(path, f"joint {joint}: CHANNELS {count} followed by [{listed}]")
    if len({n.lower() for n in names}) != count:
        raise LavimoInputError(path, f"joint {joint}: repeated channel in {list(names)}")
    hierarchy.channels[stack[-1]] = names
    return i + 2 + count


def _cut(text: str, limit: int = TOKEN_CHARS) -> str:
    """``text`` cut to ``limit`` characters (a corrupt file can hold a megabyte-long token)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _quote(token: str) -> str:
    """A token quoted for an error message, cut to :data:`TOKEN_CHARS` characters."""
    return repr(_cut(token))


def _number(path: Path, token: str, what: str) -> float:
    """A HIERARCHY number (an OFFSET value)."""
    try:
        return float(token)
    except ValueError:
        raise LavimoInputError(path, f"malformed HIERARCHY ({what} value {_quote(token)} is not a number)") from None


def _parse_motion(path: Path, body: str, n_channels: int) -> tuple[int, float, np.ndarray]:
    """Parse ``Frames:``, ``Frame Time:`` and the frame rows into a (T, n_channels) array."""
    lines = body.lstrip().split("\n", 2)
    if len(lines) < 2 or not lines[0].startswith("Frames:") or not lines[1].startswith("Frame Time:"):
        raise LavimoInputError(path, "MOTION section lacks 'Frames:' and 'Frame Time:' lines")
    try:
        n_frames = int(lines[0].split(":", 1)[1])
        frame_time = float(lines[1].split(":", 1)[1])
    except ValueError as error:
        raise LavimoInputError(path, f"bad Frames/Frame Time value ({_cut(str(error), 2 * TOKEN_CHARS)})") from None
    check_frame_time(n_frames, frame_time, str(path))
    rows = lines[2] if len(lines) > 2 else ""
    data = _parse_rows(path, rows)
    if data.shape[0] < n_frames:
        raise LavimoInputError(path, f"truncated: 'Frames: {n_frames}' but {data.shape[0]} frame rows")
    if data.shape[0] > n_frames:
        raise LavimoInputError(path, f"'Frames: {n_frames}' but {data.shape[0]} frame rows")
    if data.shape[1] != n_channels:
        raise LavimoInputError(
            path, f"frame rows have {data.shape[1]} values, the hierarchy declares {n_channels} channels"
        )
    finite = np.isfinite(data).all(axis=1)
    if not finite.all():
        raise LavimoInputError(path, f"NaN or Inf in MOTION data (first at frame {np.argmin(finite) + 1})")
    check_duration(n_frames, frame_time, str(path))
    return n_frames, frame_time, data


def _parse_rows(path: Path, rows: str) -> np.ndarray:
    """Frame rows -> (T, C) array. numpy>=1.23's loadtxt is C code: faster than split()+array here."""
    if not rows.strip():
        return np.zeros((0, 0))
    try:
        return np.loadtxt(io.StringIO(rows), dtype=np.float64, ndmin=2, comments=None)
    except ValueError as error:
        problem = str(error).split(";")[0].replace("at row", "at frame row")
        kind = "truncated or ragged frame rows" if "columns changed" in problem else "bad MOTION data"
        raise LavimoInputError(path, f"{kind}: {_cut(problem, 4 * TOKEN_CHARS)}") from error


def _split_channels(
    path: Path, hierarchy: _Hierarchy, data: np.ndarray, n_frames: int
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Scatter the channel columns into local translations (T,J,3) and Euler angles (T,J,3)."""
    n_joints = len(hierarchy.names)
    offsets = np.asarray(hierarchy.offsets, dtype=np.float64).reshape(n_joints, 3)
    positions = np.broadcast_to(offsets, (n_frames, n_joints, 3)).copy()
    rotations = np.zeros((n_frames, n_joints, 3), dtype=np.float64)
    orders: list[str] = []
    column = 0
    for j, names in enumerate(hierarchy.channels):
        order = ""
        for name in names:
            lower = name.lower()
            if lower in _POSITION_CHANNELS:
                positions[:, j, _POSITION_CHANNELS[lower]] = data[:, column]
            else:
                rotations[:, j, len(order)] = data[:, column]
                order += _ROTATION_CHANNELS[lower]
            column += 1
        if len(order) not in (0, 3):
            raise LavimoInputError(
                path, f"joint {_quote(hierarchy.names[j])} has {len(order)} rotation channels, expected 0 or 3"
            )
        orders.append(order)
    _check_angles(path, hierarchy.names, rotations)
    return positions, rotations, tuple(orders)


def _check_angles(path: Path, names: list[str], rotations: np.ndarray) -> None:
    """Refuse a rotation channel beyond :data:`~lavimo.motion.plausibility.MAX_ANGLE_DEG` degrees (a corrupt value)."""
    absurd = np.abs(rotations) > MAX_ANGLE_DEG
    if absurd.any():
        frame, joint, _ = np.argwhere(absurd)[0]
        value = float(np.abs(rotations[frame, joint]).max())
        raise LavimoInputError(
            path,
            f"implausible motion: a rotation of {value:.3g} degrees (joint {_quote(names[joint])}, frame {frame + 1}), "
            f"beyond {MAX_ANGLE_DEG:g}",
        )


def euler_to_matrix(angles_deg: np.ndarray, order: str) -> np.ndarray:
    """Rotation matrices (..., 3, 3) from intrinsic Euler angles (..., 3) in degrees, axes in ``order``."""
    if not order:
        return np.broadcast_to(np.eye(3), (*angles_deg.shape[:-1], 3, 3)).copy()
    radians = np.deg2rad(angles_deg)
    cos, sin = np.cos(radians), np.sin(radians)
    result = None
    for k, axis in enumerate(order):
        i = "XYZ".index(axis)
        a, b = (i + 1) % 3, (i + 2) % 3
        m = np.zeros((*angles_deg.shape[:-1], 3, 3))
        m[..., i, i] = 1.0
        m[..., a, a] = m[..., b, b] = cos[..., k]
        m[..., a, b] = -sin[..., k]
        m[..., b, a] = sin[..., k]
        result = m if result is None else result @ m
    return result


def local_rotations(motion: BvhMotion) -> np.ndarray:
    """Local rotation matrices (T, J, 3, 3); identity for joints without rotation channels."""
    n_frames, n_joints = motion.n_frames, len(motion.joint_names)
    result = np.empty((n_frames, n_joints, 3, 3))
    for order in set(motion.rotation_orders):
        joints = [j for j, o in enumerate(motion.rotation_orders) if o == order]
        result[:, joints] = euler_to_matrix(motion.rotations[:, joints], order)
    return result


def forward_kinematics(motion: BvhMotion, end_sites: bool = False) -> np.ndarray:
    """World positions (T, J, 3) of every joint in file units; with ``end_sites`` (T, J + E, 3).

    End Site positions (if requested) follow the joints, in increasing order of their joint index.
    """
    local = local_rotations(motion)
    world_pos = np.empty_like(motion.positions)
    world_rot = np.empty_like(local)
    for j, parent in enumerate(motion.parents):
        if parent < 0:
            world_rot[:, j] = local[:, j]
            world_pos[:, j] = motion.positions[:, j]
        else:
            world_rot[:, j] = world_rot[:, parent] @ local[:, j]
            world_pos[:, j] = world_pos[:, parent] + (world_rot[:, parent] @ motion.positions[:, j, :, None])[..., 0]
    if not end_sites or not motion.end_sites:
        return world_pos
    sites = sorted(motion.end_sites)
    site_offsets = np.stack([motion.end_sites[j] for j in sites])
    site_pos = world_pos[:, sites] + (world_rot[:, sites] @ site_offsets[None, :, :, None])[..., 0]
    return np.concatenate([world_pos, site_pos], axis=1)
