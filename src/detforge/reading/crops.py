"""Cutting boxes out of an image for a line recogniser: context padding, the recogniser's resize and
normalisation, and batches of similar widths."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

__all__ = ["Batch", "batches", "crop_region", "crop_regions", "to_input"]


def crop_region(
    box: Sequence[float] | np.ndarray, padding: float, width: int, height: int
) -> tuple[int, int, int, int] | None:
    """The integer pixel region (x0, y0, x1, y1; x1/y1 exclusive) read for the XYXY `box`: the box grown by
    `padding` x its height on every side, clipped to the `width` x `height` image. None when the box is not
    finite, empty (zero width or height) or lies outside the image."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or x1 <= x0 or y1 <= y0:
        return None
    pad = padding * (y1 - y0)
    left, top = max(0, math.floor(x0 - pad)), max(0, math.floor(y0 - pad))
    right, bottom = min(width, math.ceil(x1 + pad)), min(height, math.ceil(y1 + pad))
    if right - left < 1 or bottom - top < 1 or x0 >= width or y0 >= height or x1 <= 0 or y1 <= 0:
        return None
    return left, top, right, bottom


def crop_regions(image: np.ndarray, boxes: np.ndarray, padding: float) -> list[np.ndarray | None]:
    """The padded crop (uint8 [h, w, 3] view) of every box of `boxes` [N, 4] XYXY in `image` [H, W, 3]; None
    where `crop_region` gives None."""
    height, width = image.shape[:2]
    out: list[np.ndarray | None] = []
    for box in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        region = crop_region(box, padding, width, height)
        out.append(None if region is None else image[region[1] : region[3], region[0] : region[2]])
    return out


def to_input(crop: np.ndarray, *, height: int = 48, max_width: int = 640, bgr: bool = True) -> np.ndarray:
    """PP-OCR's recognition input for one RGB uint8 crop [h, w, 3]: resized to `height` keeping the aspect
    ratio (width at least 1 and at most `max_width`, bilinear), channels in BGR order when `bgr` (PP-OCR was
    trained on OpenCV images), scaled to (x / 255 - 0.5) / 0.5. Returns float32 [3, height, width]."""
    h, w = crop.shape[:2]
    new_w = max(1, min(max_width, math.ceil(height * w / h)))
    resized = np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize((new_w, height), Image.Resampling.BILINEAR))
    if bgr:
        resized = resized[:, :, ::-1]
    arr = resized.astype(np.float32).transpose(2, 0, 1)
    return arr / 127.5 - 1.0


@dataclass(frozen=True)
class Batch:
    """Crops run together: `indices` positions in the input list, `array` float32 [n, 3, H, W] padded on the
    right with 0 (mid grey after normalisation) to the widest, `widths` each crop's own width in pixels."""

    indices: tuple[int, ...]
    array: np.ndarray
    widths: tuple[int, ...]


def batches(inputs: Sequence[np.ndarray], batch_size: int, *, min_width: int = 0) -> list[Batch]:
    """`inputs` (float32 [3, H, w_i] from `to_input`) grouped `batch_size` at a time in order of width, so
    that a batch pads little; each batch is at least `min_width` wide."""
    order = sorted(range(len(inputs)), key=lambda i: inputs[i].shape[2])
    out: list[Batch] = []
    for start in range(0, len(order), max(1, batch_size)):
        chunk = order[start : start + max(1, batch_size)]
        channels, height = inputs[chunk[0]].shape[:2]
        widest = max(min_width, max(inputs[i].shape[2] for i in chunk))
        array = np.zeros((len(chunk), channels, height, widest), dtype=np.float32)
        for row, i in enumerate(chunk):
            array[row, :, :, : inputs[i].shape[2]] = inputs[i]
        out.append(Batch(tuple(chunk), array, tuple(inputs[i].shape[2] for i in chunk)))
    return out
