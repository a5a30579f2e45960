"""The worker of tests/models/onestage/test_loss_ddp.py, in a module on the tests' import path so that a
spawned process can import it (pytest's importlib mode does not make the test files importable by name)."""

from __future__ import annotations

import os
import socket

import torch
import torch.distributed as dist

from detforge.models.onestage.loss import one_stage_losses
from detforge.models.onestage.model import HeadOutput

POINTS = torch.tensor([[10.0, 10.0], [30.0, 10.0], [10.0, 30.0]])
STRIDES = torch.full((3,), 8.0)


def batch(with_box: bool) -> tuple[HeadOutput, list[torch.Tensor], list[torch.Tensor]]:
    torch.manual_seed(0)
    output = HeadOutput(cls=torch.randn(1, 3, 1), reg=torch.randn(1, 3, 4, 8))
    boxes = torch.tensor([[0.0, 0.0, 20.0, 20.0]]) if with_box else torch.zeros((0, 4))
    labels = torch.tensor([0]) if with_box else torch.zeros((0,), dtype=torch.int64)
    return output, [boxes], [labels]


def rank_losses(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        output, boxes, labels = batch(with_box=rank == 0)  # rank 1 has no object at all
        losses = one_stage_losses(output, POINTS, STRIDES, [3], boxes, labels)
        torch.save({k: v.detach() for k, v in losses.items()}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
