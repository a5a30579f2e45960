"""One evaluation of the validation subset: mean validation loss and COCO metrics in a single pass."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import torch
from torch import Tensor

from detforge.engine.result import EvalRecord
from detforge.evaluation import STAT_NAMES
from detforge.structures.detections import Detections, Target

__all__ = ["EVAL_SEED", "Evaluator", "ValidationModel", "run_evaluation"]

EVAL_SEED = 20_240_917
"""Evaluation runs under this fixed seed in a forked RNG: repeatable, and the training RNG is untouched."""


class ValidationModel(Protocol):
    """What evaluation needs from a detector (`detforge.models.Detector` has it)."""

    def validation_loss(self, images: list[Tensor], targets: list[Target]) -> dict[str, Tensor]: ...

    def predict(self, images: list[Tensor]) -> list[Detections]: ...


class Evaluator(Protocol):
    """The reset / process / evaluate protocol of `detforge.evaluation.CocoEvaluator`."""

    def reset(self) -> None: ...

    def process(self, image_ids: list[int], detections: list[Detections]) -> None: ...

    def evaluate(self) -> Any: ...


class _Batch(Protocol):
    images: list[Tensor]
    targets: list[Target]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Any: ...


def run_evaluation(
    model: ValidationModel,
    batches: Iterable[_Batch],
    evaluator: Evaluator,
    *,
    iteration: int,
    device: torch.device,
) -> EvalRecord:
    """Validation loss (mean over batches of each loss term, and their sum) and COCO metrics of `model`.

    Images and targets must be in the images' original pixel frame (no resizing transform), because
    the evaluator compares predictions with the dataset's own boxes. Module modes are left as they were.
    """
    sums: dict[str, float] = {}
    batches_seen = 0
    evaluator.reset()
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices), torch.no_grad():
        torch.manual_seed(EVAL_SEED)
        for batch in batches:
            batch = batch.to(device, non_blocking=True)
            losses = model.validation_loss(batch.images, batch.targets)
            for name, value in losses.items():
                sums[name] = sums.get(name, 0.0) + float(value)
            batches_seen += 1
            detections = model.predict(batch.images)
            evaluator.process([t.image_id for t in batch.targets], [d.cpu() for d in detections])
    val_losses = {name: total / max(batches_seen, 1) for name, total in sums.items()}
    coco = evaluator.evaluate()
    metrics = {name: float(getattr(coco, name)) for name in STAT_NAMES}
    per_class = {str(k): float(v) for k, v in dict(getattr(coco, "per_class_ap", {})).items()}
    return EvalRecord(iteration, sum(val_losses.values()), val_losses, metrics, per_class)
