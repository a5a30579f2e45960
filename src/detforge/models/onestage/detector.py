"""OneStageDetector: the Detector of detforge's one-stage family (OneStageNet + ATSS/GFL losses + NMS)."""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

from detforge.models.detector import DetectionParams, Detector
from detforge.models.onestage.graph import OneStageGraph
from detforge.models.onestage.loss import LossWeights, one_stage_losses
from detforge.models.onestage.model import OneStageNet, anchor_points, level_sizes
from detforge.models.onestage.postprocess import select_detections
from detforge.models.onestage.preprocess import make_batch
from detforge.models.torchvision_graphs import BackboneSetup
from detforge.structures.detections import Detections, Target

__all__ = ["OneStageDetector"]

_TRACE_SIZE = (3, 96, 128)  # the sample image the TorchScript graph is traced with (any size works after)


class OneStageDetector(Detector):
    """OneStageNet behind the Detector interface. Images are resized (shorter side `min_size`, longer side at
    most `max_size`), normalised and padded to multiples of 32 as one batch; labels are 0..K-1 throughout."""

    def __init__(
        self,
        model: OneStageNet,
        *,
        name: str,
        num_classes: int,
        setup: BackboneSetup,
        min_size: int,
        max_size: int,
        params: DetectionParams = DetectionParams(),
        loss_weights: LossWeights = LossWeights(),
    ) -> None:
        super().__init__(model, name=name, num_classes=num_classes, has_masks=False, setup=setup)
        if not 0 < min_size <= max_size:
            raise ValueError(f"OneStageDetector: expected 0 < min_size <= max_size, got {min_size}, {max_size}")
        self._min_size, self._max_size = min_size, max_size
        self._params = params
        self.loss_weights = loss_weights

    @property
    def net(self) -> OneStageNet:
        """The network (`self.model`), typed."""
        return cast(OneStageNet, self.model)

    @property
    def min_size(self) -> int:
        return self._min_size

    @property
    def max_size(self) -> int:
        return self._max_size

    @property
    def detection_params(self) -> DetectionParams:
        return self._params

    @detection_params.setter
    def detection_params(self, params: DetectionParams) -> None:
        self._params = params

    def with_detection_params(self, params: DetectionParams) -> OneStageDetector:
        clone = OneStageDetector(
            self.net,
            name=self.name,
            num_classes=self.num_classes,
            setup=self.setup,
            min_size=self._min_size,
            max_size=self._max_size,
            params=params,
            loss_weights=self.loss_weights,
        )
        clone.training = self.training  # the flag only: train() would reset every shared submodule
        return clone

    def _losses(self, images: list[Tensor], targets: list[Target]) -> dict[str, Tensor]:
        batch = make_batch(images, self._min_size, self._max_size)
        output = self.net(batch.tensor)
        height, width = batch.tensor.shape[-2:]
        points, strides = anchor_points(height, width, device=batch.tensor.device)
        boxes = []
        for target, (fy, fx) in zip(targets, batch.factors, strict=True):
            boxes.append(target.boxes * torch.tensor([fx, fy, fx, fy], device=target.boxes.device))
        labels = [t.labels for t in targets]
        return one_stage_losses(
            output, points, strides, level_sizes(height, width), boxes, labels, weights=self.loss_weights
        )

    def _predict(self, images: list[Tensor]) -> list[Detections]:
        batch = make_batch(images, self._min_size, self._max_size)
        output = self.net(batch.tensor)
        height, width = batch.tensor.shape[-2:]
        points, strides = anchor_points(height, width, device=batch.tensor.device)
        params = self._params
        out = []
        for i, (image, size) in enumerate(zip(images, batch.sizes, strict=True)):
            raw = select_detections(
                output.cls[i].float(),
                output.reg[i].float(),
                points,
                strides,
                size,
                score_thresh=params.score_thresh,
                nms_thresh=params.nms_thresh,
                detections_per_img=params.detections_per_img,
            )
            original = (int(image.shape[-2]), int(image.shape[-1]))
            back = torch.tensor(
                [original[1] / size[1], original[0] / size[0]] * 2, dtype=raw.boxes.dtype, device=raw.boxes.device
            )
            out.append(Detections(raw.boxes * back, raw.labels, raw.scores, original))
        return out

    def export_graph(self) -> nn.Module:
        return OneStageGraph(self.net.cpu().eval(), self._min_size, self._max_size, self._params).eval()

    def script_graph(self) -> torch.jit.ScriptModule:
        """The export graph traced on a sample image: every size is computed in the graph, so it takes any
        H and W (the parity check runs it on other sizes)."""
        sample = torch.rand(_TRACE_SIZE, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            traced: torch.jit.ScriptModule = torch.jit.trace(self.export_graph(), (sample,), check_trace=False)
        return traced
