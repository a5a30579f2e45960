"""Leaf types shared by every stage. Imports nothing from the rest of detforge."""

from detforge.structures.annotations import (
    RLE,
    Annotation,
    BBox,
    Categories,
    Category,
    ImageRecord,
    Location,
    Polygons,
    Problem,
    Segmentation,
    Severity,
)

__all__ = [
    "RLE",
    "Annotation",
    "BBox",
    "Categories",
    "Category",
    "ImageRecord",
    "Location",
    "Polygons",
    "Problem",
    "Segmentation",
    "Severity",
]
