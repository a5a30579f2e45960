"""Detector: the one interface the trainer, evaluator, predictor, exporter and service use, whatever the family.

A family implements it in its own module (`torchvision_detector.TorchvisionDetector` for torchvision's
detection models, `onestage.detector.OneStageDetector` for detforge's one-stage models): the network
(`model`, whose state dict is what an artifact stores), its input size bounds, its post-processing
parameters, training losses, predictions and its export graph. Labels are 0..K-1 everywhere outside a
family's module. Training losses, validation losses and predictions are three explicit methods rather
than one `forward` whose result depends on `self.training`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.modules.dropout import _DropoutNd

from detforge.models.torchvision_graphs import BackboneSetup
from detforge.structures.detections import Detections, Target
from detforge.thresholds import EVAL_SCORE_THRESHOLD

__all__ = ["DetectionParams", "Detector"]

_VALIDATION_SEED = 0


@dataclass(frozen=True)
class DetectionParams:
    """Post-processing of predictions. score_thresh: minimum score in [0, 1) kept (the default,
    `EVAL_SCORE_THRESHOLD`, suits evaluation; deployment thresholds are applied later); nms_thresh: IoU
    in (0, 1] above which same-class boxes are suppressed; detections_per_img: at most this many
    detections per image (>= 1)."""

    score_thresh: float = EVAL_SCORE_THRESHOLD
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


class Detector(nn.Module, ABC):
    """A detection network (`self.model`) behind typed methods; one subclass per model family.

    Images: float32 [3, H, W] in [0, 1], any sizes; the family resizes them (shorter side `min_size`,
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

    # -- what a family provides -----------------------------------------------------------------
    @property
    @abstractmethod
    def min_size(self) -> int:
        """Shorter side (px) images are resized to inside the model."""

    @property
    @abstractmethod
    def max_size(self) -> int:
        """Upper bound (px) of the longer side after resizing."""

    @property
    @abstractmethod
    def detection_params(self) -> DetectionParams:
        """Score threshold, NMS IoU and detections-per-image of `predict`; settable."""

    @detection_params.setter
    @abstractmethod
    def detection_params(self, params: DetectionParams) -> None: ...

    @abstractmethod
    def with_detection_params(self, params: DetectionParams) -> Detector:
        """A Detector that shares this one's weights and modules (no tensor is copied) but predicts with
        `params`; this one keeps its own. Moving or training either moves or trains both."""

    @abstractmethod
    def _losses(self, images: list[Tensor], targets: list[Target]) -> dict[str, Tensor]:
        """Loss terms of checked images (on the model's device) and checked targets (same device)."""

    @abstractmethod
    def _predict(self, images: list[Tensor]) -> list[Detections]:
        """Detections of checked images; called in eval mode without gradients."""

    @abstractmethod
    def export_graph(self) -> nn.Module:
        """The deployment graph (CPU, eval): `forward(image float32 [3, H, W] in [0, 1])` -> (boxes [N, 4] XYXY px
        of the image, labels int64 [N] in 0..K-1, scores [N]) plus masks [N, 1, H, W] probabilities for mask
        models, with this detector's post-processing inside."""

    def script_graph(self) -> torch.jit.ScriptModule:
        """`export_graph()` as TorchScript (scripted; families whose graph is traced override this)."""
        scripted: torch.jit.ScriptModule = torch.jit.script(self.export_graph())
        return scripted

    # -- shared ---------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _images(self, images: Sequence[Tensor]) -> list[Tensor]:
        device = self.device
        out = []
        for i, image in enumerate(images):
            if not isinstance(image, Tensor) or image.ndim != 3 or image.shape[0] != 3 or not image.is_floating_point():
                what = f"{image.dtype} {list(image.shape)}" if isinstance(image, Tensor) else type(image).__name__
                raise ValueError(f"images[{i}]: expected a float [3, H, W] tensor in [0, 1], got {what}")
            out.append(image.to(device))
        return out

    def _targets(self, images: list[Tensor], targets: Sequence[Target]) -> list[Target]:
        if len(images) != len(targets):
            raise ValueError(f"expected one target per image, got {len(images)} images and {len(targets)} targets")
        for target in targets:
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
        return [t.to(self.device) for t in targets]

    # -- the three verbs ------------------------------------------------------------------------
    def forward_loss(self, images: Sequence[Tensor], targets: Sequence[Target]) -> dict[str, Tensor]:
        """Training loss terms (scalar tensors with grad) of a batch; call in train mode.

        Targets hold XYXY pixel boxes of the given images, labels 0..K-1; images without boxes are fine.
        """
        if not self.training:
            raise RuntimeError("Detector.forward_loss needs train mode (call detector.train()); use validation_loss")
        batch = self._images(images)
        return self._losses(batch, self._targets(batch, targets))

    def validation_loss(self, images: Sequence[Tensor], targets: Sequence[Target]) -> dict[str, Tensor]:
        """The same loss terms as `forward_loss`, without gradients, without touching BatchNorm statistics or
        using dropout, and with a fixed seed for any sampling (the global RNG is left as it was).
        Module modes are restored afterwards."""
        batch = self._images(images)
        checked = self._targets(batch, targets)
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
            return self._losses(batch, checked)

    def predict(self, images: Sequence[Tensor]) -> list[Detections]:
        """Detections per image (eval mode, no grad): XYXY boxes in that image's pixel frame, labels 0..K-1,
        scores sorted descending, bool [N, H, W] masks (probability > 0.5) for mask models; tensors on the
        model's device."""
        if not images:
            return []
        batch = self._images(images)
        with torch.no_grad(), _modes(self.model, training=False):
            return self._predict(batch)

    def forward(self, images: Sequence[Tensor]) -> list[Detections]:
        """Same as `predict`."""
        return self.predict(images)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, num_classes={self.num_classes}, min_size={self.min_size}, max_size={self.max_size}"
