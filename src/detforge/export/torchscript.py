"""The exported graph (one image in, detections out), TorchScript export and the TorchScript backend.

Graph contract, shared by the ONNX and TorchScript exports:
    input  `image`: float32 [3, H, W] in [0, 1], any H and W (the graph resizes it like the Detector);
    output `boxes`: float32 [N, 4] XYXY pixels of the input image; `labels`: int64 [N] in 0..K-1;
           `scores`: float32 [N] in [0, 1]; mask models also `masks`: float32 [N, 1, H, W] probabilities.
Post-processing (score_thresh, NMS, detections_per_img) is the artifact's, baked in at export.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from detforge.export.exact_resize import exact_resize
from detforge.export.metadata import ExportError, ExportMetadata
from detforge.fileio import atomic_write_bytes
from detforge.models.detector import Detector
from detforge.models.torchvision_detector import BoxGraph, MaskGraph
from detforge.structures.detections import Detections

__all__ = [
    "METADATA_FILE",
    "BoxGraph",
    "MaskGraph",
    "TorchScriptDetector",
    "detection_graph",
    "export_torchscript",
    "graph_detections",
]

METADATA_FILE = "detforge.json"
"""Name of the extra file holding `ExportMetadata` inside a TorchScript archive."""

_MASK_THRESHOLD = 0.5


def detection_graph(detector: Detector) -> nn.Module:
    """The export graph of `detector` (eval mode, on the CPU); see the module docstring for its contract."""
    return detector.export_graph()


def graph_detections(outputs: Sequence[object], image_size: tuple[int, int]) -> Detections:
    """Detections of one image from the graph's outputs (numpy arrays or tensors): sorted by score
    (descending, stable), masks thresholded at probability 0.5. ExportError on outputs of the wrong shape."""
    tensors = [torch.as_tensor(o).cpu() for o in outputs]
    if len(tensors) not in (3, 4):
        raise ExportError(f"exported model returned {len(tensors)} outputs; expected boxes, labels, scores[, masks]")
    boxes, labels, scores = tensors[0].float().reshape(-1, 4), tensors[1].long(), tensors[2].float()
    if labels.shape != scores.shape or labels.shape[0] != boxes.shape[0]:
        raise ExportError(
            f"exported model returned {boxes.shape[0]} boxes, {labels.numel()} labels, {scores.numel()} scores"
        )
    order = torch.argsort(scores, descending=True, stable=True)
    masks = None
    if len(tensors) == 4:
        masks = tensors[3][order, 0] > _MASK_THRESHOLD
    return Detections(boxes[order], labels[order], scores[order], image_size, masks)


def export_torchscript(detector: Detector, metadata: ExportMetadata, out: Path) -> Path:
    """Script `detector`'s graph and write it, with `metadata` as the extra file `detforge.json`, atomically
    to `out`. ExportError naming the model when TorchScript cannot compile it."""
    try:
        with warnings.catch_warnings(), exact_resize(detector.model):  # float64 resized size, as eager
            warnings.simplefilter("ignore")  # torch.jit.script is deprecated (still works) and warns per module
            scripted = detector.script_graph()
    except Exception as exc:  # TorchScript compiler errors have no common type
        raise ExportError(f"{metadata.model_name}: TorchScript cannot compile this model: {exc}") from exc
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(scripted, buffer, _extra_files={METADATA_FILE: metadata.to_json()})
    return atomic_write_bytes(out, buffer.getvalue())


class TorchScriptDetector:
    """A detforge TorchScript export as a predictor model (`Predictor(TorchScriptDetector(path))` works).

    Loading a TorchScript file runs no Python pickle code, but the graph is code: load only files you trust.
    """

    def __init__(self, path: str | Path, *, device: str | torch.device = "cpu") -> None:
        self.path = Path(path)
        extra: dict[str, Any] = {METADATA_FILE: ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated, still works
                self.module = torch.jit.load(str(self.path), map_location=device, _extra_files=extra)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ExportError(f"{self.path}: not a TorchScript file: {exc}") from None
        raw: str | bytes = extra[METADATA_FILE]
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        if not text:
            raise ExportError(f"{self.path}: TorchScript file without {METADATA_FILE}; not a detforge export")
        self.metadata = ExportMetadata.from_json(text, where=str(self.path))
        self.num_classes: int = self.metadata.num_classes
        self.class_names: tuple[str, ...] = self.metadata.class_names
        self.score_threshold: float = self.metadata.score_threshold
        self.min_size: int = self.metadata.min_size  # the resize bounds baked into the graph (px)
        self.max_size: int = self.metadata.max_size
        self.device = torch.device(device)
        self.module.eval()

    def predict(self, images: Sequence[Tensor]) -> list[Detections]:
        """Detections per float32 [3, H, W] image in [0, 1]: XYXY pixels of that image, labels 0..K-1, scores
        sorted descending, bool masks for mask models; CPU tensors."""
        out = []
        with torch.inference_mode():
            for i, image in enumerate(images):
                _check_image(image, i)
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message="RCNN always returns")  # expected when scripted
                    outputs = self.module(image.to(self.device, torch.float32))
                out.append(graph_detections(outputs, (int(image.shape[1]), int(image.shape[2]))))
        return out

    def __repr__(self) -> str:
        return (
            f"TorchScriptDetector({str(self.path)!r}, model={self.metadata.model_name!r}, classes={self.num_classes})"
        )


def _check_image(image: Tensor, index: int) -> None:
    if not isinstance(image, Tensor) or image.ndim != 3 or image.shape[0] != 3 or not image.is_floating_point():
        what = f"{image.dtype} {list(image.shape)}" if isinstance(image, Tensor) else type(image).__name__
        raise ValueError(f"images[{index}]: expected a float [3, H, W] tensor in [0, 1], got {what}")
