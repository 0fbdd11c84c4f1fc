"""Render engine choice and the GPU check (no bpy: runs before Blender is loaded)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from lavimo.io import LavimoInputError

# our engine name -> Blender's engine identifier
ENGINES: dict[str, str] = {"workbench": "BLENDER_WORKBENCH", "cycles": "CYCLES", "eevee": "BLENDER_EEVEE"}
GPU_ONLY = frozenset({"eevee"})
GPU_ENV = "LAVIMO_RENDER_GPU"  # "0"/"1" overrides the detection (tests, odd drivers)
_GPU_VENDORS = frozenset({"0x10de", "0x1002", "0x8086"})  # NVIDIA, AMD, Intel


def _drm_gpu() -> bool:
    """True when a DRM render node of a known GPU vendor exists."""
    for vendor in Path("/sys/class/drm").glob("renderD*/device/vendor"):
        try:
            if vendor.read_text().strip().lower() in _GPU_VENDORS:
                return True
        except OSError:
            continue
    return False


def _nvidia_gpu() -> bool:
    """True when the NVIDIA driver reports at least one GPU."""
    gpus = Path("/proc/driver/nvidia/gpus")
    if gpus.is_dir() and any(gpus.iterdir()):
        return True
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    try:
        done = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0 and "GPU" in done.stdout


def gpu_available() -> bool:
    """Whether this machine has a GPU that Blender can render with (``LAVIMO_RENDER_GPU`` overrides)."""
    forced = os.environ.get(GPU_ENV)
    if forced in {"0", "1"}:
        return forced == "1"
    return _nvidia_gpu() or _drm_gpu()


def check_engine(engine: str, force: bool = False) -> str:
    """Blender identifier of ``engine``; refuses a GPU-only engine on a machine without a GPU unless ``force``."""
    if engine not in ENGINES:
        raise LavimoInputError(engine, f"unknown render engine; choose one of {sorted(ENGINES)}")
    if engine in GPU_ONLY and not force and not gpu_available():
        raise LavimoInputError(
            engine,
            "EEVEE needs a GPU and none was found on this machine (software OpenGL takes about a minute "
            "per frame); use --engine workbench (fast on CPU) or cycles, or pass --force-engine to insist",
        )
    return ENGINES[engine]
