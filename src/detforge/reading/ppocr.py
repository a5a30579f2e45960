"""The default recogniser: PP-OCRv6 small text recognition (the `rapidocr` wheel's ONNX file) on ONNX Runtime
or OpenVINO, with detforge's crops and CTC decoding (allow-list, pattern, lexicon, confidence).

The model reads one text line: input float32 [N, 3, 48, W] (BGR, (x / 255 - 0.5) / 0.5), output [N, W / 8,
18710] softmax probabilities. Class 0 is the CTC blank, classes 1..18708 the lines of the ONNX metadata key
`character`, and the last class a space.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detforge.errors import DetforgeError
from detforge.reading.base import TextRead
from detforge.reading.crops import batches, crop_regions, to_input
from detforge.reading.ctc import CTCDecoder
from detforge.reading.settings import ReadSettings

__all__ = ["INSTALL_HINT", "MODEL_FILE", "RUNTIMES", "PPOCRReader", "locate_model"]

MODEL_FILE = "rapidocr/models/PP-OCRv6_rec_small.onnx"
"""The recognition model's path inside the rapidocr wheel."""
INSTALL_HINT = "pip install --no-deps rapidocr==3.10.0"
RUNTIMES = ("auto", "onnxruntime", "openvino")
AUTO_RUNTIME = "onnxruntime"
"""What runtime="auto" runs the recogniser on. OpenVINO reads crops faster on a CPU, but a long-lived process
holding an OpenVINO recogniser that later waits on child processes has been killed by a SIGSEGV (see
benchmarks/README.md); until that is understood OpenVINO is opt-in (runtime="openvino")."""
HEIGHT = 48
"""Input height of PP-OCR recognition models."""
STRIDE = 8
"""Input pixels per output frame."""
MIN_WIDTH = 320
"""Narrower inputs are padded on the right to this width, as PP-OCR's own inference does (its recognisers
were trained on 48 x 320 lines): a short crop such as "12." alone is read worse (benchmarks/README.md)."""


def locate_model() -> Path:
    """The PP-OCRv6 small recognition ONNX file of the installed rapidocr wheel (found without importing
    rapidocr, whose own dependencies detforge does not need). DetforgeError with the install command when the
    wheel or the file is missing."""
    try:
        dist = importlib.metadata.distribution("rapidocr")
    except importlib.metadata.PackageNotFoundError:
        raise DetforgeError(
            f"reading with PP-OCR needs the rapidocr wheel (its recognition model file); install it with "
            f"`{INSTALL_HINT}`"
        ) from None
    path = Path(str(dist.locate_file(MODEL_FILE)))
    if not path.is_file():
        raise DetforgeError(
            f"the rapidocr wheel has no {MODEL_FILE} (looked at {path}); reinstall it with `{INSTALL_HINT}`"
        )
    return path


class _OrtSession:
    """Runs the model on ONNX Runtime (CPU, fp32, `threads` intra-op threads)."""

    name = "onnxruntime"

    def __init__(self, path: Path, threads: int) -> None:
        ort = _import("onnxruntime", "pip install onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for corrupt files
            raise DetforgeError(f"{path}: ONNX Runtime cannot load it: {exc}") from None
        self._input = self._session.get_inputs()[0].name
        self.characters = dict(self._session.get_modelmeta().custom_metadata_map).get("character")

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self._session.run(None, {self._input: batch})[0])


class _OpenVinoSession:
    """Runs the model on OpenVINO (CPU, fp32, `threads` inference threads, dynamic shapes)."""

    name = "openvino"

    def __init__(self, path: Path, threads: int) -> None:
        ov = _import("openvino", "pip install openvino")
        config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
        try:
            core = ov.Core()
            model = core.read_model(str(path))
            self.characters = _rt_info(model, "character")
            self._compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses with its own messages
            raise DetforgeError(f"{path}: OpenVINO cannot load it: {exc}") from None
        self._request = self._compiled.create_infer_request()
        self._lock = threading.Lock()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            self._request.infer({0: batch})
            return np.array(self._request.get_output_tensor(0).data)


class PPOCRReader:
    """Reads the text of boxes with PP-OCRv6 small (implements `Reader`).

    `settings` give the padding, allow-list, pattern and lexicon; `runtime` is "onnxruntime", "openvino" or
    "auto" (ONNX Runtime: see AUTO_RUNTIME); `model_path` another PP-OCR recognition ONNX file
    with a `character` table (default: the rapidocr wheel's). `threads` defaults to every core, `batch_size`
    crops run together (sorted by width), `max_width` caps a crop's resized width in pixels, narrower
    batches are padded to `min_width` (see MIN_WIDTH). Safe to call from
    several threads (OpenVINO calls take turns). DetforgeError when the model or the runtime is missing,
    ConfigError when the allow-list or a lexicon value holds characters the model cannot produce.
    """

    def __init__(
        self,
        settings: ReadSettings,
        *,
        runtime: str = "auto",
        model_path: str | Path | None = None,
        threads: int | None = None,
        batch_size: int = 16,
        max_width: int = 640,
        min_width: int = MIN_WIDTH,
    ) -> None:
        if runtime not in RUNTIMES:
            raise DetforgeError(f"runtime: expected one of {', '.join(RUNTIMES)}, got {runtime!r}")
        self.settings = settings
        self.model_path = Path(model_path) if model_path is not None else locate_model()
        if not self.model_path.is_file():
            raise DetforgeError(f"{self.model_path}: no such recognition model file")
        n_threads = int(threads) if threads is not None else (os.cpu_count() or 1)
        if runtime == "auto":
            runtime = AUTO_RUNTIME
        session = _OpenVinoSession if runtime == "openvino" else _OrtSession
        self._session: _OrtSession | _OpenVinoSession = session(self.model_path, n_threads)
        self.runtime = runtime
        if not self._session.characters:
            raise DetforgeError(
                f"{self.model_path}: no `character` table in its ONNX metadata; not a PP-OCR recogniser"
            )
        self.table = ("", *self._session.characters.splitlines(), " ")  # blank, the table, then the space class
        self.batch_size = max(1, int(batch_size))
        self.max_width = max(STRIDE, int(max_width))
        self.min_width = max(0, int(min_width))
        self.decoder = CTCDecoder(self.table, allow=settings.allow, pattern=settings.pattern, lexicon=settings.lexicon)

    def probabilities(self, image: np.ndarray, boxes: np.ndarray) -> list[np.ndarray | None]:
        """The model's softmax output for every box: float32 [T_i, C] with T_i the crop's own frames (the
        batch's right padding cut off), None for a box that is empty or outside the image."""
        image = _check_image(image)
        crops = crop_regions(image, boxes, self.settings.padding)
        present = [i for i, c in enumerate(crops) if c is not None]
        inputs = [to_input(crops[i], height=HEIGHT, max_width=self.max_width) for i in present]  # type: ignore[arg-type]
        out: list[np.ndarray | None] = [None] * len(crops)
        for batch in batches(inputs, self.batch_size, min_width=self.min_width):
            probs = self._session(batch.array)
            if probs.ndim != 3 or probs.shape[0] != len(batch.indices) or probs.shape[2] != len(self.table):
                raise DetforgeError(
                    f"{self.model_path}: output shape {probs.shape}; expected [{len(batch.indices)}, T, "
                    f"{len(self.table)}] (the character table plus blank and space)"
                )
            scale = probs.shape[1] / batch.array.shape[3]
            for row, (i, width) in enumerate(zip(batch.indices, batch.widths, strict=True)):
                frames = min(probs.shape[1], max(1, round(width * scale + 0.49)))
                out[present[i]] = probs[row, :frames]
        return out

    def read(self, image: np.ndarray, boxes: np.ndarray) -> Sequence[TextRead]:
        """One TextRead per box of `boxes` [N, 4] (XYXY pixels of the uint8 RGB `image` [H, W, 3]), in box
        order; TextRead("", 0.0) for a box that is empty or outside the image."""
        return [TextRead("", 0.0) if p is None else self.decoder.decode(p) for p in self.probabilities(image, boxes)]

    def __repr__(self) -> str:
        return f"PPOCRReader(runtime={self.runtime!r}, model={str(self.model_path)!r})"


def _check_image(image: np.ndarray) -> np.ndarray:
    """`image` as a uint8 [H, W, 3] array; DetforgeError saying what was expected otherwise."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.dtype != np.uint8:
        raise DetforgeError(f"read: expected a uint8 RGB image [H, W, 3], got {arr.dtype} {tuple(arr.shape)}")
    return arr[:, :, :3]


def _rt_info(model: Any, key: str) -> str | None:
    """An ONNX metadata value as OpenVINO keeps it (rt_info framework/<key>), or None."""
    try:
        if model.has_rt_info(["framework", key]):
            return str(model.get_rt_info(["framework", key]).astype(str))
    except Exception:  # older OpenVINO releases keep it elsewhere
        return None
    return None


def _import(name: str, command: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise DetforgeError(f"reading with PP-OCR on {name} needs it installed: `{command}`") from None
