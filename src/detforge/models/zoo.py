"""The model zoo: one explicit table, name -> ModelInfo (torchvision builder + facts), and `detforge models`."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models import MobileNet_V2_Weights, MobileNet_V3_Large_Weights, ResNet50_Weights
from torchvision.models import detection as tvd

from detforge.models.aliases import resolve_model_name
from detforge.models.builders import BackboneSetup, build_module, fasterrcnn_mobilenet_v2_fpn
from detforge.models.info import ModelInfo, ModelRow

__all__ = ["MODELS", "REFERENCE_GFLOPS", "count_gflops", "get_model_info", "model_table"]

_R50 = ResNet50_Weights.IMAGENET1K_V1.url
_MV3 = MobileNet_V3_Large_Weights.IMAGENET1K_V1.url

MODELS: dict[str, ModelInfo] = {
    info.name: info
    for info in (
        ModelInfo(
            "fasterrcnn_resnet50_fpn",
            "fasterrcnn",
            False,
            800,
            1333,
            ("coco", "imagenet"),
            "Faster R-CNN, ResNet-50 FPN (COCO box AP 37.0); the classic two-stage baseline",
            tvd.fasterrcnn_resnet50_fpn,
            coco_url=tvd.FasterRCNN_ResNet50_FPN_Weights.COCO_V1.url,
            imagenet_url=_R50,
            coco_bn_eps=0.0,
        ),
        ModelInfo(
            "fasterrcnn_resnet50_fpn_v2",
            "fasterrcnn",
            False,
            800,
            1333,
            ("coco", "imagenet"),
            "Faster R-CNN, ResNet-50 FPN v2 recipe (COCO box AP 46.7); most accurate, slowest",
            tvd.fasterrcnn_resnet50_fpn_v2,
            coco_url=tvd.FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1.url,
            imagenet_url=_R50,
            frozen_bn=False,
        ),
        ModelInfo(
            "fasterrcnn_mobilenet_v3_large_fpn",
            "fasterrcnn",
            False,
            800,
            1333,
            ("coco", "imagenet"),
            "Faster R-CNN, MobileNetV3-Large FPN (COCO box AP 32.8); fast on CPU",
            tvd.fasterrcnn_mobilenet_v3_large_fpn,
            backbone="mobilenet",
            coco_url=tvd.FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1.url,
            imagenet_url=_MV3,
            trainable_layers=(3, 6),
        ),
        ModelInfo(
            "fasterrcnn_mobilenet_v3_large_320_fpn",
            "fasterrcnn",
            False,
            320,
            640,
            ("coco", "imagenet"),
            "Faster R-CNN, MobileNetV3-Large FPN at 320 px (COCO box AP 22.8); fastest two-stage model",
            tvd.fasterrcnn_mobilenet_v3_large_320_fpn,
            backbone="mobilenet",
            coco_url=tvd.FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1.url,
            imagenet_url=_MV3,
            trainable_layers=(3, 6),
        ),
        ModelInfo(
            "fasterrcnn_mobilenet_v2_fpn",
            "fasterrcnn",
            False,
            512,
            853,
            ("imagenet",),
            "Faster R-CNN, MobileNetV2 FPN; ImageNet backbone ships offline (the CPU demo model)",
            fasterrcnn_mobilenet_v2_fpn,
            backbone="mobilenet",
            imagenet_url=MobileNet_V2_Weights.IMAGENET1K_V1.url,
            trainable_layers=(3, 6),
        ),
        ModelInfo(
            "retinanet_resnet50_fpn",
            "retinanet",
            False,
            800,
            1333,
            ("coco", "imagenet"),
            "RetinaNet, ResNet-50 FPN (COCO box AP 36.4); one-stage with focal loss",
            tvd.retinanet_resnet50_fpn,
            coco_url=tvd.RetinaNet_ResNet50_FPN_Weights.COCO_V1.url,
            imagenet_url=_R50,
            coco_bn_eps=0.0,
        ),
        ModelInfo(
            "fcos_resnet50_fpn",
            "fcos",
            False,
            800,
            1333,
            ("coco", "imagenet"),
            "FCOS, ResNet-50 FPN (COCO box AP 39.2); anchor-free one-stage",
            tvd.fcos_resnet50_fpn,
            coco_url=tvd.FCOS_ResNet50_FPN_Weights.COCO_V1.url,
            imagenet_url=_R50,
        ),
        ModelInfo(
            "ssdlite320_mobilenet_v3_large",
            "ssd",
            False,
            320,
            320,
            ("coco",),
            "SSDlite, MobileNetV3-Large at a fixed 320x320 (COCO box AP 21.3); lowest latency",
            tvd.ssdlite320_mobilenet_v3_large,
            backbone="ssdlite",
            coco_url=tvd.SSDLite320_MobileNet_V3_Large_Weights.COCO_V1.url,
            frozen_bn=False,
            trainable_layers=(6, 6),
            fixed_size=True,
        ),
        ModelInfo(
            "maskrcnn_resnet50_fpn",
            "maskrcnn",
            True,
            800,
            1333,
            ("coco", "imagenet"),
            "Mask R-CNN, ResNet-50 FPN (COCO box AP 37.9, mask AP 34.6); boxes and instance masks",
            tvd.maskrcnn_resnet50_fpn,
            coco_url=tvd.MaskRCNN_ResNet50_FPN_Weights.COCO_V1.url,
            imagenet_url=_R50,
            coco_bn_eps=0.0,
        ),
    )
}
"""Every model detforge builds, in display order. SSDlite offers no ImageNet start: torchvision's
ImageNet-backbone SSDlite is a different graph (full MobileNetV3 tail) than its COCO model."""


REFERENCE_GFLOPS: dict[str, float] = {
    "fasterrcnn_resnet50_fpn": 355.2,
    "fasterrcnn_resnet50_fpn_v2": 669.8,
    "fasterrcnn_mobilenet_v3_large_fpn": 40.9,
    "fasterrcnn_mobilenet_v3_large_320_fpn": 6.3,
    "fasterrcnn_mobilenet_v2_fpn": 31.0,
    "retinanet_resnet50_fpn": 412.0,
    "fcos_resnet50_fpn": 348.6,
    "ssdlite320_mobilenet_v3_large": 1.2,
    "maskrcnn_resnet50_fpn": 461.6,
}
"""GFLOPs measured once with `count_gflops` (torch 2.14.1, torchvision 0.29.1, random weights, 91 classes,
one random image of `ModelRow.input_size` in eval mode, measured for this table). The RoI heads' share depends
on how many proposals and detections survive, so trained weights give somewhat different numbers."""


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


def _parameter_count(info: ModelInfo) -> int:
    """Parameters of the fine-tuning set-up (FrozenBatchNorm statistics are buffers), as torchvision reports them."""
    with torch.device("meta"):
        model = build_module(info, num_classes=91, setup=BackboneSetup(pretrained=True))
    return sum(p.numel() for p in model.parameters())


def model_table(*, measure_gflops: bool = False) -> list[ModelRow]:
    """One ModelRow per zoo model, in table order.

    gflops: counted now when `measure_gflops` (slow: builds and runs every model once), otherwise the
    value in REFERENCE_GFLOPS or None. Parameter counts (91 classes, FrozenBatchNorm where torchvision
    uses it) are exact and cheap (meta-device build).
    """
    rows = []
    for info in MODELS.values():
        gflops = count_gflops(info.name) if measure_gflops else REFERENCE_GFLOPS.get(info.name)
        rows.append(
            ModelRow(
                name=info.name,
                family=info.family,
                params=_parameter_count(info),
                gflops=None if gflops is None else round(gflops, 1),
                input_size=_default_input(info),
                pretrained=info.pretrained,
                has_masks=info.has_masks,
                description=info.description,
            )
        )
    return rows
