"""Shared test doubles for training tests (importable from any test: pytest puts tests/ on sys.path):
a tiny COCO dataset writer and a tiny Faster R-CNN in detforge's Detector."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

SIZE = 64


def write_tiny_coco(root: Path, *, n_train: int = 6, n_val: int = 2, seed: int = 0) -> Path:
    """A COCO dataset (train/val) of SIZE x SIZE noise images with 1-2 bright rectangles of class "a" or "b"."""
    rng = np.random.default_rng(seed)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    next_image, next_ann = 1, 1
    for subset, count in (("train", n_train), ("val", n_val)):
        images, annotations = [], []
        (root / "images" / subset).mkdir(parents=True, exist_ok=True)
        for _ in range(count):
            pixels = rng.integers(0, 80, (SIZE, SIZE, 3), dtype=np.uint8)
            for _k in range(int(rng.integers(1, 3))):
                w, h = (int(v) for v in rng.integers(12, 28, 2))
                x, y = int(rng.integers(0, SIZE - w)), int(rng.integers(0, SIZE - h))
                category = int(rng.integers(1, 3))
                pixels[y : y + h, x : x + w] = (230, 40, 40) if category == 1 else (40, 230, 40)
                annotations.append({
                    "id": next_ann, "image_id": next_image, "category_id": category,
                    "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0,
                })  # fmt: skip
                next_ann += 1
            name = f"{next_image:03d}.png"
            Image.fromarray(pixels).save(root / "images" / subset / name)
            images.append({"id": next_image, "file_name": name, "width": SIZE, "height": SIZE})
            next_image += 1
        categories = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
        coco = {"images": images, "annotations": annotations, "categories": categories}
        (root / "annotations" / f"instances_{subset}.json").write_text(json.dumps(coco), encoding="utf-8")
    return root


def build_tiny_detector(name: str, *, num_classes: int, size: int = SIZE, **kwargs: Any) -> tuple[Any, Any]:
    """Test double for `detforge.models.build.build_detector` (same call, other keywords ignored): a real
    torchvision Faster R-CNN with a one-layer backbone and small heads resizing to `size` px, wrapped in
    detforge's own Detector (fast steps, kilobyte checkpoints). Deterministic under torch.manual_seed."""
    import torch
    from torch import nn
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign

    from detforge.models.torchvision_detector import TorchvisionDetector
    from detforge.models.torchvision_graphs import BackboneSetup
    from detforge.models.weights import WeightsReport

    backbone = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4, padding=1), nn.BatchNorm2d(8), nn.ReLU())
    backbone.out_channels = 8  # type: ignore[assignment]
    module = FasterRCNN(
        backbone,
        num_classes=None,
        min_size=size,
        max_size=size,
        rpn_anchor_generator=AnchorGenerator(sizes=((16, 32),), aspect_ratios=((1.0,),)),
        box_roi_pool=MultiScaleRoIAlign(["0"], output_size=4, sampling_ratio=1),
        box_head=TwoMLPHead(8 * 4 * 4, 32),
        box_predictor=FastRCNNPredictor(32, num_classes + 1),
        rpn_batch_size_per_image=32,
        box_batch_size_per_image=32,
    )
    torch.nn.init.constant_(module.roi_heads.box_predictor.cls_score.bias, 0.0)
    detector = TorchvisionDetector(
        module, name=name, num_classes=num_classes, has_masks=False, setup=BackboneSetup(False)
    )
    return detector, WeightsReport(0, source="none")
