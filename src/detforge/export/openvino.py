"""The OpenVINO backend: a detforge ONNX export run by OpenVINO on the CPU (the `openvino` extra).

It gives the same detections as ONNX Runtime and is usually the faster of the two on a CPU. It computes in
float32: OpenVINO's own default on CPUs with AVX-512 BF16 is bfloat16, which without AMX is slower and moves
scores.

The graph takes any image size. With `static_shapes=N`, an image size seen a second time also gets a
compilation fixed to that size (for at most N sizes: e.g. a camera's landscape and portrait frames), which
runs a few percent faster than the any-size one. It is off by default: the second call with a size pays its
compile (under a second), and each fixed-size compilation holds its own weights and activation buffers
(hundreds of MB). The measurements are in benchmarks/README.md.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from detforge.export.exported_graph import ExportedGraph
from detforge.export.metadata import ExportError, ExportMetadata
from detforge.export.onnx import read_onnx_metadata

__all__ = ["STATIC_SHAPES", "OpenVinoDetector", "openvino_available"]

log = logging.getLogger(__name__)

STATIC_SHAPES = 0
"""Default number of image sizes that get a compilation of their own (see the module docstring)."""
_MAX_SIZES_COUNTED = 1024  # sizes seen once are forgotten past this many (a service of ever-new sizes)


def _openvino() -> Any:
    try:
        import openvino
    except ImportError as exc:
        message = f"the OpenVINO runtime needs the openvino package ({exc}); pip install 'detforge[openvino]'"
        raise ExportError(message) from None
    return openvino


def openvino_available() -> bool:
    """True when the openvino package can be imported."""
    try:
        _openvino()
    except ExportError:
        return False
    return True


def _metadata(model: Any, path: Path) -> ExportMetadata:
    """The file's detforge metadata from the model OpenVINO has read (its reader keeps the ONNX metadata_props
    under rt_info "framework"), so the file is not read a second time; with the onnx package otherwise."""
    info = model.get_rt_info()
    if "framework" not in info:
        return read_onnx_metadata(path)
    props = {key: value.astype(str) for key, value in info["framework"].items()}
    return ExportMetadata.from_props(props, where=str(path))


class OpenVinoDetector(ExportedGraph):
    """A detforge ONNX export compiled by OpenVINO for the CPU in float32; `Predictor(OpenVinoDetector(path))`
    works. threads: inference threads (default: every core). static_shapes: how many image sizes seen twice
    get a compilation fixed to their size (default 0: none; see the module docstring for its cost). Calls
    from several threads take turns.
    ExportError naming the file when it is not a detforge ONNX export or OpenVINO cannot compile it."""

    def __init__(self, path: str | Path, *, threads: int | None = None, static_shapes: int = STATIC_SHAPES) -> None:
        ov = _openvino()
        self.path = Path(path)
        if not self.path.is_file():
            raise ExportError(f"{self.path}: no such ONNX file")
        if isinstance(static_shapes, bool) or not isinstance(static_shapes, int) or static_shapes < 0:
            raise ExportError(f"static_shapes: expected an int >= 0, got {static_shapes!r}")
        self._config = {
            "INFERENCE_PRECISION_HINT": "f32",
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": int(threads if threads is not None else (os.cpu_count() or 1)),
        }
        try:
            self._core = ov.Core()
            model = self._core.read_model(str(self.path))
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses with its own messages
            raise ExportError(f"{self.path}: OpenVINO cannot read it: {exc}") from None
        self._use_metadata(_metadata(model, self.path))
        try:
            self._compiled = self._core.compile_model(model, "CPU", self._config)
        except Exception as exc:
            raise ExportError(f"{self.path}: OpenVINO cannot compile it: {exc}") from None
        self._request = self._compiled.create_infer_request()
        self._n_outputs = len(self._compiled.outputs)
        self._lock = threading.Lock()
        self.static_shapes = static_shapes
        self._sized: dict[tuple[int, int], Any] = {}  # (H, W) -> infer request of a compilation for that size
        self._seen: dict[tuple[int, int], int] = {}  # calls per size not (yet) compiled for
        self._refused: set[tuple[int, int]] = set()  # sizes whose fixed-size compilation failed

    @property
    def fixed_sizes(self) -> tuple[tuple[int, int], ...]:
        """The (H, W) image sizes that have a compilation of their own, in the order they got it."""
        return tuple(self._sized)

    def _compile_for(self, size: tuple[int, int]) -> Any:
        """An infer request of the graph compiled for [3, H, W] images, or None (logged) when that fails."""
        try:
            model = self._core.read_model(str(self.path))  # read again: keeping the first copy costs its weights
            model.reshape({0: [3, *size]})
            return self._core.compile_model(model, "CPU", self._config).create_infer_request()
        except Exception as exc:
            log.warning("%s: OpenVINO cannot compile the graph for %dx%d images (%s); using the any-size one",
                        self.path, size[1], size[0], exc)  # fmt: skip
            return None

    def _request_for(self, size: tuple[int, int]) -> Any:
        request = self._sized.get(size)
        if request is not None:
            return request
        if len(self._sized) >= self.static_shapes or size in self._refused:
            return self._request
        calls = self._seen.get(size, 0) + 1
        if calls < 2:
            if len(self._seen) >= _MAX_SIZES_COUNTED:
                self._seen.clear()
            self._seen[size] = calls
            return self._request
        self._seen.pop(size, None)
        request = self._compile_for(size)
        if request is None:
            self._refused.add(size)
            return self._request
        self._sized[size] = request
        return request

    def run_graph(self, image: np.ndarray) -> list[np.ndarray]:
        with self._lock:  # one infer request runs one inference at a time
            request = self._request_for((int(image.shape[1]), int(image.shape[2])))
            result = request.infer({0: image})
            return [np.array(result[i]) for i in range(self._n_outputs)]  # copies: the next call reuses memory

    def __repr__(self) -> str:
        return f"OpenVinoDetector({str(self.path)!r}, model={self.metadata.model_name!r}, classes={self.num_classes})"
