"""Fuzzing `lavimo motion from-bvh` with mutated copies of real BVH files (seeded, so every run tries the same cases).

Each case must end in one of two ways: exit 0 with a plausible motion written, or exit 2 with exactly one short
`lavimo: error:` line naming the file once. Never an uncaught exception, a traceback, a hang or garbage written.
"""

from __future__ import annotations

import random
import re
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from lavimo.cli import main
from lavimo.motion.plausibility import check_motion_values

BVH = Path(__file__).parent / "data" / "bvh"
SOURCES = (  # real Bandai-Namco clips (dataset-1 and -2) and a CMU-style file (3 rotation channels, End Sites)
    BVH / "bandai-namco_dataset-1_walk_normal_001_frames0-44.bvh",
    BVH / "bandai-namco_dataset-2_raise-up-left-hand_normal_001.bvh",
    BVH / "cmu_style.bvh",
)
CASES_PER_SOURCE = 150
KEEP_FRAMES = 60  # each source is cropped to its first frames: the cases stay fast
CASE_BUDGET_S = 10.0  # a case over it is a hang (a clean case takes a few tens of milliseconds)
MAX_ERROR_CHARS = 400  # one error line (besides the path), not a dump of the file

NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
ODD_NUMBERS = (
    b"nan", b"NaN", b"inf", b"-inf", b"1e308", b"-1e308", b"1e400", b"1e30", b"-99999999", b"0", b"-0", b"1e-320",
    b"99999999999999999999999999", b"9" * 400, b"0x10", b"1,5", b"", b"--1", b"1e", b"+",
)  # fmt: skip
ODD_BYTES = (b"\x00", b"{", b"}", b"\n", b"\r", b"\t", b" ", b"#", b"\xff\xfe", b"\xe2\x80\x8b", b"-", b".", b"e")
FRAMES_VALUES = (b"0", b"-1", b"1", b"2", b"61", b"59", b"1000000000000", b"abc", b"nan", b"1.5")
FRAME_TIMES = (b"0", b"-0.0333", b"1e-9", b"0.9", b"5", b"nan", b"inf", b"1e400", b"abc", b"0.0333333 0.1")
CHANNEL_COUNTS = (b"0", b"2", b"3", b"7", b"999999999", b"-3", b"x")


def crop(data: bytes, frames: int = KEEP_FRAMES) -> bytes:
    """A BVH file cut to its first ``frames`` frames (the header's ``Frames:`` set to match)."""
    head, body = data.split(b"MOTION", 1)
    lines = body.strip().split(b"\n")
    rows = [line for line in lines[2:] if line.strip()][:frames]
    return head + b"MOTION\n" + f"Frames: {len(rows)}\n".encode() + lines[1] + b"\n" + b"\n".join(rows) + b"\n"


def _flip_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    out = bytearray(data)
    for _ in range(rng.randint(1, 5)):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out), "flip bits"


def _insert_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    at = rng.randrange(len(data))
    chunk = rng.choice(ODD_BYTES) * rng.randint(1, 3)
    return data[:at] + chunk + data[at:], f"insert {chunk!r} at {at}"


def _delete_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    at = rng.randrange(len(data))
    size = rng.choice((1, 2, 8, 64, 1024))
    return data[:at] + data[at + size :], f"delete {size} bytes at {at}"


def _odd_number(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    matches = list(NUMBER.finditer(data))
    match = rng.choice(matches)
    value = rng.choice(ODD_NUMBERS)
    return data[: match.start()] + value + data[match.end() :], f"number at {match.start()} -> {value[:20]!r}"


def _odd_motion_number(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    motion = data.index(b"MOTION")
    matches = [m for m in NUMBER.finditer(data, motion) if m.start() > motion + 40]
    match = rng.choice(matches)
    value = rng.choice(ODD_NUMBERS[:13])
    return data[: match.start()] + value + data[match.end() :], f"motion value at {match.start()} -> {value[:20]!r}"


def _lines(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    lines = data.split(b"\n")
    i = rng.randrange(len(lines))
    action = rng.choice(("duplicate", "drop", "swap"))
    if action == "duplicate":
        lines.insert(i, lines[i])
    elif action == "drop":
        del lines[i]
    else:
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines), f"{action} line {i + 1}"


def _truncate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    at = rng.randrange(len(data))
    return data[:at], f"truncate at {at}"


def _field(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    label, values = rng.choice(((rb"Frames:", FRAMES_VALUES), (rb"Frame Time:", FRAME_TIMES)))
    value = rng.choice(values)
    return re.sub(label + rb"[ \t]*[^\r\n]*", label + b" " + value, data, count=1), f"{label.decode()} {value!r}"


def _channels(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    matches = list(re.finditer(rb"CHANNELS (\d+)", data))
    match = rng.choice(matches)
    value = rng.choice(CHANNEL_COUNTS)
    return data[: match.start(1)] + value + data[match.end(1) :], f"CHANNELS at {match.start()} -> {value!r}"


def _offset(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    matches = list(re.finditer(rb"OFFSET([ \t]+\S+){3}", data))
    match = rng.choice(matches)
    value = rng.choice((b"nan", b"inf", b"1e308", b"-1e30", b"1e6", b"0", b"x", b""))
    values = b" ".join(rng.choice((value, b"0", b"10")) for _ in range(3))
    return data[: match.start()] + b"OFFSET " + values + data[match.end() :], f"OFFSET at {match.start()} -> {values!r}"


def _joint_name(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    matches = list(re.finditer(rb"(?:ROOT|JOINT)[ \t]+(\S+)", data))
    match = rng.choice(matches)
    value = rng.choice((b"Hips", b"Spine", b"x" * 5000, b"\xe2\x80\x8b", b"MOTION", b"HIERARCHY", b"{", b"End"))
    return data[: match.start(1)] + value + data[match.end(1) :], f"joint name at {match.start(1)} -> {value[:20]!r}"


def _scale_column(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    head, body = data.split(b"MOTION", 1)
    lines = body.split(b"\n")
    column, factor = rng.randrange(6), rng.choice((-1.0, 10.0, 1000.0, 1e6))
    for k in range(3, len(lines)):
        values = lines[k].split()
        if len(values) > column:
            try:
                values[column] = repr(float(values[column]) * factor).encode()
            except ValueError:
                continue
            lines[k] = b" ".join(values)
    return head + b"MOTION" + b"\n".join(lines), f"column {column} x {factor:g}"


def _braces(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    matches = list(re.finditer(rb"[{}]", data[: data.index(b"MOTION")]))
    match = rng.choice(matches)
    value = rng.choice((b"", b"{}", b"}", b"{", b"End Site", b"JOINT X", b"ROOT Y"))
    return data[: match.start()] + value + data[match.end() :], f"brace at {match.start()} -> {value!r}"


MUTATIONS: tuple[Callable[[bytes, random.Random], tuple[bytes, str]], ...] = (
    _flip_bytes, _insert_bytes, _delete_bytes, _odd_number, _odd_motion_number, _odd_motion_number, _lines,
    _truncate, _field, _field, _channels, _braces, _offset, _joint_name, _scale_column, _scale_column,
)  # fmt: skip


def mutants(source: bytes, seed: int, count: int) -> Iterator[tuple[bytes, str]]:
    """``count`` mutated copies of ``source`` (one to three mutations each), the same for a given seed."""
    rng = random.Random(seed)
    for _ in range(count):
        data, steps = source, []
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            if not data:
                break
            data, step = rng.choice(MUTATIONS)(data, rng)
            steps.append(step)
        yield data, "; ".join(steps)


class CaseTimeoutError(Exception):
    """A case ran past its budget."""


@contextmanager
def budget(seconds: float) -> Iterator[None]:
    """Raise :class:`CaseTimeoutError` in the block when it runs longer than ``seconds``."""

    def expire(*_: object) -> None:
        raise CaseTimeoutError(f"over {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_outcome(code: int, err: str, bvh: Path, out: Path) -> str | None:
    """What is wrong with one case's outcome (None: exit 0 with a plausible motion, or exit 2 with one line)."""
    lines = err.strip().splitlines()
    if code == 0:
        if lines:
            return f"exit 0 but stderr {err[-300:]!r}"
        with np.load(out) as npz:
            joints, features = npz["joints"], npz["features"]
        if joints.ndim != 3 or joints.shape[1:] != (22, 3) or features.shape != (len(joints), 263):
            return f"exit 0 with joints {joints.shape} and features {features.shape}"
        try:
            check_motion_values(joints, features, str(bvh))
        except ValueError as error:
            return f"exit 0 with an implausible motion: {error}"
        return None
    if code != 2:
        return f"exit {code}: {err[-300:]!r}"
    if len(lines) != 1 or not lines[0].startswith("lavimo: error: "):
        return f"exit 2 without exactly one error line: {err[-500:]!r}"
    named = lines[0].count(str(bvh))
    if len(lines[0]) - named * len(str(bvh)) > MAX_ERROR_CHARS or named != 1:
        return f"error line of {len(lines[0])} characters naming the file {named} times: {lines[0][:300]!r}"
    return None


def test_mutated_bvh_files_give_a_plausible_motion_or_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    problems: list[str] = []
    outcomes = {0: 0, 2: 0}
    for index, source in enumerate(SOURCES):
        base = crop(source.read_bytes())
        for number, (data, steps) in enumerate(mutants(base, seed=index, count=CASES_PER_SOURCE)):
            bvh, out = tmp_path / f"case{index}-{number:03d}.bvh", tmp_path / f"case{index}-{number:03d}.npz"
            bvh.write_bytes(data)
            capsys.readouterr()
            try:
                with budget(CASE_BUDGET_S):
                    code = main(["motion", "from-bvh", str(bvh), str(out)])
            except Exception as error:  # what the test is for: nothing may escape
                problems.append(f"{source.name} #{number} ({steps}): {type(error).__name__}: {str(error)[:300]}")
                continue
            problem = check_outcome(code, capsys.readouterr().err, bvh, out)
            if problem is None:
                outcomes[code] += 1
                bvh.unlink()
                out.unlink(missing_ok=True)
            else:
                problems.append(f"{source.name} #{number} ({steps}): {problem}")
    assert not problems, "\n".join(problems[:30])
    assert outcomes[0] >= 30 and outcomes[2] >= 150, outcomes  # the mutations both keep files readable and break them
