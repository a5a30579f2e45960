"""TorchvisionDetector: the Detector of torchvision's detection models (Faster/Mask R-CNN, RetinaNet, FCOS, SSD).

detforge labels are 0..K-1; the wrapped torchvision model has K+1 classes with 0 = background, so
labels are shifted by one here and nowhere else. The model's own transform resizes the images.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from detforge.models.detector import DetectionParams, Detector
from detforge.structures.detections import Detections, Target

__all__ = ["BoxGraph", "MaskGraph", "TorchvisionDetector"]

_MASK_THRESHOLD = 0.5


class BoxGraph(nn.Module):
    """A torchvision box detector as the export graph: image [3, H, W] -> (boxes, labels 0..K-1, scores)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        # scripted torchvision detectors return (losses, detections), eager ones the detections
        out = self.model([image])[1][0] if torch.jit.is_scripting() else self.model([image])[0]
        keep = torch.nonzero(out["labels"] > 0).flatten()  # label 0 is torchvision's background slot
        return out["boxes"][keep], out["labels"][keep] - 1, out["scores"][keep]


class MaskGraph(nn.Module):
    """A torchvision mask detector as the export graph: (boxes, labels 0..K-1, scores, masks [N, 1, H, W])."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        # scripted torchvision detectors return (losses, detections), eager ones the detections
        out = self.model([image])[1][0] if torch.jit.is_scripting() else self.model([image])[0]
        keep = torch.nonzero(out["labels"] > 0).flatten()
        return out["boxes"][keep], out["labels"][keep] - 1, out["scores"][keep], out["masks"][keep]


class TorchvisionDetector(Detector):
    """A torchvision detection model (`self.model`, K+1 classes with background 0) as a Detector."""

    @property
    def min_size(self) -> int:
        transform: Any = self.model.get_submodule("transform")
        return int(transform.min_size[0])

    @property
    def max_size(self) -> int:
        transform: Any = self.model.get_submodule("transform")
        return int(transform.max_size)

    def _postprocessor(self) -> Any:
        """The module holding score_thresh / nms_thresh / detections_per_img (RoI heads of two-stage models)."""
        return self.model.get_submodule("roi_heads") if hasattr(self.model, "roi_heads") else self.model

    @property
    def detection_params(self) -> DetectionParams:
        p = self._postprocessor()
        return DetectionParams(float(p.score_thresh), float(p.nms_thresh), int(p.detections_per_img))

    @detection_params.setter
    def detection_params(self, params: DetectionParams) -> None:
        p = self._postprocessor()
        p.score_thresh = params.score_thresh
        p.nms_thresh = params.nms_thresh
        p.detections_per_img = params.detections_per_img

    def with_detection_params(self, params: DetectionParams) -> TorchvisionDetector:
        model = copy.copy(self.model)  # own attribute dict; parameters, buffers and submodules shared
        if hasattr(self.model, "roi_heads"):  # two-stage: the thresholds live on a submodule
            model._modules = dict(self.model._modules)
            model._modules["roi_heads"] = copy.copy(self.model.get_submodule("roi_heads"))
        clone = TorchvisionDetector(
            model, name=self.name, num_classes=self.num_classes, has_masks=self.has_masks, setup=self.setup
        )
        clone.training = self.training  # the flag only: train() would reset every shared submodule
        clone.detection_params = params
        return clone

    def _converted(self, images: list[Tensor], targets: list[Target]) -> list[dict[str, Tensor]]:
        out = []
        for image, target in zip(images, targets, strict=True):
            converted = {"boxes": target.boxes, "labels": target.labels + 1}
            if self.has_masks:
                converted["masks"] = self._masks(image, target).to(image.device)
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

    def _losses(self, images: list[Tensor], targets: list[Target]) -> dict[str, Tensor]:
        losses: dict[str, Tensor] = self.model(images, self._converted(images, targets))
        return losses

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

    def _predict(self, images: list[Tensor]) -> list[Detections]:
        """Exactly torchvision's output with labels shifted down by one, minus any detection torchvision
        labels 0 (background; RetinaNet and FCOS can emit it from an untrained class-0 slot)."""
        outputs = self.model(images)
        return [self._detections(o, image) for o, image in zip(outputs, images, strict=True)]

    def export_graph(self) -> nn.Module:
        model = self.model.cpu().eval()
        return (MaskGraph(model) if self.has_masks else BoxGraph(model)).eval()
