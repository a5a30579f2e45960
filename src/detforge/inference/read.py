"""Reading after detection: the text inside the boxes of the read classes, and which settings apply.

`read_detections` runs a `Reader` on one image's detections (one `reader.read` call per image, every
box of a read class in it); `resolve_read_settings` turns a model's stored settings and a user's
overrides (`--read`, `--read-classes`, `--read-pattern`, `--read-allow`) into the settings in effect;
`configure_reading` builds the recogniser and hands both to a predictor. Predict, the service and the
index command all go through these, so a model reads the same everywhere.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from detforge.errors import ConfigError, DetforgeError
from detforge.reading import Reader, ReadSettings, TextRead, build_reader
from detforge.structures.detections import Detections

__all__ = ["ReadFailed", "configure_reading", "read_detections", "read_or_keep", "resolve_read_settings"]

log = logging.getLogger(__name__)


class ReadFailed(DetforgeError, RuntimeError):
    """The recogniser broke its contract (wrong number of results, a result that is not a TextRead)."""


def _hwc(image: Tensor | np.ndarray) -> np.ndarray:
    """uint8 RGB [H, W, 3] C-contiguous array of a uint8 [3, H, W] tensor or [H, W, 3] array."""
    if isinstance(image, Tensor):
        if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"read_detections: image must be uint8 [3, H, W], got {image.dtype} {list(image.shape)}")
        return np.ascontiguousarray(image.detach().cpu().permute(1, 2, 0).numpy())
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"read_detections: image must be uint8 [H, W, 3], got {array.dtype} {list(array.shape)}")
    return np.ascontiguousarray(array)


def read_detections(
    reader: Reader,
    image: Tensor | np.ndarray,
    detections: Detections,
    settings: ReadSettings,
    class_names: Sequence[str],
    *,
    min_box_score: float | None = None,
) -> Detections:
    """`detections` with the text of every box whose class `settings.reads` (and whose detection score is at
    least `min_box_score`, when given): `texts[i]` the value read ("" when nothing legible), `text_scores[i]`
    its confidence in [0, 1]; None / NaN for boxes not read. All boxes are read in one `reader.read` call.

    `image`: the image the boxes are in (uint8 [3, H, W] tensor or uint8 RGB [H, W, 3] array, displayed
    frame); boxes go to the reader as float32 [N, 4] XYXY pixels. With `settings.enabled` False the
    detections come back unchanged (no texts). ReadFailed when the reader returns the wrong number of
    results or something that is not a TextRead; the reader's own exceptions propagate.
    """
    if not settings.enabled:
        return detections
    n = len(detections)
    labels = [int(v) for v in detections.labels.tolist()]
    scores = [float(v) for v in detections.scores.tolist()]
    names = [str(class_names[v]) if 0 <= v < len(class_names) else f"class_{v}" for v in labels]
    chosen = [i for i in range(n) if settings.reads(names[i]) and (min_box_score is None or scores[i] >= min_box_score)]
    texts: list[str | None] = [None] * n
    text_scores = [math.nan] * n
    if chosen:
        boxes = detections.boxes[torch.tensor(chosen, dtype=torch.int64)].detach().cpu().numpy().astype(np.float32)
        reads = list(reader.read(_hwc(image), boxes))
        if len(reads) != len(chosen):
            raise ReadFailed(
                f"{type(reader).__name__}.read returned {len(reads)} results for {len(chosen)} boxes; expected one each"
            )
        for i, result in zip(chosen, reads, strict=True):
            if not isinstance(result, TextRead):
                raise ReadFailed(f"{type(reader).__name__}.read returned {type(result).__name__}; expected TextRead")
            texts[i], text_scores[i] = result.text, float(result.score)
    return detections.with_texts(texts, text_scores)


def read_or_keep(
    image: Tensor | np.ndarray,
    detections: Detections,
    reader: Reader,
    settings: ReadSettings,
    class_names: Sequence[str],
    min_box_score: float | None = None,
) -> Detections:
    """`read_detections`, except that a reader failing on this image is logged and leaves every text None
    (score NaN): the detections are never lost to the recogniser."""
    try:
        return read_detections(reader, image, detections, settings, class_names, min_box_score=min_box_score)
    except Exception as exc:  # the boxes are kept; this image's texts are missing
        log.warning("reading failed on an image (%s: %s); its boxes are kept without text", type(exc).__name__, exc)
        return detections.with_texts([None] * len(detections), [math.nan] * len(detections))


def resolve_read_settings(
    stored: ReadSettings | None,
    *,
    read: bool | None = None,
    read_classes: Sequence[str] | None = None,
    read_pattern: str | None = None,
    read_allow: str | None = None,
    class_names: Sequence[str] | None = None,
) -> ReadSettings | None:
    """The settings in effect, or None when nothing is read.

    `stored`: the model's settings (ModelSpec.read / ExportMetadata.read; None for a model trained without
    transcriptions). `read`: None reads when `stored` is enabled; True reads even without stored settings
    (every class, or `read_classes`, with the default ReadSettings otherwise); False never reads.
    `read_classes`, `read_pattern`, `read_allow` override the stored values (giving one implies `read`).
    ConfigError for a read class that is not one of `class_names` (when given), an invalid pattern or
    allow-list, or overrides given with `read=False`.
    """
    overrides = {"classes": read_classes, "pattern": read_pattern, "allow": read_allow}
    if read is False:
        given = [f"read_{k}" for k, v in overrides.items() if v is not None]
        if given:
            raise ConfigError(f"read=False (--no-read) turns reading off; {', '.join(given)} cannot apply to it")
        return None
    if isinstance(read_classes, str):
        raise ConfigError(f"read_classes: expected a list of class names, got the string {read_classes!r}")
    if read is None and (stored is None or not stored.enabled) and all(v is None for v in overrides.values()):
        return None
    base = stored if stored is not None else ReadSettings()
    settings = base.override(
        enabled=True,
        classes=None if read_classes is None else tuple(read_classes),
        pattern=read_pattern,
        allow=read_allow,
    )
    if class_names is not None and settings.classes is not None:
        unknown = [c for c in settings.classes if c not in class_names]
        if unknown:
            raise ConfigError(f"read_classes: {unknown} are not classes of the model; expected of {list(class_names)}")
    return settings


class _ReadingPredictor(Protocol):
    class_names: tuple[str, ...]
    read_settings: ReadSettings | None

    def use_reader(self, reader: Reader | None, settings: ReadSettings | None = None) -> None: ...


def configure_reading(
    predictor: _ReadingPredictor,
    *,
    read: bool | None = None,
    read_classes: Sequence[str] | None = None,
    read_pattern: str | None = None,
    read_allow: str | None = None,
    reader: Reader | None = None,
    runtime: str = "auto",
    threads: int | None = None,
) -> ReadSettings | None:
    """Turn reading on or off on `predictor` (whose `read_settings` hold the model's stored settings) by
    `resolve_read_settings`; builds the recogniser with `build_reader(settings, runtime=..., threads=...)`
    unless `reader` is given (`threads` None: every core). Returns the settings in effect (None: the
    predictor does not read)."""
    settings = resolve_read_settings(
        predictor.read_settings,
        read=read,
        read_classes=read_classes,
        read_pattern=read_pattern,
        read_allow=read_allow,
        class_names=predictor.class_names,
    )
    if settings is None:
        predictor.use_reader(None)
        return None
    if reader is None:
        reader = build_reader(settings, runtime=runtime, threads=threads)
    predictor.use_reader(reader, settings)
    return settings
