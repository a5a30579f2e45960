"""Each loss term against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from detforge.models.onestage.loss import LossWeights, distribution_focal_loss, one_stage_losses, quality_focal_loss
from detforge.models.onestage.model import HeadOutput


def test_quality_focal_loss_by_hand() -> None:
    # row 0: class 0 has quality target 1 and score sigmoid(0) = 0.5: BCE log 2, factor (1 - 0.5)^2
    # row 1: background, score sigmoid(log 3) = 0.75 against 0: BCE log 4, factor 0.75^2
    logits = torch.tensor([[0.0], [math.log(3.0)]])
    loss = quality_focal_loss(logits, torch.tensor([0, -1]), torch.tensor([1.0, 0.0]))
    assert float(loss) == pytest.approx(0.25 * math.log(2) + 0.5625 * math.log(4), rel=1e-6)


def test_quality_focal_loss_is_zero_when_the_score_equals_the_quality() -> None:
    logits = torch.tensor([[0.0, -30.0]])
    assert float(quality_focal_loss(logits, torch.tensor([0]), torch.tensor([0.5]))) == pytest.approx(0.0, abs=1e-9)


def test_distribution_focal_loss_by_hand() -> None:
    # bins 0 and 1 with probabilities 0.25 and 0.75; the distance 0.4 lies 0.6 towards bin 0, 0.4 towards bin 1
    logits = torch.tensor([[0.0, math.log(3.0)]])
    loss = distribution_focal_loss(logits, torch.tensor([0.4]))
    assert float(loss[0]) == pytest.approx(0.6 * -math.log(0.25) + 0.4 * -math.log(0.75), rel=1e-6)


def test_the_three_terms_of_a_hand_made_batch() -> None:
    # points p0 (10, 10), p1 (30, 10), p2 (10, 30) at stride 8; one box [0, 0, 20, 20]. Anchors of 40 px
    # overlap it by 0.25, 0.111, 0.111: threshold 0.157 + 0.080, so p0 alone is positive.
    points = torch.tensor([[10.0, 10.0], [30.0, 10.0], [10.0, 30.0]])
    strides = torch.full((3,), 8.0)
    reg = torch.full((1, 3, 4, 8), -100.0)
    reg[..., 1] = 100.0  # every side predicts exactly 1 stride = 8 px: p0's box is [2, 2, 18, 18], IoU 0.64
    cls = torch.tensor([[[0.0], [-100.0], [-100.0]]])  # p0 scores 0.5, the others 0
    output = HeadOutput(cls, reg)
    losses = one_stage_losses(
        output, points, strides, [3], [torch.tensor([[0.0, 0.0, 20.0, 20.0]])], [torch.tensor([0])]
    )
    weights = LossWeights()
    # QFL: BCE(0.5 vs 0.64) = log 2 scaled by (0.64 - 0.5)^2, over 1 positive
    assert float(losses["loss_quality"]) == pytest.approx(0.0196 * math.log(2) * weights.quality, rel=1e-4)
    # GIoU: the box lies inside the target, so GIoU = IoU = 0.64
    assert float(losses["loss_giou"]) == pytest.approx(0.36 * weights.giou, rel=1e-4)
    # DFL: the true side distance is 10 px = 1.25 strides: 0.75 on bin 1 (CE 0) + 0.25 on bin 2 (CE 200)
    assert float(losses["loss_distribution"]) == pytest.approx(0.25 * 200.0 * weights.distribution, rel=1e-4)


def test_images_without_boxes_train_the_scores_towards_zero() -> None:
    points = torch.tensor([[4.0, 4.0], [12.0, 4.0]])
    output = HeadOutput(torch.zeros((1, 2, 2), requires_grad=True), torch.zeros((1, 2, 4, 8), requires_grad=True))
    losses = one_stage_losses(
        output, points, torch.full((2,), 8.0), [2], [torch.zeros((0, 4))], [torch.zeros(0, dtype=torch.long)]
    )
    # 4 background scores of 0.5: BCE log 2 times 0.25 each, over max(1, 0 positives)
    assert float(losses["loss_quality"].detach()) == pytest.approx(4 * 0.25 * math.log(2), rel=1e-6)
    assert float(losses["loss_giou"].detach()) == 0.0 and float(losses["loss_distribution"].detach()) == 0.0
    sum(losses.values()).backward()
    assert output.cls.grad is not None and bool((output.cls.grad > 0).all())
