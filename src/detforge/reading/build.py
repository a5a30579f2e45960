"""One function that turns ReadSettings into a Reader, so predict, eval, index and serve share it."""

from __future__ import annotations

from detforge.errors import ConfigError
from detforge.reading.base import Reader
from detforge.reading.settings import ReadSettings

__all__ = ["build_reader"]


def build_reader(settings: ReadSettings, *, runtime: str = "auto", threads: int | None = None) -> Reader:
    """The built-in recogniser `settings.recognizer` configured by `settings` (allow-list, pattern,
    lexicon, padding). `runtime` runs the PP-OCR ONNX model with "onnxruntime", "openvino" or "auto"
    (OpenVINO when installed, else ONNX Runtime) with `threads` intra-op threads (None: every core; the
    service passes its worker's share). DetforgeError with the install command when the
    recogniser's files or libraries are missing."""
    if settings.recognizer == "ppocr":
        from detforge.reading.ppocr import PPOCRReader

        return PPOCRReader(settings, runtime=runtime, threads=threads)
    if settings.recognizer == "tesseract":
        from detforge.reading.tesseract import TesseractReader

        return TesseractReader(settings)
    raise ConfigError(f"read.recognizer: unknown recogniser {settings.recognizer!r}")
