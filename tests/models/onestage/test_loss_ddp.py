"""The one-stage losses under data parallelism: the positive count and the box-weight sum are the means over
the processes (a process without positives neither hangs the others nor gets a different scale), and the
paired IoU equals torchvision's diagonal without its P x P matrix."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torchvision.ops import box_iou

from detforge.models.onestage.loss import one_stage_losses, paired_iou
from onestage_ddp_worker import POINTS, STRIDES, batch, free_port, rank_losses


def test_two_processes_share_the_normalisers(tmp_path: Path) -> None:
    mp.spawn(rank_losses, args=(free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    output, boxes, labels = batch(with_box=True)
    alone = one_stage_losses(output, POINTS, STRIDES, [3], boxes, labels)
    # rank 0 has the only positive: the mean positive count over 2 processes is 0.5 -> clamped to 1, as alone;
    # the box-weight sum is halved, so rank 0's box losses are twice the single-process ones
    assert float(ranks[0]["loss_quality"]) == pytest.approx(float(alone["loss_quality"]), rel=1e-6)
    assert float(ranks[0]["loss_giou"]) == pytest.approx(2 * float(alone["loss_giou"]), rel=1e-5)
    assert float(ranks[1]["loss_giou"]) == 0.0


def test_paired_iou_is_the_diagonal_of_box_iou() -> None:
    torch.manual_seed(1)
    a = torch.rand(50, 4) * 50
    a[:, 2:] += a[:, :2]
    b = a + torch.randn(50, 4) * 5
    b[:, 2:] = torch.maximum(b[:, 2:], b[:, :2])  # some empty boxes
    b[0] = torch.tensor([200.0, 200.0, 210.0, 210.0])  # no overlap
    assert torch.allclose(paired_iou(a, b), box_iou(a, b).diagonal().nan_to_num(0.0).clamp(min=0.0), atol=1e-6)
    assert float(paired_iou(a, b)[0]) == 0.0
