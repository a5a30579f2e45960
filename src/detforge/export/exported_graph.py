"""`ExportedGraph`: what the backends that run a detforge ONNX export share (ONNX Runtime in
export/runtime.py, OpenVINO in export/openvino.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from detforge.export.metadata import ExportMetadata
from detforge.export.torchscript import _check_image, graph_detections
from detforge.structures.detections import Detections

__all__ = ["ExportedGraph"]


class ExportedGraph:
    """What the ONNX-file backends share: the file's metadata as attributes and per-image `predict` over
    `run_graph` (float32 [3, H, W] array in, raw graph outputs out)."""

    path: Path

    def _use_metadata(self, metadata: ExportMetadata) -> None:
        self.metadata = metadata
        self.num_classes: int = metadata.num_classes
        self.class_names: tuple[str, ...] = metadata.class_names
        self.score_threshold: float = metadata.score_threshold
        self.min_size: int = metadata.min_size  # the resize bounds baked into the graph (px)
        self.max_size: int = metadata.max_size

    def run_graph(self, image: np.ndarray) -> list[np.ndarray]:
        """Raw graph outputs (boxes, labels, scores[, masks]) of one float32 [3, H, W] array."""
        raise NotImplementedError

    def predict(self, images: Sequence[Tensor]) -> list[Detections]:
        """Detections per float32 [3, H, W] image in [0, 1]: XYXY pixels of that image, labels 0..K-1, scores
        sorted descending, bool masks for mask models; CPU tensors."""
        out = []
        for i, image in enumerate(images):
            _check_image(image, i)
            array = np.ascontiguousarray(image.detach().to("cpu", torch.float32).numpy())
            out.append(graph_detections(self.run_graph(array), (int(image.shape[1]), int(image.shape[2]))))
        return out
