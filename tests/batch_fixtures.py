"""Test helpers for batch prediction (importable from any test and the benchmark): a small model artifact and
generated photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn.modules.batchnorm import _BatchNorm


def make_artifact(path: Path, name: str = "ssdlite320_mobilenet_v3_large") -> Path:
    """A random-weight detector `name` (default SSDlite 320, the fastest on a CPU), 2 classes ("cat" id 3,
    "dog" id 7), its BatchNorm statistics set from random images (finite activations, varied scores),
    calibrated threshold 0.05."""
    from detforge.models import DetectionParams, ModelSpec, build_detector, save_model

    torch.manual_seed(0)
    detector, _ = build_detector(name, num_classes=2, weights="none")
    backbone = detector.model.get_submodule("backbone")
    for module in backbone.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            module.momentum = None
    backbone.train()
    with torch.no_grad():
        backbone(torch.rand(4, 3, detector.min_size, detector.min_size))
    detector.eval()
    detector.detection_params = DetectionParams(score_thresh=0.0, nms_thresh=0.5, detections_per_img=20)
    spec = ModelSpec(
        model_name=detector.name,
        num_classes=2,
        class_names=("cat", "dog"),
        category_ids=(3, 7),
        min_size=detector.min_size,
        max_size=detector.max_size,
        score_threshold=0.05,
    )
    return save_model(path, detector, spec)


def write_photos(folder: Path, n: int, *, seed: int = 0, size: tuple[int, int] = (80, 64)) -> Path:
    """`n` PNG photos of noise with bright rectangles, named p000.png ... in `folder` (sub-folder `sub/` for
    every fifth, to exercise relative names)."""
    rng = np.random.default_rng(seed)
    width, height = size
    for i in range(n):
        pixels = rng.integers(0, 90, (height, width, 3), dtype=np.uint8)
        x, y = int(rng.integers(0, width - 24)), int(rng.integers(0, height - 24))
        pixels[y : y + 20, x : x + 20] = (220, 60, 40)
        name = f"sub/p{i:03d}.png" if i % 5 == 4 else f"p{i:03d}.png"
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / name)
    return folder
