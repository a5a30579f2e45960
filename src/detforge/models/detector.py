"""Detector: the one adapter between detforge's typed Target/Detections and torchvision's List[Dict] API.

detforge labels are 0..K-1; the wrapped torchvision model has K+1 classes with 0 = background, so
labels are shifted by one here and nowhere else. Training losses, validation losses and predictions
are three explicit methods rather than one `forward` whose result depends on `self.training`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.modules.dropout import _DropoutNd

from detforge.models.torchvision_graphs import BackboneSetup
from detforge.structures.detections import Detections, Target

__all__ = ["DetectionParams", "Detector"]

_MASK_THRESHOLD = 0.5
_VALIDATION_SEED = 0


@dataclass(frozen=True)
class DetectionParams:
    """Post-processing of predictions. score_thresh: minimum score in [0, 1) kept (0.05 suits evaluation;
    deployment thresholds are applied later); nms_thresh: IoU in (0, 1] above which same-class boxes are
    suppressed; detections_per_img: at most this many detections per image (>= 1)."""

    score_thresh: float = 0.05
    nms_thresh: float = 0.5
    detections_per_img: int = 100

    def __post_init__(self) -> None:
        if not 0.0 <= self.score_thresh < 1.0:
            raise ValueError(f"DetectionParams.score_thresh: expected a value in [0, 1), got {self.score_thresh}")
        if not 0.0 < self.nms_thresh <= 1.0:
            raise ValueError(f"DetectionParams.nms_thresh: expected a value in (0, 1], got {self.nms_thresh}")
        if self.detections_per_img < 1:
            raise ValueError(f"DetectionParams.detections_per_img: expected >= 1, got {self.detections_per_img}")


@contextmanager
def _modes(module: nn.Module, *, training: bool, freeze_statistics: bool = False) -> Iterator[None]:
    """Run with `module.train(training)` (norm/dropout layers in eval when `freeze_statistics`); restore after."""
    saved = [(m, m.training) for m in module.modules()]
    try:
        module.train(training)
        if freeze_statistics:
            for m in module.modules():
                if isinstance(m, (_NormBase, _DropoutNd)):
                    m.eval()
        yield
    finally:
        for m, mode in saved:
            m.training = mode


class Detector(nn.Module):
    """A torchvision detection model (`self.model`) behind typed methods.

    Images: float32 [3, H, W] in [0, 1], any sizes; the model resizes them (shorter side `min_size`,
    longer side at most `max_size`) and maps predictions back to each image's pixel frame.
    """

    def __init__(self, model: nn.Module, *, name: str, num_classes: int, has_masks: bool, setup: BackboneSetup) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"Detector.num_classes: expected >= 1, got {num_classes}")
        self.model = model
        self.name = name
        self.num_classes = num_classes
        self.has_masks = has_masks
        self.setup = setup

    # -- properties -----------------------------------------------------------------------------
    @property
    def min_size(self) -> int:
        """Shorter side (px) images are resized to inside the model."""
        transform: Any = self.model.get_submodule("transform")
        return int(transform.min_size[0])

    @property
    def max_size(self) -> int:
        """Upper bound (px) of the longer side after resizing."""
        transform: Any = self.model.get_submodule("transform")
        return int(transform.max_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _postprocessor(self) -> Any:
        """The module holding score_thresh / nms_thresh / detections_per_img (RoI heads of two-stage models)."""
        return self.model.get_submodule("roi_heads") if hasattr(self.model, "roi_heads") else self.model

    @property
    def detection_params(self) -> DetectionParams:
        """Score threshold, NMS IoU and detections-per-image of `predict`; settable."""
        p = self._postprocessor()
        return DetectionParams(float(p.score_thresh), float(p.nms_thresh), int(p.detections_per_img))

    @detection_params.setter
    def detection_params(self, params: DetectionParams) -> None:
        p = self._postprocessor()
        p.score_thresh = params.score_thresh
        p.nms_thresh = params.nms_thresh
        p.detections_per_img = params.detections_per_img

    def with_detection_params(self, params: DetectionParams) -> Detector:
        """A Detector that shares this one's weights and modules (no tensor is copied) but predicts with
        `params`; this one keeps its own. Moving or training either moves or trains both."""
        model = copy.copy(self.model)  # own attribute dict; parameters, buffers and submodules shared
        if hasattr(self.model, "roi_heads"):  # two-stage: the thresholds live on a submodule
            model._modules = dict(self.model._modules)
            model._modules["roi_heads"] = copy.copy(self.model.get_submodule("roi_heads"))
        clone = Detector(
            model, name=self.name, num_classes=self.num_classes, has_masks=self.has_masks, setup=self.setup
        )
        clone.training = self.training  # the flag only: train() would reset every shared submodule
        clone.detection_params = params
        return clone

    # -- conversion -----------------------------------------------------------------------------
    def _images(self, images: Sequence[Tensor]) -> list[Tensor]:
        device = self.device
        out = []
        for i, image in enumerate(images):
            if not isinstance(image, Tensor) or image.ndim != 3 or image.shape[0] != 3 or not image.is_floating_point():
                what = f"{image.dtype} {list(image.shape)}" if isinstance(image, Tensor) else type(image).__name__
                raise ValueError(f"images[{i}]: expected a float [3, H, W] tensor in [0, 1], got {what}")
            out.append(image.to(device))
        return out

    def _targets(self, images: list[Tensor], targets: Sequence[Target]) -> list[dict[str, Tensor]]:
        if len(images) != len(targets):
            raise ValueError(f"expected one target per image, got {len(images)} images and {len(targets)} targets")
        device = self.device
        out = []
        for image, target in zip(images, targets, strict=True):
            labels = target.labels
            if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
                raise ValueError(
                    f"image {target.image_id}: labels must be in 0..{self.num_classes - 1}, got {labels.tolist()}"
                )
            boxes = target.boxes
            bad = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
            if bool(bad.any()):
                raise ValueError(
                    f"image {target.image_id}: boxes need x2 > x1 and y2 > y1 (XYXY pixels), got {boxes[bad].tolist()}"
                )
            converted = {"boxes": boxes.to(device), "labels": labels.to(device) + 1}
            if self.has_masks:
                converted["masks"] = self._masks(image, target).to(device)
            out.append(converted)
        return out

    def _masks(self, image: Tensor, target: Target) -> Tensor:
        size = tuple(image.shape[-2:])
        masks = target.masks
        if masks is None:
            if target.boxes.shape[0]:
                raise ValueError(f"image {target.image_id}: {self.name} trains on masks; the target has none")
            return torch.zeros((0, *size), dtype=torch.uint8)
        if tuple(masks.shape[-2:]) != size:
            raise ValueError(f"image {target.image_id}: masks are {list(masks.shape[-2:])}, the image is {list(size)}")
        return masks.to(torch.uint8)

    def _detections(self, output: dict[str, Tensor], image: Tensor) -> Detections:
        labels = output["labels"]
        scores = output["scores"].float()
        # RetinaNet/FCOS score their unused class-0 (background) slot too; such detections are not classes.
        keep = torch.nonzero(labels > 0).flatten()
        order = keep[torch.argsort(scores[keep], descending=True, stable=True)]
        masks = output.get("masks")
        return Detections(
            boxes=output["boxes"][order].float(),
            labels=labels[order].long() - 1,
            scores=scores[order],
            image_size=(int(image.shape[-2]), int(image.shape[-1])),
            masks=None if masks is None else masks[order, 0] > _MASK_THRESHOLD,
        )

    # -- the three verbs ------------------------------------------------------------------------
    def forward_loss(self, images: Sequence[Tensor], targets: Sequence[Target]) -> dict[str, Tensor]:
        """Training loss terms (scalar tensors with grad) of a batch; call in train mode.

        Targets hold XYXY pixel boxes of the given images, labels 0..K-1; images without boxes are fine.
        """
        if not self.training:
            raise RuntimeError("Detector.forward_loss needs train mode (call detector.train()); use validation_loss")
        batch = self._images(images)
        losses: dict[str, Tensor] = self.model(batch, self._targets(batch, targets))
        return losses

    def validation_loss(self, images: Sequence[Tensor], targets: Sequence[Target]) -> dict[str, Tensor]:
        """The same loss terms as `forward_loss`, without gradients, without touching BatchNorm statistics or
        using dropout, and with a fixed seed for the proposal sampling (the global RNG is left as it was).
        Module modes are restored afterwards."""
        batch = self._images(images)
        converted = self._targets(batch, targets)
        device = self.device
        cuda = device.type == "cuda"
        with (
            torch.no_grad(),
            torch.random.fork_rng(devices=[device] if cuda else [], device_type="cuda" if cuda else "cpu"),
            _modes(self.model, training=True, freeze_statistics=True),
        ):
            torch.default_generator.manual_seed(_VALIDATION_SEED)
            if cuda:
                index = torch.cuda.current_device() if device.index is None else device.index
                torch.cuda.default_generators[index].manual_seed(_VALIDATION_SEED)
            losses: dict[str, Tensor] = self.model(batch, converted)
        return losses

    def predict(self, images: Sequence[Tensor]) -> list[Detections]:
        """Detections per image (eval mode, no grad): XYXY boxes in that image's pixel frame, labels 0..K-1,
        scores sorted descending, bool [N, H, W] masks (probability > 0.5) for mask models; tensors on the
        model's device. Exactly torchvision's output with labels shifted down by one, minus any detection
        torchvision labels 0 (background; RetinaNet and FCOS can emit it from an untrained class-0 slot)."""
        if not images:
            return []
        batch = self._images(images)
        with torch.no_grad(), _modes(self.model, training=False):
            outputs = self.model(batch)
        return [self._detections(o, image) for o, image in zip(outputs, batch, strict=True)]

    def forward(self, images: Sequence[Tensor]) -> list[Detections]:
        """Same as `predict`."""
        return self.predict(images)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, num_classes={self.num_classes}, min_size={self.min_size}, max_size={self.max_size}"
