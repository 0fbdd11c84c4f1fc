"""Running `snakemake` from the tests, and the tiny workflow config of the end-to-end tests.

Kept apart from helpers.py, which imports torch: the workflow tests stay light.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or "snakemake"


def run_snakemake(
    repo_root: Path, *args: str, timeout: float = 180, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`snakemake ARGS` in the repository root, its output captured."""
    return subprocess.run([SNAKEMAKE, *args], cwd=repo_root, env=env, capture_output=True, text=True, timeout=timeout)


def snakemake_output(repo_root: Path, *args: str, timeout: float = 180, env: Mapping[str, str] | None = None) -> str:
    """The output (stdout, then stderr) of `snakemake ARGS`, which must succeed."""
    result = run_snakemake(repo_root, *args, timeout=timeout, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    return output


def write_tiny_config(path: Path, results: Path) -> Path:
    """A config file: the demo cut to 4 source clips (8 with mirrors: 6 train, 2 test), the tiny preset, results
    in ``results``; the 6 training clips make one batch."""
    train = {"threads": 2, "overrides": {"batch_size": 6}}
    tiny = {"results_dir": str(results), "datasets": {"demo": {"limit": 4}}, "preset": "tiny", "train": train}
    path.write_text(yaml.safe_dump(tiny))
    return path


def run_tiny_workflow(
    configfile: Path, *args: str, env: Mapping[str, str] | None = None, cores: int = 2, timeout: float = 1800
) -> str:
    """`snakemake ARGS --cores CORES --configfile CONFIGFILE` in the repository root; must succeed."""
    # the targets first: --configfile takes every argument that follows it
    return snakemake_output(
        REPO, *args, "--cores", str(cores), "--configfile", str(configfile), timeout=timeout, env=env
    )
