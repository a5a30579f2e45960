"""The model zoo: one explicit table, name -> ModelInfo (builder + facts), and `detforge models`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models import MobileNet_V2_Weights, MobileNet_V3_Large_Weights, ResNet50_Weights
from torchvision.models import detection as tvd

from detforge.models.aliases import resolve_model_name
from detforge.models.families import make_detector
from detforge.models.info import MODEL_ROWS, ModelInfo, ModelRow
from detforge.models.onestage.model import gfl_mobilenet_v2_m, gfl_mobilenet_v2_s
from detforge.models.torchvision_graphs import BackboneSetup, fasterrcnn_mobilenet_v2_fpn

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
_MV2 = MobileNet_V2_Weights.IMAGENET1K_V1.url
_COCO_CLASSES = 90  # torchvision's COCO label space without its background slot: 91 outputs for its models


def _entry(name: str, builder: Callable[..., Any], **build: Any) -> ModelInfo:
    """The ModelInfo of `name`: family, masks, sizes, pretrained kinds and description from its MODEL_ROWS row."""
    row = MODEL_ROWS[name]
    return ModelInfo(
        name,
        row.family,
        row.has_masks,
        row.min_size,
        row.max_size,
        row.pretrained,
        row.description,
        builder,
        fixed_size=row.fixed_size,
        **build,
    )


MODELS: dict[str, ModelInfo] = {
    info.name: info
    for info in (
        _entry(
            "fasterrcnn_resnet50_fpn",
            tvd.fasterrcnn_resnet50_fpn,
            coco_url=tvd.FasterRCNN_ResNet50_FPN_Weights.COCO_V1.url,
            imagenet_url=_R50,
            coco_bn_eps=0.0,
        ),
        _entry(
            "fasterrcnn_resnet50_fpn_v2",
            tvd.fasterrcnn_resnet50_fpn_v2,
            coco_url=tvd.FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1.url,
            imagenet_url=_R50,
            frozen_bn=False,
        ),
        _entry(
            "fasterrcnn_mobilenet_v3_large_fpn",
            tvd.fasterrcnn_mobilenet_v3_large_fpn,
            backbone="mobilenet",
            coco_url=tvd.FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1.url,
            imagenet_url=_MV3,
            trainable_layers=(3, 6),
        ),
        _entry(
            "fasterrcnn_mobilenet_v3_large_320_fpn",
            tvd.fasterrcnn_mobilenet_v3_large_320_fpn,
            backbone="mobilenet",
            coco_url=tvd.FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1.url,
            imagenet_url=_MV3,
            trainable_layers=(3, 6),
        ),
        _entry(
            "fasterrcnn_mobilenet_v2_fpn",
            fasterrcnn_mobilenet_v2_fpn,
            backbone="mobilenet",
            imagenet_url=_MV2,
            trainable_layers=(3, 6),
        ),
        _entry(
            "retinanet_resnet50_fpn",
            tvd.retinanet_resnet50_fpn,
            coco_url=tvd.RetinaNet_ResNet50_FPN_Weights.COCO_V1.url,
            imagenet_url=_R50,
            coco_bn_eps=0.0,
        ),
        _entry(
            "fcos_resnet50_fpn",
            tvd.fcos_resnet50_fpn,
            coco_url=tvd.FCOS_ResNet50_FPN_Weights.COCO_V1.url,
            imagenet_url=_R50,
        ),
        _entry(
            "ssdlite320_mobilenet_v3_large",
            tvd.ssdlite320_mobilenet_v3_large,
            backbone="ssdlite",
            coco_url=tvd.SSDLite320_MobileNet_V3_Large_Weights.COCO_V1.url,
            frozen_bn=False,
            trainable_layers=(6, 6),
        ),
        _entry(
            "maskrcnn_resnet50_fpn",
            tvd.maskrcnn_resnet50_fpn,
            coco_url=tvd.MaskRCNN_ResNet50_FPN_Weights.COCO_V1.url,
            imagenet_url=_R50,
            coco_bn_eps=0.0,
        ),
        _entry(
            "gfl_mobilenet_v2_s", gfl_mobilenet_v2_s, backbone="mobilenet", imagenet_url=_MV2, trainable_layers=(3, 6)
        ),
        _entry(
            "gfl_mobilenet_v2_m", gfl_mobilenet_v2_m, backbone="mobilenet", imagenet_url=_MV2, trainable_layers=(3, 6)
        ),
    )
}
"""Every model detforge builds, in display order. SSDlite offers no ImageNet start: torchvision's
ImageNet-backbone SSDlite is a different graph (full MobileNetV3 tail) than its COCO model. The gfl
rows are detforge's own one-stage family (`detforge.models.onestage`); their builder takes the class count
only."""


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

    Builds the model with random weights (COCO's 91 slots: 90 classes and background); slow for ResNet-50
    models (seconds each on a CPU).
    """
    info = get_model_info(name)
    detector = make_detector(info, num_classes=_COCO_CLASSES, setup=BackboneSetup(pretrained=False)).eval()
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand((3, *_default_input(info)), generator=generator)
    counter = FlopCounterMode(display=False)
    with counter:
        detector.predict([image])
    return counter.get_total_flops() / 1e9


def parameter_count(name: str) -> int:
    """Parameters of the fine-tuning set-up (91 classes; FrozenBatchNorm statistics are buffers), as torchvision
    reports them. Cheap: the model is built on the meta device."""
    info = get_model_info(name)
    with torch.device("meta"):
        detector = make_detector(info, num_classes=_COCO_CLASSES, setup=BackboneSetup(pretrained=True))
    return sum(p.numel() for p in detector.model.parameters())


def default_input_size(name: str) -> tuple[int, int]:
    """(height, width) of the image `count_gflops` runs: 3:4 at the model's default size (square when fixed)."""
    return _default_input(get_model_info(name))


def model_table(*, measure_gflops: bool = False) -> list[ModelRow]:
    """One ModelRow per zoo model, in table order: the stored table (`MODEL_ROWS`), or with `measure_gflops`
    the same rows with GFLOPs counted now (slow: builds and runs every model once)."""
    if not measure_gflops:
        return list(MODEL_ROWS.values())
    return [replace(row, gflops=round(count_gflops(row.name), 1)) for row in MODEL_ROWS.values()]
