"""A fake detector whose outputs are known exactly, and helpers to paint the objects it finds.

Objects are painted as rectangles whose red channel is an object code 1..255 (score = code / 255)
and whose green channel is the class label. The detector finds every rectangle (bounding box of
the pixels with that code) that would be at least `min_visible` pixels wide and high after resizing
the input so its longer side is `input_size` (like a real model's internal resize), so small objects
in large images are only visible in tiles. `left_half_only` makes it blind to objects not entirely
in the left half of its input (to test flip TTA). An image whose width is `poison_width` raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from torch import Tensor

from detforge.structures.detections import Detections


@dataclass
class FakeDetector:
    num_classes: int = 3
    input_size: int = 64
    min_visible: float = 4.0
    left_half_only: bool = False
    poison_width: int | None = None
    batches: list[int] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)

    def predict(self, images: Sequence[Tensor]) -> list[Detections]:
        self.batches.append(len(images))
        return [self._one(image) for image in images]

    def _one(self, image: Tensor) -> Detections:
        assert image.dtype == torch.float32 and image.ndim == 3 and image.shape[0] == 3
        assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
        height, width = int(image.shape[1]), int(image.shape[2])
        self.sizes.append((height, width))
        if self.poison_width is not None and width == self.poison_width:
            raise RuntimeError("poisoned image")
        pixels = (image * 255).round().to(torch.int64).cpu()
        red, green = pixels[0], pixels[1]
        scale = min(1.0, self.input_size / max(height, width))
        boxes, labels, scores = [], [], []
        for code in sorted(set(red.unique().tolist()) - {0}):
            ys, xs = torch.nonzero(red == code, as_tuple=True)
            x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
            if (x1 - x0) * scale < self.min_visible or (y1 - y0) * scale < self.min_visible:
                continue
            if self.left_half_only and x1 > width / 2:
                continue
            boxes.append([x0, y0, x1, y1])
            labels.append(int(green[ys[0], xs[0]]))
            scores.append(code / 255)
        if not boxes:
            return Detections.empty((height, width))
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        return Detections(
            torch.tensor([boxes[i] for i in order], dtype=torch.float32),
            torch.tensor([labels[i] for i in order], dtype=torch.int64),
            torch.tensor([scores[i] for i in order], dtype=torch.float32),
            (height, width),
        )


def paint(
    width: int, height: int, objects: Sequence[tuple[int, int, int, int, int, int]], background: int = 0
) -> np.ndarray:
    """uint8 [H, W, 3] RGB image with each (x0, y0, x1, y1, code, label) rectangle painted."""
    arr = np.full((height, width, 3), background, dtype=np.uint8)
    for x0, y0, x1, y1, code, label in objects:
        arr[y0:y1, x0:x1, 0] = code
        arr[y0:y1, x0:x1, 1] = label
        arr[y0:y1, x0:x1, 2] = 0
    return arr


@pytest.fixture
def fake() -> FakeDetector:
    return FakeDetector()


@pytest.fixture
def painter():  # type: ignore[no-untyped-def]
    return paint


@pytest.fixture
def fake_class():  # type: ignore[no-untyped-def]
    return FakeDetector
