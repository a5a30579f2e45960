"""Training engine: the loop, its hooks, optimizer and schedules, checkpoints, logs, distributed runs."""

from detforge.engine.result import EvalRecord, StopReason, TrainingDiverged, TrainResult
from detforge.engine.train_job import train_from_config

__all__ = ["EvalRecord", "StopReason", "TrainResult", "TrainingDiverged", "train_from_config"]
