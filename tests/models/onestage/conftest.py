"""A tiny one-stage model trained on 4 generated images, shared by the overfitting and export tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import numpy as np
import pytest
import torch

from detforge.models.build import build_detector
from detforge.models.onestage.detector import OneStageDetector
from detforge.structures.detections import Target

SIZE = 96
COLOURS = ((0.9, 0.1, 0.1), (0.1, 0.9, 0.1))  # class 0 red, class 1 green


@dataclass(frozen=True)
class Overfitted:
    detector: OneStageDetector
    images: list[torch.Tensor]
    targets: list[Target]


def four_images(seed: int = 0) -> tuple[list[torch.Tensor], list[Target]]:
    """4 dark noise images of SIZE x SIZE with 2 solid boxes each (30-60 px, classes 0/1 by colour)."""
    rng = np.random.default_rng(seed)
    images, targets = [], []
    for i in range(4):
        image = torch.from_numpy(rng.uniform(0.0, 0.3, (3, SIZE, SIZE)).astype(np.float32))
        boxes, labels = [], []
        for _ in range(2):
            w, h = (int(v) for v in rng.integers(30, 60, 2))
            x, y = int(rng.integers(0, SIZE - w)), int(rng.integers(0, SIZE - h))
            label = int(rng.integers(0, 2))
            image[:, y : y + h, x : x + w] = torch.tensor(COLOURS[label])[:, None, None]
            boxes.append([x, y, x + w, y + h])
            labels.append(label)
        images.append(image)
        targets.append(Target(torch.tensor(boxes, dtype=torch.float32), torch.tensor(labels), i + 1))
    return images, targets


def overfit(iterations: int = 150, seed: int = 0) -> Overfitted:
    """The small zoo model at SIZE px (random weights, trainable BatchNorm) trained with AdamW on `four_images`."""
    torch.manual_seed(seed)
    images, targets = four_images(seed)
    built, _ = build_detector("gfl_mobilenet_v2_s", num_classes=2, weights="none", min_size=SIZE, max_size=SIZE)
    detector = cast(OneStageDetector, built)
    optimizer = torch.optim.AdamW(detector.parameters(), lr=5e-3, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=5e-3, total_steps=iterations, pct_start=0.1)
    detector.train()
    for _ in range(iterations):
        losses = detector.forward_loss(images, targets)
        optimizer.zero_grad()
        sum(losses.values()).backward()  # type: ignore[union-attr]
        optimizer.step()
        scheduler.step()
    return Overfitted(detector.eval(), images, targets)


@pytest.fixture(scope="session")
def overfitted() -> Iterator[Overfitted]:
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        yield overfit()
    finally:
        torch.set_num_threads(old)
