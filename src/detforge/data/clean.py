"""Make a dataset safe to train on: clip boxes to their image, drop the ones that cannot be learned."""

from __future__ import annotations

import math
from dataclasses import replace

from detforge.data.dataset import Dataset
from detforge.data.quoting import box_label
from detforge.structures import Annotation, Problem, Severity

__all__ = ["MIN_BOX_SIZE", "sanitize"]

MIN_BOX_SIZE = 1e-3
"""Boxes narrower or shorter than this (pixels), after clipping, are dropped."""


def _problem(severity: Severity, code: str, message: str, ann: Annotation) -> Problem:
    return Problem(severity, code, f"{box_label(ann)} {message}", ann.source, ann.image_id, ann.id)


def _clean_one(ann: Annotation, width: int, height: int) -> tuple[Annotation | None, Problem | None]:
    x0, y0, x1, y1 = ann.bbox
    if not all(math.isfinite(v) for v in ann.bbox):
        return None, _problem("error", "box.not_finite", "is not finite; dropped", ann)
    if x1 - x0 <= MIN_BOX_SIZE or y1 - y0 <= MIN_BOX_SIZE:
        return None, _problem("error", "box.degenerate", "has zero or negative size; dropped", ann)
    if width <= 0 or height <= 0:
        return ann, None
    cx0, cy0, cx1, cy1 = max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height))
    if cx1 - cx0 <= MIN_BOX_SIZE or cy1 - cy0 <= MIN_BOX_SIZE:
        return None, _problem("error", "box.outside_image", f"lies outside the {width}x{height} image; dropped", ann)
    if (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1):
        clipped = replace(ann, bbox=(cx0, cy0, cx1, cy1))
        return clipped, _problem("warning", "box.clipped", f"extends past the {width}x{height} image; clipped", ann)
    return ann, None


def sanitize(dataset: Dataset) -> tuple[Dataset, tuple[Problem, ...]]:
    """Clip boxes to their image and drop non-finite, degenerate and fully-outside ones.

    Returns the cleaned dataset (same images and categories) and one Problem per changed annotation.
    Images of unknown size (0) keep their boxes unclipped.
    """
    sizes = {im.id: (im.width, im.height) for im in dataset.images}
    kept: list[Annotation] = []
    problems: list[Problem] = []
    for ann in dataset.annotations:
        new, problem = _clean_one(ann, *sizes.get(ann.image_id, (0, 0)))
        if new is not None:
            kept.append(new)
        if problem is not None:
            problems.append(problem)
    return replace(dataset, annotations=tuple(kept)), tuple(problems)
