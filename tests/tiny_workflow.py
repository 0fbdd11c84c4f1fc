"""The tiny workflow configuration of the end-to-end tests and a `snakemake` runner for it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def write_tiny_config(path: Path, results: Path) -> Path:
    """A config file: the demo set cut to 4 source clips (8 with mirrors), the tiny preset, results in ``results``."""
    tiny = {"results_dir": str(results), "datasets": {"demo": {"limit": 4}}, "preset": "tiny", "train": {"threads": 2}}
    path.write_text(yaml.safe_dump(tiny))
    return path


def run_snakemake(
    configfile: Path, *args: str, env: Mapping[str, str] | None = None, cores: int = 2, timeout: float = 1800
) -> str:
    """`snakemake ARGS --configfile CONFIGFILE` in the repository root; asserts it succeeds, returns its output."""
    command = [SNAKEMAKE, *args, "--cores", str(cores), "--configfile", str(configfile)]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    return output
