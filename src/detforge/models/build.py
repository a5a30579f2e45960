"""build_detector: a zoo name + class count + starting weights -> a ready Detector and what was loaded."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from detforge.errors import CheckpointError, ConfigError
from detforge.models.aliases import resolve_model_name
from detforge.models.detector import DetectionParams, Detector
from detforge.models.families import make_detector
from detforge.models.info import ModelInfo
from detforge.models.torchvision_graphs import BackboneSetup
from detforge.models.weights import (
    Downloader,
    StateFile,
    WeightsReport,
    download_url,
    load_backbone_weights,
    load_detector_weights,
    locate_weights,
    read_state_file,
)
from detforge.models.zoo import MODELS
from detforge.thresholds import EVAL_SCORE_THRESHOLD

__all__ = ["WEIGHT_KINDS", "build_detector"]

log = logging.getLogger(__name__)

WEIGHT_KINDS = ("coco", "imagenet", "none")


def build_detector(
    name: str,
    *,
    num_classes: int,
    weights: str | Path = "coco",
    min_size: int | None = None,
    max_size: int | None = None,
    trainable_backbone_layers: int | None = None,
    cache_dir: str | Path | None = None,
    download: Downloader | None = download_url,
) -> tuple[Detector, WeightsReport]:
    """A Detector for `num_classes` classes (labels 0..K-1, no background) and a report of the weights loaded.

    name: zoo name or Detectron2 model-zoo alias. weights: "coco" (whole detector; class-dependent heads are
    re-initialised when K+1 != 91), "imagenet" (backbone only), "none" (random init with trainable
    BatchNorm), or a local .pth/.pt/.safetensors state dict or detforge artifact. Starting from weights
    uses torchvision's fine-tuning set-up (FrozenBatchNorm, first stages frozen; `trainable_backbone_layers`
    stages train, None = model default). Official files come from `cache_dir` (default the torch hub
    cache), packages that ship them, or `download(url, path)` (None = offline).
    Raises ConfigError for bad names/values and CheckpointError for weights that cannot be used.
    """
    canonical, note = resolve_model_name(name)
    if note:
        log.info(note)
    info = MODELS[canonical]
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes: expected an integer >= 1 (classes without background), got {num_classes!r}")
    text = str(weights)
    kind: Literal["coco", "imagenet", "none", "file"] = (
        "coco" if text == "coco" else "imagenet" if text == "imagenet" else "none" if text == "none" else "file"
    )
    if kind in ("coco", "imagenet") and kind not in info.pretrained:
        available = ", ".join([*info.pretrained, "none", "a local file"])
        raise ConfigError(f"model.weights: {canonical} has no {kind} weights; choose one of: {available}")
    if kind == "none" and trainable_backbone_layers is not None:
        log.warning(
            "trainable_backbone_layers=%s has no effect with weights 'none': every layer trains",
            trainable_backbone_layers,
        )

    state: StateFile | None = None
    source: str = kind
    eps = info.coco_bn_eps if kind == "coco" else 1e-5
    if kind == "coco" or kind == "imagenet":
        state = read_state_file(locate_weights(info.url(kind), cache_dir=cache_dir, download=download))
    elif kind == "file":
        path = Path(weights).expanduser()
        source = str(path)
        state = read_state_file(path)
        eps = _file_eps(info, path, state)

    setup = BackboneSetup(pretrained=kind != "none", trainable_layers=trainable_backbone_layers, frozen_bn_eps=eps)
    detector = make_detector(info, num_classes=num_classes, setup=setup, min_size=min_size, max_size=max_size)
    if state is None:
        report = WeightsReport(0, source="none")
    elif kind == "imagenet":
        report = load_backbone_weights(detector.model, state.state_dict, info, source=source)
    else:
        report = load_detector_weights(detector.model, state.state_dict, info, source=source)
    current = detector.detection_params
    detector.detection_params = DetectionParams(EVAL_SCORE_THRESHOLD, current.nms_thresh, current.detections_per_img)
    return detector, report


def _file_eps(info: ModelInfo, path: Path, state: StateFile) -> float:
    """FrozenBatchNorm eps for a local file: the artifact's, the COCO one for a copy of the official file, else 1e-5."""
    if state.model_name is not None and state.model_name != info.name:
        raise CheckpointError(f"{path}: is a detforge model of {state.model_name!r}, not of {info.name!r}")
    if state.frozen_bn_eps is not None:
        return state.frozen_bn_eps
    if info.coco_url and path.name == info.coco_url.rsplit("/", 1)[-1]:
        return info.coco_bn_eps
    return 1e-5
