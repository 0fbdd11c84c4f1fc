"""Running `snakemake` from the tests (apart from helpers.py, which imports torch: the workflow tests stay light)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

SNAKEMAKE = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or "snakemake"


def run_snakemake(repo_root: Path, *args: str, timeout: int = 180) -> subprocess.CompletedProcess[str]:
    """`snakemake ARGS` in the repository root, its output captured."""
    return subprocess.run([SNAKEMAKE, *args], cwd=repo_root, capture_output=True, text=True, timeout=timeout)


def snakemake_output(repo_root: Path, *args: str, timeout: int = 180) -> str:
    """The output (stdout, then stderr) of `snakemake ARGS`, which must succeed."""
    result = run_snakemake(repo_root, *args, timeout=timeout)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    return output
