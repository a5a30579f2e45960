"""Shared test doubles for reading (importable from any test: pytest puts tests/ on sys.path): a fake
`Reader` and a tiny detforge-style ONNX file with fixed detections and optional stored read settings."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from detforge.reading import ReadSettings, TextRead


class FakeReader:
    """Reads box i of a call as `values[i]` (default "12", "13", ...), score 0.9; records every call."""

    def __init__(self, values: Sequence[str] | None = None, *, fail: bool = False, count: int | None = None) -> None:
        self.values = values
        self.fail = fail
        self.count = count
        self.calls: list[tuple[tuple[int, ...], np.ndarray]] = []
        self.threads: list[str] = []

    def read(self, image: np.ndarray, boxes: np.ndarray) -> list[TextRead]:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert boxes.dtype == np.float32 and boxes.ndim == 2 and boxes.shape[1] == 4
        self.calls.append((image.shape, boxes.copy()))
        self.threads.append(threading.current_thread().name)
        if self.fail:
            raise RuntimeError("recogniser crashed")
        n = len(boxes) if self.count is None else self.count
        values = self.values or [str(12 + i) for i in range(n)]
        return [TextRead(values[i % len(values)], 0.9) for i in range(n)]


def constant_onnx(path: Path, read: ReadSettings | None) -> Path:
    """A detforge-style ONNX file whose graph returns three fixed boxes (number 0.9, figure 0.8, number 0.3)
    for any image, with ExportMetadata (classes number/figure, calibrated threshold 0.5, `read`) in its
    metadata_props."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    from detforge.export.metadata import ExportMetadata

    def const(name: str, array: np.ndarray) -> object:
        return helper.make_node("Constant", [], [name], value=onnx.numpy_helper.from_array(array, name + "_value"))

    boxes = np.array([[4, 4, 24, 16], [30, 5, 50, 25], [4, 20, 24, 32]], dtype=np.float32)
    nodes = [
        helper.make_node("Shape", ["image"], ["image_shape"]),
        const("boxes", boxes),
        const("labels", np.array([0, 1, 0], dtype=np.int64)),
        const("scores", np.array([0.9, 0.8, 0.3], dtype=np.float32)),
    ]
    graph = helper.make_graph(
        nodes,
        "constant",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [3, "h", "w"])],
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [3, 4]),
            helper.make_tensor_value_info("labels", TensorProto.INT64, [3]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [3]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    metadata = ExportMetadata(
        model_name="constant", class_names=("number", "figure"), category_ids=(1, 2), min_size=32, max_size=64,
        score_threshold=0.5, detection_score_thresh=0.05, nms_thresh=0.5, detections_per_img=10, has_masks=False,
        detforge_version="test", format="onnx", read=read,
    )  # fmt: skip
    for key, value in metadata.to_props().items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path
