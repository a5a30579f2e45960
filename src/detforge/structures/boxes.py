"""detforge's XYXY pixel boxes in the box encodings of the formats it writes: one function per encoding.

Every writer (predictions and datasets alike) converts through these, so that the same box is written
with the same numbers whichever command writes it. Inputs are XYXY pixels (x_min, y_min, x_max, y_max)
in the frame of the image as displayed; widths and heights are in pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["coco_bbox", "percent_xywh", "xyxy_to_xywh", "xyxy_to_xywh_array", "yolo_cxcywh"]

Box = tuple[float, float, float, float]


def xyxy_to_xywh(box: Sequence[float]) -> Box:
    """COCO's (x_min, y_min, width, height) in pixels of an XYXY box (no rounding)."""
    x0, y0, x1, y1 = box
    return x0, y0, x1 - x0, y1 - y0


def xyxy_to_xywh_array(boxes: np.ndarray) -> np.ndarray:
    """`xyxy_to_xywh` of every row of an [N, 4] array (a new array of the same dtype)."""
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def coco_bbox(box: Sequence[float], decimals: int) -> list[float]:
    """COCO's `bbox` [x, y, w, h] of an XYXY box, each value rounded to `decimals`: the width and height
    are rounded from the exact difference x1 - x0 (never a difference of rounded corners)."""
    return [round(v, decimals) for v in xyxy_to_xywh(box)]


def yolo_cxcywh(box: Sequence[float], width: int, height: int) -> Box:
    """YOLO's (centre x, centre y, width, height) of an XYXY box, normalised by the image's `width` and
    `height` in pixels (no rounding)."""
    x0, y0, x1, y1 = box
    return (x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width, (y1 - y0) / height


def percent_xywh(box: Sequence[float], width: int, height: int) -> Box:
    """Label Studio's (x, y, width, height) of an XYXY box, in percent of the image's `width` and `height`
    (pixels; no rounding)."""
    x0, y0, x1, y1 = box
    return 100.0 * x0 / width, 100.0 * y0 / height, 100.0 * (x1 - x0) / width, 100.0 * (y1 - y0) / height
