"""Make a dataset safe to train on: clip boxes to their image, drop the ones that cannot be learned."""

from __future__ import annotations

import math
from dataclasses import replace

from detforge.data.dataset import Dataset
from detforge.structures import Annotation, Problem

__all__ = ["MIN_BOX_SIZE", "sanitize"]

MIN_BOX_SIZE = 1e-3
"""Boxes narrower or shorter than this (pixels), after clipping, are dropped."""


def _clean_one(ann: Annotation, width: int, height: int) -> tuple[Annotation | None, Problem | None]:
    x0, y0, x1, y1 = ann.bbox
    where = dict(location=ann.source, image_id=ann.image_id, annotation_id=ann.id)
    if not all(math.isfinite(v) for v in ann.bbox):
        return None, Problem(
            "error", "box.not_finite", f"annotation {ann.id}: box {ann.bbox} is not finite; dropped", **where
        )  # type: ignore[arg-type]
    if x1 - x0 <= MIN_BOX_SIZE or y1 - y0 <= MIN_BOX_SIZE:
        return None, Problem(
            "error",
            "box.degenerate",
            f"annotation {ann.id}: box {ann.bbox} has zero or negative size; dropped",
            **where,
        )  # type: ignore[arg-type]
    if width <= 0 or height <= 0:
        return ann, None
    cx0, cy0, cx1, cy1 = max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height))
    if cx1 - cx0 <= MIN_BOX_SIZE or cy1 - cy0 <= MIN_BOX_SIZE:
        return None, Problem(
            "error",
            "box.outside_image",
            f"annotation {ann.id}: box {ann.bbox} lies outside the {width}x{height} image; dropped",
            **where,  # type: ignore[arg-type]
        )
    if (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1):
        return replace(ann, bbox=(cx0, cy0, cx1, cy1)), Problem(
            "warning",
            "box.clipped",
            f"annotation {ann.id}: box {ann.bbox} extends past the {width}x{height} image; clipped",
            **where,  # type: ignore[arg-type]
        )
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
