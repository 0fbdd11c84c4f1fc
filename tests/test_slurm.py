"""workflow/profiles/slurm on a real Slurm: a single-node cluster on localhost (Debian's slurmctld, slurmd, munge)
runs the tiny config's `render_all` and `train_demo`, and the results equal a local run of the same config.

"Equal": every rendered frame, contact sheet, avatar, motion array, feature and sentence cache is byte-identical;
JSON, CSV, parquet and npz files are identical once the results folder's own path and the volatile fields (timings,
creation time, the prepare shards' mtime-based resume key) are set aside, as are logs, the rules' timing files
and lock files. Training is compared within a tolerance
(relative 1e-5 on every loss and weight; its config identical): CPU float sums may depend on the thread count,
which a cluster may set differently from the local machine. On the development machine the runs were bit-identical.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from slurm_cluster import LocalSlurm, local_slurm, missing_binaries
from workflow_helpers import REPO, run_tiny_workflow, write_tiny_config

PROFILE = REPO / "workflow" / "profiles" / "slurm"
TARGETS = ("render_all", "train_demo")
GPU_RULES = ("features", "train")
# timings, the creation time, and the prepare shards' resume key (a hash of input paths, sizes and mtimes)
VOLATILE_KEY = re.compile(r"(seconds|per_second|samples_per_s|data_wait_fraction|created|fingerprint)$")
DECODED = (".json", ".done", ".jsonl", ".npz", ".parquet", ".pt", ".csv", ".txt")  # the rest: bytes must match
TRAINING = re.compile(r"runs/[^/]+/(model\.pt|history\.jsonl|checkpoints/.+\.pt)$")


def profile_partitions() -> set[str]:
    """Every `slurm_partition` the profile names (the test cluster gets each of them)."""
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    found = {profile["default-resources"]["slurm_partition"]}
    found |= {r["slurm_partition"] for r in profile.get("set-resources", {}).values() if "slurm_partition" in r}
    return found


def dry_run_resources(configfile: Path, attempt: int) -> dict[str, dict[str, str]]:
    """The resources of each rule of a dry run of `train_demo` through the profile at the given attempt (run after
    `prepare_demo`: the per-shard jobs exist only once the `prepare` checkpoint has written its manifest)."""
    output = run_tiny_workflow(configfile, "-n", "--profile", str(PROFILE), "--attempt", str(attempt), "train_demo")
    resources, rule = {}, None
    for line in output.splitlines():
        if match := re.match(r"(?:local)?(?:rule|checkpoint) (\w+):", line):
            rule = match.group(1)
        elif rule and line.strip().startswith("resources:"):
            pairs = line.split(":", 1)[1].split(",")
            resources[rule] = dict(p.strip().split("=", 1) for p in pairs)
    return resources


def test_profile_asks_for_gpus_partitions_and_more_memory_on_a_retry(tmp_path: Path) -> None:
    configfile = write_tiny_config(tmp_path / "tiny.yaml", tmp_path / "results")
    run_tiny_workflow(configfile, "prepare_demo")
    first, second = dry_run_resources(configfile, 1), dry_run_resources(configfile, 2)
    for rule in GPU_RULES:
        assert first[rule]["gpu"] == "1" and first[rule]["slurm_partition"] == "gpu", first[rule]
    for rule in ("render_shard", "features_merge"):
        assert first[rule]["slurm_partition"] == "cpu" and "gpu" not in first[rule], first[rule]
    assert int(first["train"]["runtime"]) > int(first["render_shard"]["runtime"])
    jobs = [rule for rule in first if "mem_mb" in first[rule] and rule != "train_demo"]
    assert set(GPU_RULES) <= set(jobs)
    for rule in jobs:  # the second attempt of every job asks for twice the memory
        assert int(second[rule]["mem_mb"]) == 2 * int(first[rule]["mem_mb"]), rule


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory):
    if os.geteuid() != 0:
        pytest.skip("a local Slurm needs root (slurmd)")
    missing = missing_binaries()
    assert not missing, f"{', '.join(missing)} missing: workflow/scripts/setup.sh installs them"
    with local_slurm(tmp_path_factory.mktemp("slurm"), partitions=profile_partitions()) as cluster:
        yield cluster


@pytest.mark.slow
def test_slurm_profile_gives_the_results_of_a_local_run(slurm, tmp_path: Path) -> None:
    """Also a drill: the first `render_sheet_clips` job is cancelled while it runs; its retry asks for 2x memory."""
    local = tmp_path / "local"
    cluster = tmp_path / "cluster"
    on_slurm = [
        *TARGETS, "--profile", str(PROFILE),
        # no accounting database on the test cluster: squeue, not sacct, reports the jobs' states
        "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1",
    ]  # fmt: skip
    done = threading.Event()
    with ThreadPoolExecutor(3) as pool:
        submitted = pool.submit(run_tiny_workflow, write_tiny_config(tmp_path / "cluster.yaml", cluster), *on_slurm,
                                env=slurm.env)  # fmt: skip
        submitted.add_done_callback(lambda _: done.set())
        cancelled = pool.submit(cancel_first_running, slurm, "render_sheet_clips", done)
        pool.submit(run_tiny_workflow, write_tiny_config(tmp_path / "local.yaml", local), *TARGETS).result()
        try:
            submitted.result()
        except AssertionError as error:
            raise AssertionError(f"{error}\n{slurm.logs()}") from None
    assert cancelled.result(), "never saw a render_sheet_clips job running"

    jobs = slurm_jobs(slurm.run("scontrol", "show", "job", "--oneliner"))
    for rule in ("render_shard", "features", "train"):
        assert [job["JobState"] for job in jobs.get(rule, [])] == ["COMPLETED"], f"{rule}: {jobs.get(rule)}"
    for rule in GPU_RULES:
        assert jobs[rule][0]["Partition"] == "gpu" and jobs[rule][0].get("TresPerJob") == "gres:gpu:1", jobs[rule]
    assert jobs["train"][0]["MinMemoryNode"] == "16000M"  # config.yaml train.mem_mb
    retried = [(job["JobState"], job["MinMemoryNode"]) for job in jobs["render_sheet_clips"]]
    assert retried == [("CANCELLED", "3000M"), ("COMPLETED", "6000M")]
    assert_same_results(local, cluster)


def cancel_first_running(slurm: LocalSlurm, rule: str, done: threading.Event) -> str | None:
    """Cancel the first job of ``rule`` seen running (polling squeue until ``done``); its job id."""
    while not done.is_set():
        for line in slurm.run("squeue", "--noheader", "--states=RUNNING", "--format=%i %k").splitlines():
            job_id, comment = line.split(maxsplit=1)
            if comment.startswith(f"rule_{rule}_"):
                slurm.run("scancel", job_id)
                return job_id
        time.sleep(0.2)
    return None


def slurm_jobs(scontrol: str) -> dict[str, list[dict[str, str]]]:
    """`scontrol show job --oneliner` as {rule: [job fields]} (the slurm plugin puts rule_NAME in the comment)."""
    jobs: dict[str, list[dict[str, str]]] = {}
    for line in scontrol.splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if match := re.match(r"rule_(\w+?)(?:_wildcards_.*)?$", fields.get("Comment", "")):
            jobs.setdefault(match.group(1), []).append(fields)
    return jobs


def assert_same_results(local: Path, cluster: Path) -> None:
    """The two results folders hold the same files with the same contents ("equal" as the module says)."""
    names = {}
    for root in (local, cluster):
        files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        names[root] = [re.sub(r"/events\.out\.tfevents\..*", "/events", f) for f in files]  # time, host, pid
    assert names[local] == names[cluster]
    assert sum(f.endswith(".png") for f in names[local]) == 8 * 8 + 2  # 8 clips x 8 frames, 2 contact sheets
    assert "demo/runs/3modal/model.pt" in names[local]
    for name in names[local]:
        # logs, timings, and lock files (each names the pid that last held it)
        if name.startswith(("logs/", "benchmarks/")) or name.endswith(("/events", ".lock")):
            continue
        a, b = local / name, cluster / name
        if TRAINING.search(name):
            assert_close(load(a, local), load(b, cluster), name, rel=1e-5)
        elif a.read_bytes() != b.read_bytes():
            assert a.suffix in DECODED, f"{name} differs"
            assert_close(load(a, local), load(b, cluster), name, rel=0.0)


def load(path: Path, root: Path) -> Any:
    """A result file as plain data, with the results folder's path replaced and timing fields dropped."""
    suffix = path.suffix
    if suffix in (".json", ".done"):
        data = json.loads(path.read_text())
    elif suffix == ".jsonl":
        data = [json.loads(line) for line in path.read_text().splitlines()]
    elif suffix == ".npz":
        with np.load(path, allow_pickle=False) as arrays:
            # string members hold JSON (the shard's meta)
            data = {k: json.loads(str(a)) if (a := arrays[k]).dtype.kind == "U" else a for k in arrays.files}
    elif suffix == ".parquet":
        data = pd.read_parquet(path).to_dict(orient="list")
    elif suffix == ".pt":
        data = torch.load(path, map_location="cpu", weights_only=False)
    else:
        data = path.read_text().splitlines()
    return plain(data, str(root))


def plain(value: Any, root: str) -> Any:
    """``value`` with tensors as numpy arrays, the results path replaced, timing fields dropped."""
    if isinstance(value, dict):
        return {k: plain(v, root) for k, v in value.items() if not (isinstance(k, str) and VOLATILE_KEY.search(k))}
    if isinstance(value, list | tuple):
        return [plain(v, root) for v in value]
    if isinstance(value, str):
        return value.replace(root, "<results>")
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, np.ndarray) and value.dtype == object:
        return [plain(v, root) for v in value.tolist()]
    return value


def assert_close(a: Any, b: Any, where: str, rel: float) -> None:
    """Equal data; floats (and float arrays) within ``rel`` relative tolerance."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        assert a.keys() == b.keys(), f"{where}: keys differ"
        for key in a:
            assert_close(a[key], b[key], f"{where}[{key}]", rel)
    elif isinstance(a, list):
        assert len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{where}[{i}]", rel)
    elif isinstance(a, np.ndarray):
        assert a.shape == b.shape and a.dtype == b.dtype, f"{where}: {a.shape} {a.dtype} != {b.shape} {b.dtype}"
        if a.dtype.kind == "f" and rel:
            np.testing.assert_allclose(a, b, rtol=rel, atol=1e-7, err_msg=where)
        else:
            np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, float):
        assert math.isclose(a, b, rel_tol=rel, abs_tol=1e-7 if rel else 0.0), f"{where}: {a} != {b}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"
