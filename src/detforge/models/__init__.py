"""Model zoo, pretrained weights, the Detector adapter and the model artifact.

Names are imported lazily: `from detforge.models import resolve_model_name` (config validation) does
not import torch; anything that builds or loads a model does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from detforge.models.aliases import ALIASES, Alias, resolve_model_name
    from detforge.models.artifact import ModelSpec, load_model, save_model
    from detforge.models.build import build_detector
    from detforge.models.detector import DetectionParams, Detector
    from detforge.models.info import MODEL_NAMES, MODEL_ROWS, ModelInfo, ModelRow
    from detforge.models.torchvision_graphs import BackboneSetup
    from detforge.models.weights import WeightsReport
    from detforge.models.zoo import MODELS, get_model_info, model_table

__all__ = [
    "ALIASES",
    "MODELS",
    "MODEL_NAMES",
    "MODEL_ROWS",
    "Alias",
    "BackboneSetup",
    "DetectionParams",
    "Detector",
    "ModelInfo",
    "ModelRow",
    "ModelSpec",
    "WeightsReport",
    "build_detector",
    "get_model_info",
    "load_model",
    "model_table",
    "resolve_model_name",
    "save_model",
]

_HOME = {
    "ALIASES": "aliases",
    "Alias": "aliases",
    "resolve_model_name": "aliases",
    "ModelSpec": "artifact",
    "load_model": "artifact",
    "save_model": "artifact",
    "build_detector": "build",
    "BackboneSetup": "torchvision_graphs",
    "DetectionParams": "detector",
    "Detector": "detector",
    "MODEL_NAMES": "info",
    "MODEL_ROWS": "info",
    "ModelInfo": "info",
    "ModelRow": "info",
    "WeightsReport": "weights",
    "MODELS": "zoo",
    "get_model_info": "zoo",
    "model_table": "zoo",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'detforge.models' has no attribute {name!r}")
    return getattr(importlib.import_module(f"detforge.models.{module}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
