"""The model artifact: one file holding a trained detector and everything needed to use it.

The file (`model.pt` by convention) is a safetensors file: the state dict as tensors, and the metadata
as JSON in its header (format "detforge.model", version 2; see artifact_io.py):
    spec: ModelSpec as a dict of JSON-able values (incl. the reading settings `read`),
    setup: {"pretrained": bool, "trainable_layers": int | None, "frozen_bn_eps": float},
    detection_params: {"score_thresh": float, "nms_thresh": float, "detections_per_img": int}.
Loading it never unpickles anything. Files of format 1 (a torch zip of the same sections) are still
read, through the weights-only loader behind the allow-list scan (safeload.py). Writes are atomic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from detforge._version import __version__
from detforge.errors import CheckpointError, ConfigError
from detforge.models.artifact_io import FORMAT_VERSION, read_artifact, write_artifact
from detforge.models.detector import DetectionParams, Detector
from detforge.models.families import make_detector
from detforge.models.torchvision_graphs import BackboneSetup
from detforge.models.zoo import MODELS
from detforge.reading.settings import ReadSettings
from detforge.thresholds import DEFAULT_SCORE_THRESHOLD

__all__ = ["FORMAT_VERSION", "ModelSpec", "load_model", "save_model"]

_LISTED = 8


@dataclass(frozen=True)
class ModelSpec:
    """What a trained model is: zoo name, classes (index i <-> class_names[i] <-> dataset category_ids[i]),
    input size bounds (px), the deployment score threshold and whether it was calibrated on validation
    data (`score_threshold_calibrated`; until then it is `DEFAULT_SCORE_THRESHOLD`), the detforge version
    that wrote it, free metadata (str -> str | float; ints are stored as floats), and how the model's boxes
    are read (`read`: ReadSettings, None for a model that does not read text).

    A file written before the calibration was recorded reads as calibrated when its threshold differs
    from `DEFAULT_SCORE_THRESHOLD`: training stored that default, and only a calibration changed it."""

    model_name: str
    num_classes: int
    class_names: tuple[str, ...]
    category_ids: tuple[int, ...]
    min_size: int
    max_size: int
    score_threshold: float = DEFAULT_SCORE_THRESHOLD
    score_threshold_calibrated: bool = False
    detforge_version: str = __version__
    extra: dict[str, str | float] = field(default_factory=dict)
    read: ReadSettings | None = None

    def __post_init__(self) -> None:
        if isinstance(self.read, Mapping):
            object.__setattr__(self, "read", ReadSettings.from_dict(self.read))
        if self.read is not None and not isinstance(self.read, ReadSettings):
            raise ValueError(f"ModelSpec.read: expected ReadSettings or None, got {type(self.read).__name__}")
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "category_ids", tuple(self.category_ids))
        object.__setattr__(self, "extra", _check_extra(self.extra))
        if not isinstance(self.model_name, str) or not self.model_name:
            raise ValueError(f"ModelSpec.model_name: expected a zoo model name, got {self.model_name!r}")
        if not _is_int(self.num_classes) or self.num_classes < 1:
            raise ValueError(f"ModelSpec.num_classes: expected an integer >= 1, got {self.num_classes!r}")
        if len(self.class_names) != self.num_classes or not all(isinstance(n, str) for n in self.class_names):
            raise ValueError(
                f"ModelSpec.class_names: expected {self.num_classes} strings, got {list(self.class_names)}"
            )
        ids = self.category_ids
        if len(ids) != self.num_classes or not all(_is_int(i) for i in ids) or len(set(ids)) != len(ids):
            raise ValueError(f"ModelSpec.category_ids: expected {self.num_classes} distinct integers, got {list(ids)}")
        if not (_is_int(self.min_size) and _is_int(self.max_size) and 0 < self.min_size <= self.max_size):
            raise ValueError(
                f"ModelSpec: expected integers 0 < min_size <= max_size, got {self.min_size}, {self.max_size}"
            )
        if not isinstance(self.score_threshold, (int, float)) or not 0.0 <= self.score_threshold <= 1.0:
            raise ValueError(f"ModelSpec.score_threshold: expected a number in [0, 1], got {self.score_threshold!r}")
        if not isinstance(self.score_threshold_calibrated, bool):
            raise ValueError(
                f"ModelSpec.score_threshold_calibrated: expected true or false, got {self.score_threshold_calibrated!r}"
            )
        if not isinstance(self.detforge_version, str):
            raise ValueError(f"ModelSpec.detforge_version: expected a string, got {self.detforge_version!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (lists for tuples) that `from_dict` reads back."""
        d = asdict(self)
        d["class_names"], d["category_ids"] = list(self.class_names), list(self.category_ids)
        d["extra"] = dict(self.extra)
        d["read"] = None if self.read is None else self.read.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """Inverse of `to_dict`; ValueError naming unknown or missing fields and bad values."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"ModelSpec: unknown fields {unknown}; expected {sorted(names)}")
        optional = ("score_threshold", "score_threshold_calibrated", "detforge_version", "extra", "read")
        required = {f.name for f in fields(cls) if f.name not in optional}
        missing = sorted(required - set(data))
        if missing:
            raise ValueError(f"ModelSpec: missing fields {missing}")
        values = dict(data)
        if "score_threshold_calibrated" not in values:  # written before it was recorded (see the class docstring)
            threshold = values.get("score_threshold", DEFAULT_SCORE_THRESHOLD)
            values["score_threshold_calibrated"] = threshold != DEFAULT_SCORE_THRESHOLD
        return cls(**values)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_extra(extra: Mapping[str, Any]) -> dict[str, str | float]:
    if not isinstance(extra, Mapping):
        raise ValueError(f"ModelSpec.extra: expected a mapping of str -> str | float, got {type(extra).__name__}")
    out: dict[str, str | float] = {}
    for key, value in extra.items():
        if not isinstance(key, str):
            raise ValueError(f"ModelSpec.extra: keys must be strings, got {key!r}")
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[key] = float(value)
        else:
            raise ValueError(f"ModelSpec.extra[{key!r}]: expected a string or a finite number, got {value!r}")
    return out


def save_model(path: str | Path, detector: Detector, spec: ModelSpec) -> Path:
    """Write `detector` and `spec` to `path` atomically (see the module docstring for the layout).

    Raises ValueError when the spec does not describe the detector (name, class count, sizes).
    """
    for attr, want in (
        ("model_name", detector.name),
        ("num_classes", detector.num_classes),
        ("min_size", detector.min_size),
        ("max_size", detector.max_size),
    ):
        if getattr(spec, attr) != want:
            raise ValueError(f"ModelSpec.{attr} is {getattr(spec, attr)!r} but the detector has {want!r}")
    sections = {
        "spec": spec.to_dict(),
        "setup": asdict(detector.setup),
        "detection_params": asdict(detector.detection_params),
    }
    return write_artifact(path, sections, detector.model.state_dict())


def _names(keys: list[str]) -> str:
    return ", ".join(keys[:_LISTED]) + (f" ... and {len(keys) - _LISTED} more" if len(keys) > _LISTED else "")


def state_dict_problems(state: Mapping[str, Any], own: Mapping[str, Tensor], source: str = "file") -> list[str]:
    """How saved weights `state` differ from a model's `own` state dict, one "label: keys" line per kind
    (not tensors, missing, unexpected, wrong shape with both shapes; `source` names the saved side);
    empty when they fit."""
    not_tensors = [str(k) for k, v in state.items() if not isinstance(v, Tensor)]
    missing = [k for k in own if k not in state]
    unexpected = [str(k) for k in state if k not in own]
    shapes = [
        f"{k} ({source} {list(v.shape)}, model {list(own[k].shape)})"
        for k, v in state.items()
        if isinstance(v, Tensor) and k in own and v.shape != own[k].shape
    ]
    found = (("not tensors", not_tensors), ("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes))
    return [f"{label}: {_names(keys)}" for label, keys in found if keys]


def _check_state(state: Mapping[str, Any], own: Mapping[str, Tensor], where: str) -> None:
    problems = state_dict_problems(state, own)
    if problems:
        raise CheckpointError(f"{where}: the weights do not match the model: " + "; ".join(problems))


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[Detector, ModelSpec]:
    """The Detector (eval mode, on `device`) and ModelSpec saved by `save_model`.

    Reads format 2 (safetensors, no unpickling) and format 1 (torch zip, weights-only after the
    allow-list scan); a corrupt file, a file that is not a detforge model, or weights that do not
    match the recorded model raise CheckpointError naming the file and the offending keys.
    """
    where = str(path)
    contents = read_artifact(path)
    try:
        spec = ModelSpec.from_dict(contents.spec)
        setup = BackboneSetup(**contents.setup)
        params = DetectionParams(**contents.detection_params)
    except (TypeError, ValueError, ConfigError) as exc:
        raise CheckpointError(f"{where}: invalid metadata: {exc}") from None
    info = MODELS.get(spec.model_name)
    if info is None:
        raise CheckpointError(f"{where}: unknown model {spec.model_name!r}; this detforge has {', '.join(MODELS)}")
    try:
        detector = make_detector(
            info, num_classes=spec.num_classes, setup=setup, min_size=spec.min_size, max_size=spec.max_size
        )
    except ConfigError as exc:
        raise CheckpointError(f"{where}: {exc}") from None
    state = contents.state_dict
    _check_state(state, detector.model.state_dict(), where)
    detector.model.load_state_dict(dict(state), strict=True)
    detector.detection_params = params
    return detector.to(device).eval(), spec
