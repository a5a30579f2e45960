"""The model zoo: one explicit table, name -> ModelInfo (torchvision builder + facts), and `detforge models`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models import MobileNet_V2_Weights, MobileNet_V3_Large_Weights, ResNet50_Weights
from torchvision.models import detection as tvd

from detforge.models.aliases import resolve_model_name
from detforge.models.info import MODEL_ROWS, ModelInfo, ModelRow
from detforge.models.torchvision_graphs import BackboneSetup, build_module, fasterrcnn_mobilenet_v2_fpn

__all__ = [
    "MODELS",
    "REFERENCE_GFLOPS",
    "count_gflops",
    "default_input_size",
    "get_model_info",
    "model_table",
    "parameter_count",
]

_R50 = ResNet50_Weights.IMAGENET1K_V1.url
_MV3 = MobileNet_V3_Large_Weights.IMAGENET1K_V1.url


def _entry(name: str, min_size: int, max_size: int, builder: Callable[..., Any], **build: Any) -> ModelInfo:
    """The ModelInfo of `name`: family, masks, pretrained kinds and description from its MODEL_ROWS row."""
    row = MODEL_ROWS[name]
    return ModelInfo(
        name, row.family, row.has_masks, min_size, max_size, row.pretrained, row.description, builder, **build
    )


MODELS: dict[str, ModelInfo] = {
    info.name: info
    for info in (
        _entry(
            "fasterrcnn_resnet50_fpn",
            800,
            1333,
            tvd.fasterrcnn_resnet50_fpn,
            coco_url=tvd.FasterRCNN_ResNet50_FPN_Weights.COCO_V1.url,
            imagenet_url=_R50,
            coco_bn_eps=0.0,
        ),
        _entry(
            "fasterrcnn_resnet50_fpn_v2",
            800,
            1333,
            tvd.fasterrcnn_resnet50_fpn_v2,
            coco_url=tvd.FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1.url,
            imagenet_url=_R50,
            frozen_bn=False,
        ),
        _entry(
            "fasterrcnn_mobilenet_v3_large_fpn",
            800,
            1333,
            tvd.fasterrcnn_mobilenet_v3_large_fpn,
            backbone="mobilenet",
            coco_url=tvd.FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1.url,
            imagenet_url=_MV3,
            trainable_layers=(3, 6),
        ),
        _entry(
            "fasterrcnn_mobilenet_v3_large_320_fpn",
            320,
            640,
            tvd.fasterrcnn_mobilenet_v3_large_320_fpn,
            backbone="mobilenet",
            coco_url=tvd.FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1.url,
            imagenet_url=_MV3,
            trainable_layers=(3, 6),
        ),
        _entry(
            "fasterrcnn_mobilenet_v2_fpn",
            512,
            853,
            fasterrcnn_mobilenet_v2_fpn,
            backbone="mobilenet",
            imagenet_url=MobileNet_V2_Weights.IMAGENET1K_V1.url,
            trainable_layers=(3, 6),
        ),
        _entry(
            "retinanet_resnet50_fpn",
            800,
            1333,
            tvd.retinanet_resnet50_fpn,
            coco_url=tvd.RetinaNet_ResNet50_FPN_Weights.COCO_V1.url,
            imagenet_url=_R50,
            coco_bn_eps=0.0,
        ),
        _entry(
            "fcos_resnet50_fpn",
            800,
            1333,
            tvd.fcos_resnet50_fpn,
            coco_url=tvd.FCOS_ResNet50_FPN_Weights.COCO_V1.url,
            imagenet_url=_R50,
        ),
        _entry(
            "ssdlite320_mobilenet_v3_large",
            320,
            320,
            tvd.ssdlite320_mobilenet_v3_large,
            backbone="ssdlite",
            coco_url=tvd.SSDLite320_MobileNet_V3_Large_Weights.COCO_V1.url,
            frozen_bn=False,
            trainable_layers=(6, 6),
            fixed_size=True,
        ),
        _entry(
            "maskrcnn_resnet50_fpn",
            800,
            1333,
            tvd.maskrcnn_resnet50_fpn,
            coco_url=tvd.MaskRCNN_ResNet50_FPN_Weights.COCO_V1.url,
            imagenet_url=_R50,
            coco_bn_eps=0.0,
        ),
    )
}
"""Every model detforge builds, in display order. SSDlite offers no ImageNet start: torchvision's
ImageNet-backbone SSDlite is a different graph (full MobileNetV3 tail) than its COCO model."""


REFERENCE_GFLOPS: dict[str, float] = {name: row.gflops for name, row in MODEL_ROWS.items() if row.gflops is not None}
"""The GFLOPs recorded in the zoo table (`MODEL_ROWS`), by name."""


def get_model_info(name: str) -> ModelInfo:
    """The ModelInfo of a zoo name or a Detectron2 model-zoo alias; ConfigError (with nearest names) otherwise."""
    return MODELS[resolve_model_name(name)[0]]


def _default_input(info: ModelInfo) -> tuple[int, int]:
    """(height, width) of a 3:4 image at the model's default size (square for fixed-size models)."""
    if info.fixed_size:
        return info.default_min_size, info.default_min_size
    return info.default_min_size, min(info.default_max_size, round(info.default_min_size * 4 / 3))


def count_gflops(name: str, *, seed: int = 0) -> float:
    """GFLOPs (1e9, multiply-add = 2) of one eval-mode inference on a random image of the default size.

    Builds the model with random weights (91 classes); slow for ResNet-50 models (seconds each on a CPU).
    """
    info = get_model_info(name)
    model = build_module(info, num_classes=91, setup=BackboneSetup(pretrained=False)).eval()
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand((3, *_default_input(info)), generator=generator)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model([image])
    return counter.get_total_flops() / 1e9


def parameter_count(name: str) -> int:
    """Parameters of the fine-tuning set-up (91 classes; FrozenBatchNorm statistics are buffers), as torchvision
    reports them. Cheap: the model is built on the meta device."""
    info = get_model_info(name)
    with torch.device("meta"):
        model = build_module(info, num_classes=91, setup=BackboneSetup(pretrained=True))
    return sum(p.numel() for p in model.parameters())


def default_input_size(name: str) -> tuple[int, int]:
    """(height, width) of the image `count_gflops` runs: 3:4 at the model's default size (square when fixed)."""
    return _default_input(get_model_info(name))


def model_table(*, measure_gflops: bool = False) -> list[ModelRow]:
    """One ModelRow per zoo model, in table order: the stored table (`MODEL_ROWS`), or with `measure_gflops`
    the same rows with GFLOPs counted now (slow: builds and runs every model once)."""
    if not measure_gflops:
        return list(MODEL_ROWS.values())
    return [replace(row, gflops=round(count_gflops(row.name), 1)) for row in MODEL_ROWS.values()]
