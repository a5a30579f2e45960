"""Response bodies of the HTTP API (pydantic models; what clients parse)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["DetectResponse", "ErrorBody", "ErrorResponse", "ImageSize", "ModelResponse", "Timing"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ImageSize(_Frozen):
    """Size in pixels of the image as displayed (EXIF orientation applied)."""

    width: int
    height: int


class Timing(_Frozen):
    """Milliseconds: waiting for a batch, the batch's forward pass, and the whole request."""

    queue: float
    inference: float
    total: float


class DetectResponse(_Frozen):
    """Detections of one image, sorted by score (descending).

    boxes: [x0, y0, x1, y1] absolute pixels in the displayed frame; labels: class names;
    class_ids: contiguous class indices 0..K-1; scores in [0, 1].
    """

    boxes: list[list[float]]
    labels: list[str]
    class_ids: list[int]
    scores: list[float]
    image: ImageSize
    timing_ms: Timing
    model: str


class ModelResponse(_Frozen):
    """The model being served: name, class names (index order), version, default score threshold and
    the input size range (shorter side, longer-side bound) in pixels when known."""

    name: str
    classes: list[str]
    version: str
    score_threshold: float
    input_size: list[int] | None


class ErrorBody(_Frozen):
    code: str
    message: str


class ErrorResponse(_Frozen):
    """Every error: {"error": {"code": stable machine code, "message": human text}}."""

    error: ErrorBody
