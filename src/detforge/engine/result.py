"""What a training run returns (and writes to `out_dir/result.json`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from detforge.errors import DetforgeError

if TYPE_CHECKING:
    from detforge.engine.reading import ReadOutcome

__all__ = ["EvalRecord", "StopReason", "TrainResult", "TrainingDiverged"]

StopReason = Literal["max_iter", "time_budget", "early_stopping", "non_finite_loss"]


class TrainingDiverged(DetforgeError):
    """The loss became NaN or infinite; the message names the iteration and every loss term."""


@dataclass(frozen=True)
class EvalRecord:
    """One evaluation of the validation subset at `iteration`.

    `val_loss` is the mean total loss per image batch, `val_losses` each term; `metrics` the COCO numbers
    (ap, ap50, ap75, ap_small, ... as floats; -1 where COCO has no data) and `per_class_ap` by class name.
    """

    iteration: int
    val_loss: float
    val_losses: dict[str, float]
    metrics: dict[str, float]
    per_class_ap: dict[str, float] = field(default_factory=dict)

    def value(self, metric: str) -> float:
        """The value of the selection metric ("val_loss", "ap", "ap50", ...)."""
        return self.val_loss if metric == "val_loss" else self.metrics[metric]

    def to_json(self) -> dict[str, Any]:
        return {
            "iteration": self.iteration,
            "val_loss": self.val_loss,
            **{f"val_{k}": v for k, v in self.val_losses.items()},
            **self.metrics,
            "per_class_ap": dict(self.per_class_ap),
        }


@dataclass(frozen=True)
class TrainResult:
    """The outcome of `train_from_config`.

    `best_checkpoint` is None when nothing was evaluated (no validation subset): `model_path` is then
    made from the last weights. `best_metric` is the value of `metric` at `best_iteration`.
    `final_metrics` is the last evaluation (None without a validation subset). `read` is how the model
    reads text (settings stored in model.pt, accuracy on the validation boxes), None when it does not.
    """

    out_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path | None
    model_path: Path
    metric: str
    best_metric: float | None
    best_iteration: int | None
    iterations: int
    stop_reason: StopReason
    final_metrics: EvalRecord | None
    read: ReadOutcome | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "last_checkpoint": str(self.last_checkpoint),
            "best_checkpoint": None if self.best_checkpoint is None else str(self.best_checkpoint),
            "model_path": str(self.model_path),
            "metric": self.metric,
            "best_metric": self.best_metric,
            "best_iteration": self.best_iteration,
            "iterations": self.iterations,
            "stop_reason": self.stop_reason,
            "final_metrics": None if self.final_metrics is None else self.final_metrics.to_json(),
            "read": None if self.read is None else self.read.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainResult:
        final = data.get("final_metrics")
        record = None
        if final is not None:
            final = dict(final)
            per_class = final.pop("per_class_ap", {})
            iteration = final.pop("iteration")
            val_loss = final.pop("val_loss")
            val_losses = {k[4:]: v for k, v in final.items() if k.startswith("val_")}
            metrics = {k: v for k, v in final.items() if not k.startswith("val_")}
            record = EvalRecord(iteration, val_loss, val_losses, metrics, per_class)
        read = None
        if data.get("read") is not None:
            from detforge.engine.reading import ReadOutcome

            read = ReadOutcome.from_json(data["read"])
        return cls(
            out_dir=Path(data["out_dir"]),
            last_checkpoint=Path(data["last_checkpoint"]),
            best_checkpoint=None if data["best_checkpoint"] is None else Path(data["best_checkpoint"]),
            model_path=Path(data["model_path"]),
            metric=data["metric"],
            best_metric=data["best_metric"],
            best_iteration=data["best_iteration"],
            iterations=data["iterations"],
            stop_reason=data["stop_reason"],
            final_metrics=record,
            read=read,
        )
