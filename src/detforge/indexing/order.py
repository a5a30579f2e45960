"""Reading order of boxes on a photographed page: top to bottom, then left to right, robust to a tilted photo.

A detector gives axis-aligned boxes even when the page was photographed at an angle, so sorting their
corners by y mixes up the values of one line as soon as the page is tilted by a few degrees. This module
estimates the page's skew from the boxes themselves, orders them in the de-rotated (upright) frame and
groups them into lines by vertical overlap there.

Skew: for every candidate angle in [-max_skew, max_skew] (0.25 degree steps) the box centres are
rotated back by that angle and every pair of boxes votes with a Gaussian kernel of its vertical offset,
measured in box heights, weighted down with its horizontal distance (neighbours on a line are close).
The angle with the most votes wins (ties go to the angle nearest 0) and is refined by a least-squares fit
of the centres of the lines it finds. With no pair lined up (one value per line, a column of task
numbers) nothing is learnt from alignment and the page is read upright, which orders a column correctly
at any tilt up to the limit as long as the lines do not overlap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["MAX_SKEW_DEGREES", "estimate_skew", "group_lines", "reading_order"]

MAX_SKEW_DEGREES = 25.0
"""Largest tilt (either way) the skew search considers; the documented robustness is +-20 degrees."""

_STEP_DEGREES = 0.25
_KERNEL_WIDTH = 0.25  # vertical offset, in box heights, at which a pair's vote falls to exp(-1/2)
_REACH = 2.0  # horizontal distance, in (axis-aligned) box heights, at which a pair's vote halves
_MAX_PAIR_VALUES = 2_000_000  # angles x boxes x boxes evaluated at once
_LINE_OVERLAP = 0.5  # two boxes share a line when their vertical extents overlap by this much of the smaller


def _as_boxes(boxes: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"reading order: expected boxes of shape [N, 4] (XYXY pixels), got {list(arr.shape)}")
    if not np.isfinite(arr).all():
        raise ValueError("reading order: boxes hold NaN or infinite coordinates")
    if (arr[:, 2] < arr[:, 0]).any() or (arr[:, 3] < arr[:, 1]).any():
        raise ValueError("reading order: expected XYXY boxes with x_max >= x_min and y_max >= y_min")
    return arr


def _rotate(centres: np.ndarray, degrees: float) -> np.ndarray:
    """Centres [N, 2] (x, y; y down) seen in a frame rotated by `degrees` (positive: the page's lines go
    down to the right in the photo): the page's lines run along x in the result."""
    t = math.radians(degrees)
    c, s = math.cos(t), math.sin(t)
    x, y = centres[:, 0], centres[:, 1]
    return np.stack([c * x + s * y, -s * x + c * y], axis=1)


def _upright_heights(boxes: np.ndarray, degrees: float) -> np.ndarray:
    """Height of the text inside each axis-aligned box if it is a rectangle tilted by `degrees`: solves
    W = w cos t + h sin t, H = w sin t + h cos t for h, kept within [0.25 H, H] (the bounding box of a
    tilted box is taller than the box, by at most 1 / cos t for thin text)."""
    widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    t = math.radians(abs(degrees))
    c, s = math.cos(t), math.sin(t)
    solved = (c * heights - s * widths) / max(c * c - s * s, 1e-6)
    return np.clip(solved, 0.25 * heights, heights)


def _alignment(boxes: np.ndarray, centres: np.ndarray, reach: float, degrees: np.ndarray) -> np.ndarray:
    """How well the boxes line up in rows when the page is turned back by each of `degrees` [A] (pair votes,
    [A]); `reach` is the horizontal distance at which a pair's vote halves."""
    t = np.radians(degrees)[:, None]  # [A, 1]
    c, s = np.cos(t), np.sin(t)
    x, y = centres[None, :, 0], centres[None, :, 1]  # [1, N]
    tx, ty = c * x + s * y, -s * x + c * y  # [A, N]
    widths, heights = boxes[None, :, 2] - boxes[None, :, 0], boxes[None, :, 3] - boxes[None, :, 1]
    ca, sa = np.cos(np.abs(t)), np.sin(np.abs(t))
    upright = np.clip((ca * heights - sa * widths) / np.maximum(ca * ca - sa * sa, 1e-6), 0.25 * heights, heights)
    dy = np.abs(ty[:, :, None] - ty[:, None, :])  # [A, N, N]
    dx = np.abs(tx[:, :, None] - tx[:, None, :])
    scale = np.maximum(np.minimum(upright[:, :, None], upright[:, None, :]), 1e-6)
    votes = np.exp(-0.5 * (dy / (_KERNEL_WIDTH * scale)) ** 2) / (1.0 + dx / reach)
    n = len(boxes)
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    return (votes * upper).sum(axis=(1, 2))


def group_lines(boxes: np.ndarray | Sequence[Sequence[float]], skew_degrees: float = 0.0) -> list[list[int]]:
    """Indices of `boxes` (XYXY pixels [N, 4]) grouped into lines of a page tilted by `skew_degrees`,
    in reading order: lines top to bottom, each line's boxes left to right, all in the upright frame.

    A box joins the current line when its vertical extent (upright text height around its turned centre)
    overlaps the line's mean extent by at least half of the smaller of the two; otherwise it starts a new
    line. Boxes are visited top to bottom."""
    arr = _as_boxes(boxes)
    if len(arr) == 0:
        return []
    centres = np.stack([(arr[:, 0] + arr[:, 2]) / 2, (arr[:, 1] + arr[:, 3]) / 2], axis=1)
    turned = _rotate(centres, skew_degrees)
    heights = _upright_heights(arr, skew_degrees)
    lines: list[list[int]] = []
    line_y = line_h = 0.0
    for i in sorted(range(len(arr)), key=lambda k: (turned[k, 1], turned[k, 0], k)):
        y, h = float(turned[i, 1]), float(heights[i])
        if lines:
            overlap = min(line_y + line_h / 2, y + h / 2) - max(line_y - line_h / 2, y - h / 2)
            if overlap >= _LINE_OVERLAP * min(line_h, h):
                members = lines[-1]
                line_y = (line_y * len(members) + y) / (len(members) + 1)
                line_h = (line_h * len(members) + h) / (len(members) + 1)
                members.append(i)
                continue
        lines.append([i])
        line_y, line_h = y, h
    return [sorted(line, key=lambda k: (turned[k, 0], k)) for line in lines]


def _fit_skew(centres: np.ndarray, lines: list[list[int]]) -> float | None:
    """Least-squares slope (degrees) of the centres within their lines, pooled over lines of 2+ boxes."""
    sxx = sxy = 0.0
    for line in lines:
        if len(line) < 2:
            continue
        pts = centres[line]
        dx, dy = pts[:, 0] - pts[:, 0].mean(), pts[:, 1] - pts[:, 1].mean()
        sxx += float((dx * dx).sum())
        sxy += float((dx * dy).sum())
    if sxx <= 0.0:
        return None
    return math.degrees(math.atan2(sxy, sxx))


def estimate_skew(boxes: np.ndarray | Sequence[Sequence[float]], *, max_skew: float = MAX_SKEW_DEGREES) -> float:
    """The page's tilt in degrees (positive: its lines go down to the right in the photo) estimated from
    the boxes' positions (XYXY pixels [N, 4]); 0.0 when fewer than two boxes line up at any angle within
    +-`max_skew`."""
    arr = _as_boxes(boxes)
    if len(arr) < 2:
        return 0.0
    centres = np.stack([(arr[:, 0] + arr[:, 2]) / 2, (arr[:, 1] + arr[:, 3]) / 2], axis=1)
    steps = round(max_skew / _STEP_DEGREES)
    candidates = sorted((k * _STEP_DEGREES for k in range(-steps, steps + 1)), key=abs)
    reach = _REACH * max(float(np.median(arr[:, 3] - arr[:, 1])), 1e-6)
    angles = np.array(candidates)
    chunk = max(1, _MAX_PAIR_VALUES // (len(arr) * len(arr)))  # bounded memory for pages with many boxes
    scores = np.concatenate(
        [_alignment(arr, centres, reach, angles[i : i + chunk]) for i in range(0, len(angles), chunk)]
    )
    # candidates run nearest 0 first and argmax takes the first of equal maxima: the smaller tilt wins a tie
    best = float(candidates[int(np.argmax(np.round(scores, 9)))])
    lines = group_lines(arr, best)
    if all(len(line) < 2 for line in lines):
        return 0.0
    fitted = _fit_skew(centres, lines)
    if fitted is None or abs(fitted - best) > 2 * _STEP_DEGREES + 1.0:
        return best
    return float(np.clip(fitted, -max_skew, max_skew))


def reading_order(boxes: np.ndarray | Sequence[Sequence[float]], *, skew_degrees: float | None = None) -> list[int]:
    """The indices of `boxes` (XYXY pixels [N, 4], any order) in reading order: lines top to bottom, each
    line left to right, in the frame of the page turned upright. `skew_degrees` None estimates the tilt
    (`estimate_skew`); pass a number (e.g. 0.0) to impose one. Deterministic; ties keep input order."""
    arr = _as_boxes(boxes)
    skew = estimate_skew(arr) if skew_degrees is None else float(skew_degrees)
    return [i for line in group_lines(arr, skew) for i in line]
