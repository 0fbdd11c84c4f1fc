"""Where a workflow run's time went: a per-rule table from Snakemake's benchmark files.

Every rule writes ``{results}/benchmarks/{rule}/{wildcards}.tsv`` (its ``benchmark:``): the job's wall seconds
(``s``), CPU seconds and peak memory; the file's mtime is when the job ended. The Snakefile's ``onsuccess:``
prints :func:`timing_table` of the jobs of the run that just finished. ``python -m lavimo.timing
results/benchmarks`` prints the table of every job that has a file.
"""

from __future__ import annotations

import csv
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from lavimo.io import LavimoInputError


@dataclass(frozen=True)
class JobTiming:
    """One job's benchmark record."""

    rule: str
    job: str  # the file's path under the rule's folder: its wildcards
    seconds: float
    cpu_seconds: float | None
    max_rss_mb: float | None
    end: float  # epoch seconds (the file's mtime)

    @property
    def start(self) -> float:
        """When the job started (end minus its wall time)."""
        return self.end - self.seconds


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "", "NA", "-") else None
    except ValueError:
        return None


def read_benchmark(path: Path, rule: str, job: str) -> JobTiming:
    """One benchmark file (the last row when the rule repeats its benchmark); a bad file names itself."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    seconds = _number(rows[-1].get("s")) if rows else None
    if seconds is None:
        raise LavimoInputError(path, "not a Snakemake benchmark file (no row with a number under 's')")
    cpu, rss = _number(rows[-1].get("cpu_time")), _number(rows[-1].get("max_rss"))
    return JobTiming(rule, job, seconds, cpu, rss, path.stat().st_mtime)


def read_benchmarks(root: str | os.PathLike[str], since: float | None = None) -> list[JobTiming]:
    """Every ``{root}/{rule}/**/*.tsv`` (only jobs that ended at or after ``since``), ordered by start."""
    root = Path(root)
    jobs = []
    for path in sorted(root.glob("*/**/*.tsv")):
        if since is not None and path.stat().st_mtime < since:
            continue
        rule, _, job = path.relative_to(root).with_suffix("").as_posix().partition("/")
        jobs.append(read_benchmark(path, rule, job))
    return sorted(jobs, key=lambda j: (j.start, j.rule, j.job))


def _clock(seconds: float) -> str:
    """m:ss, or h:mm:ss from an hour on."""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"


def timing_table(jobs: list[JobTiming]) -> str:
    """A text table, one row per rule in order of its first start: jobs, start and end after the run's first
    start, the span between them, the jobs' summed wall and CPU time, peak memory; then the whole run."""
    if not jobs:
        return ""
    t0 = min(j.start for j in jobs)
    rules: dict[str, list[JobTiming]] = {}
    for job in sorted(jobs, key=lambda j: j.start):
        rules.setdefault(job.rule, []).append(job)
    header = ("rule", "jobs", "start", "end", "span", "job time", "CPU time", "max RSS")
    rows = [_row(rule, group, t0) for rule, group in rules.items()]
    rows.append(_row("whole run", jobs, t0))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in [header, *rows]]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.insert(len(lines) - 1, lines[1])
    return "\n".join(lines)


def _row(name: str, jobs: list[JobTiming], t0: float) -> tuple[str, ...]:
    start, end = min(j.start for j in jobs), max(j.end for j in jobs)
    cpu = [j.cpu_seconds for j in jobs if j.cpu_seconds is not None]
    rss = [j.max_rss_mb for j in jobs if j.max_rss_mb is not None]
    return (
        name,
        str(len(jobs)),
        "+" + _clock(start - t0),
        "+" + _clock(end - t0),
        _clock(end - start),
        _clock(sum(j.seconds for j in jobs)),
        _clock(sum(cpu)) if cpu else "-",
        f"{max(rss) / 1024:.1f} GB" if rss else "-",
    )


def run_timing(root: str | os.PathLike[str], since: float | None = None) -> str:
    """The table of the jobs under ``root`` that ended at or after ``since``, with a title ("" if none)."""
    table = timing_table(read_benchmarks(root, since))
    return f"Time per rule (Snakemake benchmark files in {root}):\n{table}" if table else ""


if __name__ == "__main__":
    print(run_timing(sys.argv[1] if len(sys.argv) > 1 else "results/benchmarks") or "no benchmark files")
