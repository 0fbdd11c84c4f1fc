"""A throwaway single-node Slurm on localhost, from the distribution's packages (slurmctld, slurmd, munge).

Everything lives in one folder: a fresh munge key and socket, slurm.conf, state, spool and logs; the daemons
run as root in the foreground (no systemd), listen on free loopback ports and are stopped on exit. The node
has one GPU as a generic resource (no device behind it) and one partition per `slurm_partition` named in the
profile, so the profile's GPU and partition requests are scheduled as they would be on a real cluster.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "srun", "sinfo")
NODE_MEMORY_MB = 65536  # the node's memory as Slurm sees it (config_overrides): every rule's request fits


def missing_binaries() -> list[str]:
    """The Slurm/munge programs that are not installed (workflow/scripts/setup.sh installs them)."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin"])
    return [name for name in DAEMONS + CLIENTS if shutil.which(name, path=search) is None]


def _binary(name: str) -> str:
    found = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin"]))
    if found is None:
        raise FileNotFoundError(f"{name} not found: install slurmctld slurmd slurm-client munge")
    return found


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def slurm_conf(root: Path, host: str, partitions: Iterable[str], cpus: int) -> str:
    """slurm.conf of the one-node cluster in ``root``: loopback only, no accounting database."""
    ctld_port, node_port = _free_ports(2)
    parts = sorted(set(partitions))
    lines = [
        "ClusterName=lavimo-test",
        f"SlurmctldHost={host}(127.0.0.1)",
        f"SlurmctldPort={ctld_port}",
        f"SlurmdPort={node_port}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={root}/munge/munge.socket",
        "MpiDefault=none",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "GresTypes=gpu",
        # the node is what this file says (memory, CPUs), not what the machine has
        "SlurmdParameters=config_overrides",
        "ReturnToService=2",
        "SchedulerParameters=sched_interval=1",
        "MinJobAge=600",  # finished jobs stay visible to squeue (the status query without accounting)
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "MailProg=/bin/true",
        f"StateSaveLocation={root}/state",
        f"SlurmdSpoolDir={root}/spool",
        f"SlurmctldPidFile={root}/slurmctld.pid",
        f"SlurmdPidFile={root}/slurmd.pid",
        f"SlurmctldLogFile={root}/log/slurmctld.log",
        f"SlurmdLogFile={root}/log/slurmd.log",
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} Boards=1 SocketsPerBoard=1 CoresPerSocket={cpus}"
        f" ThreadsPerCore=1 RealMemory={NODE_MEMORY_MB} Gres=gpu:1 State=UNKNOWN",
    ]
    lines += [f"PartitionName={p} Nodes={host} Default={'YES' if i == 0 else 'NO'} MaxTime=INFINITE State=UP"
              for i, p in enumerate(parts)]  # fmt: skip
    return "\n".join(lines) + "\n"


class LocalSlurm:
    """Handle of a running cluster: ``env`` is what a client (sbatch, snakemake) needs in its environment."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env

    def logs(self, tail: int = 30) -> str:
        """The last lines of the daemons' logs (for a failing test's message)."""
        out = []
        for log in [*sorted((self.root / "log").glob("*.log")), self.root / "munge" / "munged.log"]:
            if log.exists():
                out.append(f"== {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-tail:]))
        return "\n".join(out)

    def run(self, *args: str) -> str:
        """A Slurm client command against this cluster; its stdout."""
        result = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: {result.stderr.strip()}\n{self.logs()}")
        return result.stdout


@contextlib.contextmanager
def local_slurm(root: Path, partitions: Iterable[str] = ("debug",), timeout: float = 60) -> Iterator[LocalSlurm]:
    """Start munged, slurmctld and slurmd (as root) on localhost with state in ``root``; stop them on exit."""
    if os.geteuid() != 0:
        raise PermissionError("slurmd must run as root")
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("munge", "state", "spool", "log", "bin"):
        (root / sub).mkdir(mode=0o700, exist_ok=True)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    host = socket.gethostname().split(".")[0]
    conf = root / "slurm.conf"
    conf.write_text(slurm_conf(root, host, partitions, max(2, os.cpu_count() or 1)))
    (root / "gres.conf").write_text(f"NodeName={host} Name=gpu File=/dev/null Count=1\n")
    # The slurm plugin's job step strips SLURM_* from the environment of its `srun`, SLURM_CONF included: on a
    # real cluster srun then reads /etc/slurm/slurm.conf; here it needs to be told where this cluster's file is.
    srun = root / "bin" / "srun"
    srun.write_text(f'#!/bin/sh\nSLURM_CONF={conf} exec {_binary("srun")} "$@"\n')
    srun.chmod(0o755)
    env = {**os.environ, "SLURM_CONF": str(conf), "PATH": f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    munge = root / "munge"
    commands = [
        [_binary("munged"), "--foreground", "--force", f"--key-file={key}", f"--socket={munge}/munge.socket",
         f"--pid-file={munge}/munged.pid", f"--log-file={munge}/munged.log", f"--seed-file={munge}/seed"],
        [_binary("slurmctld"), "-D", "-i"],
        [_binary("slurmd"), "-D", "-N", host],
    ]  # fmt: skip
    daemons: list[subprocess.Popen] = []
    cluster = LocalSlurm(root, env)
    try:
        for command in commands:
            with open(root / "log" / f"{Path(command[0]).name}.out", "wb") as log:
                daemons.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
            if command[0].endswith("munged"):
                _wait(lambda: (munge / "munge.socket").exists(), timeout, "munged socket", cluster)
        _wait(lambda: _node_state(env) == "idle", timeout, "node idle", cluster)
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            subprocess.run([_binary("scancel"), "--full", "--partition", ",".join(sorted(set(partitions)))],
                           env=env, capture_output=True, timeout=10)  # fmt: skip
        for daemon in reversed(daemons):
            daemon.terminate()
            try:
                daemon.wait(timeout=15)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()


def _node_state(env: dict[str, str]) -> str:
    command = [_binary("sinfo"), "-h", "-N", "-o", "%T"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=10)
    return result.stdout.strip().splitlines()[0] if result.returncode == 0 and result.stdout.strip() else ""


def _wait(ready, timeout: float, what: str, cluster: LocalSlurm) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"local Slurm: no {what} after {timeout:.0f} s\n{cluster.logs()}")
        time.sleep(0.5)
