"""Where a training process runs: its device and its place in a torchrun process group.

Multi-process (DDP) runs are started by ``torchrun`` (``lavimo train --nproc N`` launches it through
:func:`torchrun_command`): NCCL on GPUs, gloo on CPUs. A single process needs no process group at all.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> cuda when available, else cpu; anything else as torch understands it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass(frozen=True)
class Process:
    """This process's place in a (possibly single-process) run."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (the process that writes the run folder)."""
        return self.rank == 0


def init_process(device_name: str) -> Process:
    """Join the torchrun process group when launched by torchrun; pick this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world_size == 1:
        return Process(0, 1, device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world_size))))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Process(dist.get_rank(), world_size, device)


def close_process(proc: Process) -> None:
    """Leave the process group joined by :func:`init_process` (nothing for a single process)."""
    if proc.world_size > 1 and dist.is_initialized():
        dist.destroy_process_group()


def torchrun_command(nproc: int, cli_args: list[str]) -> list[str]:
    """The command that runs ``lavimo <cli_args>`` in ``nproc`` processes on this machine."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "--module",
        "lavimo.cli",
        *cli_args,
    ]


def barrier(proc: Process) -> None:
    """Wait for every process of the group (nothing for a single process)."""
    if proc.world_size > 1:
        dist.barrier()


def all_reduce_mean(values: dict[str, float], proc: Process) -> dict[str, float]:
    """Average per-process means over the process group."""
    if proc.world_size == 1 or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=proc.device)
    dist.all_reduce(tensor)
    return {k: float(v) / proc.world_size for k, v in zip(keys, tensor.tolist(), strict=True)}


def any_process(flag: bool, proc: Process) -> bool:
    """Whether ``flag`` is true in any process of the group (this process's own flag when alone)."""
    if proc.world_size == 1:
        return flag
    tensor = torch.tensor([float(flag)], device=proc.device)
    dist.all_reduce(tensor)
    return bool(tensor.item() > 0)
