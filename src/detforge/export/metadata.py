"""What an exported model carries besides its graph: classes, input size, thresholds, provenance.

The same `ExportMetadata` is stored in an ONNX file's `metadata_props` (one JSON string per key) and in a
TorchScript archive's extra file `detforge.json`, so every backend reads one validated dataclass.
This module needs neither torch nor onnx at import time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from detforge.errors import ConfigError, DetforgeError
from detforge.reading.settings import ReadSettings
from detforge.thresholds import DEFAULT_SCORE_THRESHOLD

__all__ = ["FORMATS", "METADATA_KEYS", "OPTIONAL_METADATA_KEYS", "ExportError", "ExportMetadata"]

FORMATS = ("onnx", "torchscript", "artifact")


class ExportError(DetforgeError, RuntimeError):
    """An export, an exported file or the parity check between an exported model and PyTorch failed."""


@dataclass(frozen=True)
class ExportMetadata:
    """Everything needed to use an exported detector without its detforge artifact.

    model_name: zoo name; class_names[i] <-> category_ids[i] <-> label i (labels 0..K-1, no background);
    min_size / max_size: the resize bounds (px) baked into the graph; score_threshold: the deployment
    threshold in [0, 1] (applied by the Predictor, not the graph), and score_threshold_calibrated whether it
    was calibrated on validation data (`ModelSpec.score_threshold_calibrated`; in files exported before it
    was recorded: whether it differs from `DEFAULT_SCORE_THRESHOLD`); detection_score_thresh / nms_thresh /
    detections_per_img: the post-processing baked into the graph; has_masks: the graph also returns
    mask probabilities; detforge_version: the detforge that exported it; format: "onnx", "torchscript" or
    "artifact" (a detforge model file read by `load_backend`); read: how the model's boxes are read
    (ReadSettings), None for a model that does not read text (and in files exported before reading existed).
    """

    model_name: str
    class_names: tuple[str, ...]
    category_ids: tuple[int, ...]
    min_size: int
    max_size: int
    score_threshold: float
    detection_score_thresh: float
    nms_thresh: float
    detections_per_img: int
    has_masks: bool
    detforge_version: str
    format: str
    read: ReadSettings | None = None
    score_threshold_calibrated: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.read, Mapping):
            try:
                object.__setattr__(self, "read", ReadSettings.from_dict(self.read))
            except ConfigError as exc:
                raise ValueError(f"ExportMetadata.read: {exc}") from None
        if self.read is not None and not isinstance(self.read, ReadSettings):
            raise ValueError(f"ExportMetadata.read: expected read settings or null, got {self.read!r}")
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "category_ids", tuple(self.category_ids))
        if not isinstance(self.model_name, str) or not self.model_name:
            raise ValueError(f"ExportMetadata.model_name: expected a non-empty string, got {self.model_name!r}")
        if not self.class_names or not all(isinstance(n, str) for n in self.class_names):
            raise ValueError(f"ExportMetadata.class_names: expected >= 1 strings, got {list(self.class_names)}")
        ids = self.category_ids
        if len(ids) != len(self.class_names) or not all(_is_int(i) for i in ids) or len(set(ids)) != len(ids):
            raise ValueError(
                f"ExportMetadata.category_ids: expected {len(self.class_names)} distinct integers, got {list(ids)}"
            )
        if not (_is_int(self.min_size) and _is_int(self.max_size) and 0 < self.min_size <= self.max_size):
            raise ValueError(
                f"ExportMetadata: expected integers 0 < min_size <= max_size, got {self.min_size!r}, {self.max_size!r}"
            )
        for name in ("score_threshold", "detection_score_thresh", "nms_thresh"):
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"ExportMetadata.{name}: expected a number in [0, 1], got {value!r}")
        if not _is_int(self.detections_per_img) or self.detections_per_img < 1:
            raise ValueError(
                f"ExportMetadata.detections_per_img: expected an integer >= 1, got {self.detections_per_img!r}"
            )
        if not isinstance(self.score_threshold_calibrated, bool):
            raise ValueError(
                f"ExportMetadata.score_threshold_calibrated: expected a bool, got {self.score_threshold_calibrated!r}"
            )
        if not isinstance(self.has_masks, bool):
            raise ValueError(f"ExportMetadata.has_masks: expected a bool, got {self.has_masks!r}")
        if not isinstance(self.detforge_version, str):
            raise ValueError(f"ExportMetadata.detforge_version: expected a string, got {self.detforge_version!r}")
        if self.format not in FORMATS:
            raise ValueError(f"ExportMetadata.format: expected one of {FORMATS}, got {self.format!r}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_props(self) -> dict[str, str]:
        """One JSON string per field, keyed `detforge.<field>` (ONNX `metadata_props` hold strings only)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, ReadSettings):
                value = value.to_dict()
            out[f"detforge.{f.name}"] = json.dumps(list(value) if isinstance(value, tuple) else value)
        return out

    @classmethod
    def from_props(cls, props: Mapping[str, str], *, where: str) -> ExportMetadata:
        """Inverse of `to_props`; other keys are ignored. ExportError naming `where` and the key when a key
        is missing, is not JSON, or has a bad value."""
        values: dict[str, Any] = {}
        missing = [key for key in METADATA_KEYS if key not in props]
        if missing:
            raise ExportError(
                f"{where}: not a detforge export: metadata keys {missing} are missing "
                "(export it with `detforge export`)"
            )
        for key in (*METADATA_KEYS, *(k for k in OPTIONAL_METADATA_KEYS if k in props)):
            try:
                values[key.removeprefix("detforge.")] = json.loads(props[key])
            except json.JSONDecodeError as exc:
                raise ExportError(f"{where}: metadata {key}={props[key]!r} is not JSON ({exc})") from None
        if "score_threshold_calibrated" not in values:  # exported before it was recorded
            values["score_threshold_calibrated"] = values["score_threshold"] != DEFAULT_SCORE_THRESHOLD
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise ExportError(f"{where}: invalid detforge metadata: {exc}") from None

    def to_json(self) -> str:
        """The metadata as one JSON object (the TorchScript extra file)."""
        return json.dumps(self.to_props(), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, *, where: str) -> ExportMetadata:
        """Inverse of `to_json`; ExportError naming `where` when it is not a JSON object of strings."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ExportError(f"{where}: detforge metadata is not JSON ({exc})") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ExportError(f"{where}: detforge metadata must be a JSON object of strings, got {text[:80]!r}")
        return cls.from_props(data, where=where)


OPTIONAL_METADATA_KEYS: tuple[str, ...] = ("detforge.read", "detforge.score_threshold_calibrated")
"""Keys added after the first exports: read when present."""
METADATA_KEYS: tuple[str, ...] = tuple(
    f"detforge.{f.name}" for f in fields(ExportMetadata) if f"detforge.{f.name}" not in OPTIONAL_METADATA_KEYS
)
"""The `metadata_props` keys every detforge ONNX export has."""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
