"""Response bodies of the HTTP API (pydantic models; what clients parse)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

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
    class_ids: contiguous class indices 0..K-1; scores in [0, 1]; texts / text_scores: the value read in
    each box and its confidence in [0, 1], null for a box that was not read (its class is not read, the
    model does not read, or its score is below the model's calibrated threshold). All lists align by box.
    """

    boxes: list[list[float]]
    labels: list[str]
    class_ids: list[int]
    scores: list[float]
    texts: list[str | None] = Field(
        description='the value read in each box ("" when nothing legible was found); null: the box was not read'
    )
    text_scores: list[float | None] = Field(
        description="confidence in [0, 1] of each box's value read; null: the box was not read"
    )
    image: ImageSize
    timing_ms: Timing
    model: str


class ModelResponse(_Frozen):
    """The model being served: name, class names (index order), version, default score threshold and whether
    it was calibrated on validation data (`score_threshold_calibrated`; false: detforge's default 0.5), the
    input size range (shorter side, longer-side bound) in pixels when known, and whether it reads the text
    in boxes (`reads`) of which classes (`read_classes`; null: every class, or nothing when it does not read)."""

    name: str
    classes: list[str]
    version: str
    score_threshold: float
    score_threshold_calibrated: bool = False
    input_size: list[int] | None
    reads: bool = False
    read_classes: list[str] | None = None


class ErrorBody(_Frozen):
    code: str
    message: str


class ErrorResponse(_Frozen):
    """Every error: {"error": {"code": stable machine code, "message": human text}}."""

    error: ErrorBody
