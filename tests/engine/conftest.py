"""Fixtures for trainer tests: a tiny COCO dataset written in tmp_path and a tiny, fast config."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detforge.config import Config, load_config

SIZE = 64


def write_tiny_coco(root: Path, *, n_train: int = 6, n_val: int = 2, seed: int = 0) -> Path:
    """A COCO dataset of SIZE x SIZE noise images with 1-2 bright rectangles each, classes "a" and "b"."""
    rng = np.random.default_rng(seed)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    next_image, next_ann = 1, 1
    for subset, count in (("train", n_train), ("val", n_val)):
        images, annotations = [], []
        for _ in range(count):
            pixels = rng.integers(0, 80, (SIZE, SIZE, 3), dtype=np.uint8)
            name = f"{next_image:03d}.png"
            for _k in range(int(rng.integers(1, 3))):
                w, h = (int(v) for v in rng.integers(12, 28, 2))
                x, y = int(rng.integers(0, SIZE - w)), int(rng.integers(0, SIZE - h))
                category = int(rng.integers(1, 3))
                pixels[y : y + h, x : x + w] = (230, 40, 40) if category == 1 else (40, 230, 40)
                annotations.append(
                    {
                        "id": next_ann,
                        "image_id": next_image,
                        "category_id": category,
                        "bbox": [x, y, w, h],
                        "area": w * h,
                        "iscrowd": 0,
                    }
                )
                next_ann += 1
            (root / "images" / subset).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(root / "images" / subset / name)
            images.append({"id": next_image, "file_name": name, "width": SIZE, "height": SIZE})
            next_image += 1
        coco = {
            "images": images,
            "annotations": annotations,
            "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
        }
        (root / "annotations" / f"instances_{subset}.json").write_text(json.dumps(coco), encoding="utf-8")
    return root


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread: on this shared 2-core machine, two spinning threads per process under load
    made tiny training runs 3-5x slower (measured: 6-9 s vs 27 s for the same 6-iteration run)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY_OVERRIDES = (
    "model.name=fasterrcnn_mobilenet_v3_large_320_fpn",
    "model.weights=none",
    "model.min_size=64",
    "model.max_size=64",
    "train.device=cpu",
    "train.batch_size=2",
    "train.max_iter=6",
    "train.warmup_iters=2",
    "train.lr=0.01",
    "train.log_period=1",
    "eval.period=3",
    "data.num_workers=0",
    "data.augment=light",
    "data.test=null",
)


def tiny_config(data: Path, *overrides: str) -> Config:
    """The tiny config for the dataset at `data`, with extra overrides applied last."""
    return load_config(None, [*TINY_OVERRIDES, f"data.path={data}", *overrides])


@pytest.fixture(scope="session")
def tiny_setup() -> tuple[Callable[..., Path], Callable[..., Config]]:
    """(write_tiny_coco, tiny_config) for module-scoped fixtures."""
    return write_tiny_coco, tiny_config


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    return write_tiny_coco(tmp_path / "data")


@pytest.fixture
def make_config(tiny_data: Path) -> Callable[..., Config]:
    """`make_config("train.max_iter=4", ...)`: the tiny config with extra overrides applied last."""

    def make(*overrides: str) -> Config:
        return tiny_config(tiny_data, *overrides)

    return make


def build_tiny_detector(name: str, *, num_classes: int, **kwargs: object) -> tuple[object, object]:
    """Test double for `detforge.models.build.build_detector`: a real torchvision Faster R-CNN with a
    one-layer backbone and small heads, wrapped in detforge's own Detector (fast, kilobyte checkpoints)."""
    import torch
    from torch import nn
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign

    from detforge.models.builders import BackboneSetup
    from detforge.models.detector import Detector
    from detforge.models.weights import WeightsReport

    backbone = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4, padding=1), nn.BatchNorm2d(8), nn.ReLU())
    backbone.out_channels = 8  # type: ignore[assignment]
    module = FasterRCNN(
        backbone,
        num_classes=None,
        min_size=64,
        max_size=64,
        rpn_anchor_generator=AnchorGenerator(sizes=((16, 32),), aspect_ratios=((1.0,),)),
        box_roi_pool=MultiScaleRoIAlign(["0"], output_size=4, sampling_ratio=1),
        box_head=TwoMLPHead(8 * 4 * 4, 32),
        box_predictor=FastRCNNPredictor(32, num_classes + 1),
        rpn_batch_size_per_image=32,
        box_batch_size_per_image=32,
    )
    torch.nn.init.constant_(module.roi_heads.box_predictor.cls_score.bias, 0.0)
    detector = Detector(module, name=name, num_classes=num_classes, has_masks=False, setup=BackboneSetup(False))
    return detector, WeightsReport(0, source="none")


@pytest.fixture
def tiny_detector(monkeypatch: pytest.MonkeyPatch) -> None:
    """Train with `build_tiny_detector` instead of a zoo model (for tests of the trainer's own logic)."""
    monkeypatch.setattr("detforge.models.build.build_detector", build_tiny_detector)
