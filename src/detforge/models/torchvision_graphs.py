"""torchvision module graphs for the zoo: the MobileNetV2-FPN builder and the fine-tuning set-up.

Every zoo model is built by its torchvision builder without weights (trainable BatchNorm, every
layer trainable). `BackboneSetup(pretrained=True)` then gives the graph torchvision itself builds
when it starts from weights: the backbone's BatchNorm2d become FrozenBatchNorm2d (for the models
where torchvision does that) and the first stages are frozen per `trainable_backbone_layers`.
Building the same graph without the weights file lets a local checkpoint or a detforge artifact
be loaded into it offline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn
from torchvision.models import MobileNet_V2_Weights
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import _validate_trainable_layers, mobilenet_backbone
from torchvision.ops.misc import FrozenBatchNorm2d

from detforge.errors import ConfigError
from detforge.models.info import ModelInfo

__all__ = [
    "BackboneSetup",
    "apply_backbone_setup",
    "build_module",
    "check_trainable_layers",
    "fasterrcnn_mobilenet_v2_fpn",
]

_V2_RETURNED_STAGES = [2, 3, 5]  # outputs at strides 8, 16, 32 (+ max-pool level at 64)
_V2_ANCHOR_SIZES = ((16, 24, 32), (48, 64, 96), (128, 160, 192), (256, 384, 512))


def fasterrcnn_mobilenet_v2_fpn(
    *,
    weights: None = None,
    progress: bool = True,
    num_classes: int | None = None,
    weights_backbone: MobileNet_V2_Weights | None = None,
    trainable_backbone_layers: int | None = None,
    **kwargs: Any,
) -> FasterRCNN:
    """Faster R-CNN on torchvision's MobileNetV2 + FPN (`mobilenet_backbone`), torchvision builder style.

    FPN levels at strides 8, 16, 32 and 64 with anchors of 16-32, 48-96, 128-192 and 256-512 px (small
    objects matter on CPU, where images are fed small) and aspect ratios 0.5, 1, 2. CPU-minded
    proposal budget (the box head dominates the cost on CPU): 1000/500 proposals before/after NMS
    and 128 sampled RoIs per image in training (as Detectron2's small-data tutorial), 300 at test.
    Defaults: min_size 512, max_size 853, rpn_score_thresh 0.05; `kwargs` go to FasterRCNN.
    No COCO weights exist for it (`weights` must be None); `weights_backbone` takes the ImageNet
    classifier weights, in which case BatchNorm is frozen and 3 of 6 stages train by default.
    """
    if weights is not None:
        raise ValueError("fasterrcnn_mobilenet_v2_fpn has no detector weights; use weights_backbone")
    weights_backbone = MobileNet_V2_Weights.verify(weights_backbone)
    is_trained = weights_backbone is not None
    trainable = _validate_trainable_layers(is_trained, trainable_backbone_layers, 6, 3)
    norm_layer = FrozenBatchNorm2d if is_trained else nn.BatchNorm2d
    backbone = mobilenet_backbone(
        backbone_name="mobilenet_v2",
        weights=weights_backbone,
        fpn=True,
        norm_layer=norm_layer,
        trainable_layers=trainable,
        returned_layers=_V2_RETURNED_STAGES,
    )
    anchors = AnchorGenerator(_V2_ANCHOR_SIZES, ((0.5, 1.0, 2.0),) * len(_V2_ANCHOR_SIZES))
    defaults: dict[str, Any] = {
        "min_size": 512,
        "max_size": 853,
        "rpn_score_thresh": 0.05,
        "rpn_post_nms_top_n_test": 300,
        "rpn_pre_nms_top_n_train": 1000,
        "rpn_post_nms_top_n_train": 500,
        "box_batch_size_per_image": 128,
    }
    classes = 91 if num_classes is None else num_classes
    return FasterRCNN(backbone, classes, rpn_anchor_generator=anchors, **{**defaults, **kwargs})


@dataclass(frozen=True)
class BackboneSetup:
    """How a backbone is set up; with the model name it fixes the module graph and the trainable set.

    pretrained=False: trainable BatchNorm and every layer trains (right for random initialisation).
    pretrained=True: torchvision's fine-tuning set-up: FrozenBatchNorm2d with `frozen_bn_eps` (models
    whose torchvision builder freezes it) and only the last `trainable_layers` backbone stages train
    (None = the model's default).
    """

    pretrained: bool
    trainable_layers: int | None = None
    frozen_bn_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.trainable_layers is not None and self.trainable_layers < 0:
            raise ValueError(f"BackboneSetup.trainable_layers: expected >= 0 or None, got {self.trainable_layers}")
        if not self.frozen_bn_eps >= 0:
            raise ValueError(f"BackboneSetup.frozen_bn_eps: expected >= 0, got {self.frozen_bn_eps}")


def build_module(
    info: ModelInfo,
    *,
    num_classes: int,
    setup: BackboneSetup,
    min_size: int | None = None,
    max_size: int | None = None,
) -> nn.Module:
    """The torchvision detector for `info` with `num_classes` outputs (background included), no weights loaded.

    min_size/max_size: resize bounds of the model's transform (None = the model's default); models with a
    fixed input (SSDlite 320x320) accept only None or their fixed size. Raises ConfigError for bad values.
    """
    kwargs: dict[str, Any] = {}
    if info.fixed_size:
        for key, value in (("min_size", min_size), ("max_size", max_size)):
            if value is not None and value != info.default_min_size:
                raise ConfigError(
                    f"model.{key}: {info.name} takes a fixed {info.default_min_size}x{info.default_min_size} input, "
                    f"got {value}; leave it unset"
                )
    else:
        if min_size is not None:
            kwargs["min_size"] = min_size
        if max_size is not None:
            kwargs["max_size"] = max_size
    check_trainable_layers(info, setup)
    builder: Callable[..., nn.Module] = info.builder
    model = builder(weights=None, weights_backbone=None, num_classes=num_classes, **kwargs)
    if info.backbone != "ssdlite":
        apply_backbone_setup(model.get_submodule("backbone.body"), info, setup)
    return model


def apply_backbone_setup(body: nn.Module, info: ModelInfo, setup: BackboneSetup) -> None:
    """Give a ResNet or MobileNet backbone body torchvision's fine-tuning set-up when `setup.pretrained`:
    FrozenBatchNorm2d (when `info.frozen_bn`) and all but the last `trainable_layers` stages frozen. A body
    without pretrained weights is left as built (trainable BatchNorm, every stage trains)."""
    trainable = check_trainable_layers(info, setup)
    if setup.pretrained:
        if info.frozen_bn:
            _freeze_batchnorm(body, setup.frozen_bn_eps)
        _freeze_stages(body, info.backbone, trainable)


def check_trainable_layers(info: ModelInfo, setup: BackboneSetup) -> int:
    """The backbone stages that train for `setup` (ConfigError when more than the model has)."""
    default, maximum = info.trainable_layers
    value = setup.trainable_layers
    if value is not None and value > maximum:
        raise ConfigError(f"model.trainable_backbone_layers: {info.name} has {maximum} backbone stages, got {value}")
    if not setup.pretrained:
        return maximum
    if info.backbone == "ssdlite" and value not in (None, maximum):
        raise ConfigError(
            f"model.trainable_backbone_layers: {info.name} supports only {maximum} (all stages train), got {value}"
        )
    return default if value is None else value


def _freeze_batchnorm(module: nn.Module, eps: float) -> None:
    """Replace every BatchNorm2d under `module` by a FrozenBatchNorm2d holding the same statistics."""
    for name, child in list(module.named_children()):
        if type(child) is nn.BatchNorm2d:
            frozen = FrozenBatchNorm2d(child.num_features, eps=eps)
            for buffer in ("weight", "bias", "running_mean", "running_var"):
                source = getattr(child, buffer)
                if source is not None:
                    getattr(frozen, buffer).copy_(source.detach())
            setattr(module, name, frozen)
        else:
            _freeze_batchnorm(child, eps)


def _freeze_stages(body: nn.Module, kind: str, trainable: int) -> None:
    """Stop gradients in all but the last `trainable` stages of a backbone body, as torchvision's extractors do."""
    children = list(body.named_children())
    if kind == "resnet":
        stems = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable] + (["bn1"] if trainable == 5 else [])
        frozen = [module for name, module in children if name not in stems]
    else:  # mobilenet features: stages start at the strided blocks, as in torchvision's _mobilenet_extractor
        blocks = [module for _, module in children]
        starts = [0] + [i for i, b in enumerate(blocks) if getattr(b, "_is_cn", False)] + [len(blocks) - 1]
        freeze_before = len(blocks) if trainable == 0 else starts[len(starts) - trainable]
        frozen = blocks[:freeze_before]
    for module in frozen:
        for parameter in module.parameters():
            parameter.requires_grad_(False)
