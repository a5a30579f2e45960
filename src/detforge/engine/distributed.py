"""Process-group helpers: who am I (rank), set up / tear down, and small collective decisions.

Works the same when processes were started by `launch.spawn_workers` or by `torchrun` (which sets
RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT). gloo on CPU, nccl on CUDA.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "all_true", "broadcast_flag", "cleanup", "env_dist_info", "init_process_group", "mean_of"]


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job: `rank` in 0..world_size-1, `local_rank` on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files and logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def env_dist_info() -> DistInfo | None:
    """The DistInfo described by torchrun-style environment variables, or None when they are absent."""
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        return None
    world = int(os.environ["WORLD_SIZE"])
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    return DistInfo(rank, world, local)


def init_process_group(info: DistInfo, device: torch.device) -> None:
    """Join the process group (env:// rendezvous) unless single-process or already initialised."""
    if not info.distributed or (dist.is_available() and dist.is_initialized()):
        return
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    if "MASTER_PORT" not in os.environ:
        raise RuntimeError("MASTER_PORT is not set: start with `torchrun` or `train(..., devices=N)`")
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, init_method="env://", rank=info.rank, world_size=info.world_size)


def cleanup(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_flag(value: bool, info: DistInfo, device: torch.device) -> bool:
    """Rank 0's `value` on every rank (single-process: `value`)."""
    if not info.distributed:
        return value
    t = torch.tensor([1 if value else 0], dtype=torch.int32, device=device)
    dist.broadcast(t, src=0)
    return bool(t.item())


def all_true(value: bool, info: DistInfo, device: torch.device) -> bool:
    """True when `value` is True on every rank."""
    if not info.distributed:
        return value
    t = torch.tensor([1 if value else 0], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def mean_of(values: dict[str, float], info: DistInfo, device: torch.device) -> dict[str, float]:
    """Each value averaged over ranks (same keys in the same order on every rank)."""
    if not info.distributed or not values:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64, device=device)
    dist.all_reduce(t)
    t /= info.world_size
    return dict(zip(values, t.tolist(), strict=True))
