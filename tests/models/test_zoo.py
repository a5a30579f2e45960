"""Every zoo model builds, trains a step and predicts; the zoo table and `detforge models` rows."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace

import pytest
import torch
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from detforge.errors import ConfigError
from detforge.models import MODEL_NAMES, MODELS, build_detector, get_model_info, model_table
from detforge.models.detector import Detector
from detforge.models.info import MODEL_ROWS
from detforge.models.zoo import count_gflops, default_input_size, parameter_count
from detforge.structures.detections import Target

TINY = {"min_size": 64, "max_size": 96}

# torchvision's published parameter counts (COCO heads, FrozenBatchNorm), plus our MobileNetV2 model.
TORCHVISION_PARAMS = {
    "fasterrcnn_resnet50_fpn": 41_755_286,
    "fasterrcnn_resnet50_fpn_v2": 43_712_278,
    "fasterrcnn_mobilenet_v3_large_fpn": 19_386_354,
    "fasterrcnn_mobilenet_v3_large_320_fpn": 19_386_354,
    "retinanet_resnet50_fpn": 34_014_999,
    "fcos_resnet50_fpn": 32_269_600,
    "ssdlite320_mobilenet_v3_large": 3_440_060,
    "maskrcnn_resnet50_fpn": 44_401_393,
}
ONE_STAGE = ("gfl_mobilenet_v2_s", "gfl_mobilenet_v2_m")


def _sizes(name: str) -> dict[str, int]:
    return {} if MODELS[name].fixed_size else TINY


def test_zoo_table_lists_exactly_the_documented_models() -> None:
    assert tuple(MODELS) == MODEL_NAMES
    assert set(MODEL_NAMES) == set(TORCHVISION_PARAMS) | {"fasterrcnn_mobilenet_v2_fpn", *ONE_STAGE}
    assert MODELS["maskrcnn_resnet50_fpn"].has_masks and not MODELS["fcos_resnet50_fpn"].has_masks
    assert MODELS["fasterrcnn_mobilenet_v2_fpn"].pretrained == ("imagenet",)
    assert MODELS["ssdlite320_mobilenet_v3_large"].pretrained == ("coco",)
    assert {info.family for info in MODELS.values()} == {"fasterrcnn", "retinanet", "fcos", "ssd", "maskrcnn", "gfl"}
    assert all(MODELS[n].pretrained == ("imagenet",) and MODELS[n].family == "gfl" for n in ONE_STAGE)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_trains_a_step_and_predicts(
    name: str, batch: tuple[list[torch.Tensor], list[Target]], shrink: Callable[[Detector], Detector]
) -> None:
    torch.manual_seed(0)
    detector, report = build_detector(name, num_classes=3, weights="none", **_sizes(name))
    shrink(detector)
    assert report.loaded == 0 and report.source == "none"
    # random init must use trainable BatchNorm everywhere (FrozenBatchNorm with random stats explodes)
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in detector.modules())
    assert all(p.requires_grad for p in detector.parameters())
    images, targets = batch
    detector.train()
    losses = detector.forward_loss(images, targets)
    assert losses and all(v.ndim == 0 and math.isfinite(float(v.detach())) for v in losses.values())
    total = sum(losses.values())
    assert isinstance(total, torch.Tensor)
    total.backward()
    grads = [p.grad for p in detector.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    detections = detector.predict(images)
    assert [d.image_size for d in detections] == [(80, 100), (70, 60)]
    for d in detections:
        assert len(d) == 0 or (int(d.labels.min()) >= 0 and int(d.labels.max()) <= 2)
        assert (d.masks is not None) == MODELS[name].has_masks
    assert detector.training, "predict must restore train mode"


def test_ssdlite_size_is_fixed() -> None:
    with pytest.raises(ConfigError, match="fixed 320x320"):
        build_detector("ssdlite320_mobilenet_v3_large", num_classes=2, weights="none", min_size=64)


def test_model_table_rows_are_the_stored_table_and_need_no_torch() -> None:
    rows = {row.name: row for row in model_table()}
    assert list(rows) == list(MODEL_NAMES) == list(MODEL_ROWS)
    # the stored numbers are checked against the built models below (parameters, input sizes, GFLOPs)
    for name, params in TORCHVISION_PARAMS.items():  # torchvision's published counts, an independent source
        assert rows[name].params == params, name
    assert rows["maskrcnn_resnet50_fpn"].pretrained == ("coco", "imagenet") and rows["maskrcnn_resnet50_fpn"].has_masks
    assert rows["ssdlite320_mobilenet_v3_large"].input_size == (320, 320)
    assert rows["fasterrcnn_resnet50_fpn"].input_size == (800, 1067)
    code = "import sys, detforge; rows = detforge.list_models(); print(len(rows), 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(len(MODEL_NAMES)), "False"]


def test_measure_gflops_replaces_only_the_gflops(monkeypatch: pytest.MonkeyPatch) -> None:
    from detforge.models import zoo

    monkeypatch.setattr(zoo, "count_gflops", lambda name: 1.234)
    rows = model_table(measure_gflops=True)
    assert [r.gflops for r in rows] == [1.2] * len(MODEL_NAMES)
    assert [replace(r, gflops=MODEL_ROWS[r.name].gflops) for r in rows] == list(MODEL_ROWS.values())


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_stored_parameters_and_input_size_match_the_built_model(name: str) -> None:
    row = MODEL_ROWS[name]
    assert parameter_count(name) == row.params
    assert default_input_size(name) == row.input_size
    info = MODELS[name]
    assert (info.family, info.has_masks, info.pretrained, info.description) == (
        row.family,
        row.has_masks,
        row.pretrained,
        row.description,
    )


FAST_GFLOPS = tuple(n for n in MODEL_NAMES if MODELS[n].backbone != "resnet")
"""Models whose GFLOPs `make test` counts (0.5-3 s each on a CPU); the ResNet-50 models (10-30 s each)
are counted by `make test-slow`."""


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[] if n in FAST_GFLOPS else [pytest.mark.slow]) for n in MODEL_NAMES]
)
def test_stored_gflops_match_the_built_model(name: str) -> None:
    # random weights: how many RoIs survive varies a little from build to build, so 2% (and the table's
    # rounding to 0.1), not the last digit
    torch.manual_seed(0)
    assert count_gflops(name) == pytest.approx(MODEL_ROWS[name].gflops, rel=0.02, abs=0.06)


def test_get_model_info_accepts_aliases_and_rejects_unknown() -> None:
    assert get_model_info("COCO-Detection/retinanet_R_50_FPN_1x.yaml").name == "retinanet_resnet50_fpn"
    with pytest.raises(ConfigError, match="fasterrcnn_mobilenet_v3_large_fpn"):
        get_model_info("fasterrcnn_mobilenet_v3_fpn")


def test_class_count_and_weights_kind_are_validated() -> None:
    with pytest.raises(ConfigError, match="num_classes"):
        build_detector("fasterrcnn_mobilenet_v2_fpn", num_classes=0, weights="none")
    with pytest.raises(ConfigError, match="no coco weights"):
        build_detector("fasterrcnn_mobilenet_v2_fpn", num_classes=2, weights="coco")
    with pytest.raises(ConfigError, match="6 backbone stages"):
        build_detector("fasterrcnn_mobilenet_v2_fpn", num_classes=2, weights="none", trainable_backbone_layers=7)


def test_batchnorm_is_trainable_only_without_weights() -> None:
    detector, _ = build_detector("fasterrcnn_mobilenet_v2_fpn", num_classes=2, weights="none", **TINY)
    body = detector.model.backbone.body
    assert any(type(m) is nn.BatchNorm2d for m in body.modules())


def test_names_resolve_without_importing_torch() -> None:
    code = (
        "import sys; from detforge.models import resolve_model_name, MODEL_NAMES; "
        "print(resolve_model_name('faster_rcnn_R_50_FPN_3x')[0], 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["fasterrcnn_resnet50_fpn", "False"]
