"""The per-rule timing table, read from the benchmark files a real Snakemake run writes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lavimo.io import LavimoInputError
from lavimo.timing import read_benchmarks, run_timing, timing_table

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")

# two jobs of one rule at once, then a rule that needs both; the same onsuccess as the pipeline's Snakefile
SNAKEFILE = """
import time
RUN_STARTED = time.time()

rule all:
    input: "b.txt"

rule a:
    output: "a{n}.txt"
    benchmark: "benchmarks/a/{n}.tsv"
    shell: "sleep 1.5; touch {output}"

rule b:
    input: "a1.txt", "a2.txt"
    output: "b.txt"
    benchmark: "benchmarks/b/b.tsv"
    shell: "sleep 1; touch {output}"

onsuccess:
    from lavimo.timing import run_timing
    print(run_timing("benchmarks", since=RUN_STARTED))
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A finished two-rule Snakemake run: (its folder, what it printed)."""
    folder = tmp_path_factory.mktemp("timing")
    (folder / "Snakefile").write_text(textwrap.dedent(SNAKEFILE))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    command = [SNAKEMAKE, "--cores", "2", "--quiet", "rules"]
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder, result.stdout + result.stderr


def test_benchmark_files_give_each_job_its_time(run: tuple[Path, str]) -> None:
    folder, _ = run
    jobs = read_benchmarks(folder / "benchmarks")
    assert [(j.rule, j.job) for j in jobs][-1] == ("b", "b") and sorted(j.job for j in jobs[:2]) == ["1", "2"]
    assert all(j.seconds >= 1.5 for j in jobs[:2]) and jobs[2].seconds >= 1.0
    assert jobs[2].start >= max(j.end for j in jobs[:2]) - 0.5  # b starts once both a jobs have ended


def test_the_run_prints_one_row_per_rule_and_the_whole_run(run: tuple[Path, str]) -> None:
    _, output = run
    table = output[output.index("Time per rule") :]
    lines = table[: table.index("\n", table.index("whole run"))].splitlines()
    assert lines[1].split() == ["rule", "jobs", "start", "end", "span", "job", "time", "CPU", "time", "max", "RSS"]
    rows = {line.split()[0]: line.split() for line in lines[3:] if line and not line.startswith("-")}
    assert rows["a"][1] == "2" and rows["b"][1] == "1" and rows["whole"][1:3] == ["run", "3"]
    assert rows["a"][2] == "+0:00" and rows["a"][5] in ("0:03", "0:04")  # two 1.5 s jobs at once: 3 s of job time
    assert rows["whole"][6] in ("0:02", "0:03", "0:04")  # span: a (at once), then b


def test_only_the_jobs_of_this_run_and_bad_files(run: tuple[Path, str], tmp_path: Path) -> None:
    folder, _ = run
    assert run_timing(folder / "benchmarks", since=time.time() + 60) == ""
    assert timing_table([]) == ""
    bad = tmp_path / "benchmarks" / "a" / "x.tsv"
    bad.parent.mkdir(parents=True)
    bad.write_text("s\th:m:s\nNA\tNA\n")
    with pytest.raises(LavimoInputError, match=r"x\.tsv: not a Snakemake benchmark file"):
        read_benchmarks(tmp_path / "benchmarks")
