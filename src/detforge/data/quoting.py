"""How messages name images and boxes: in the user's own words when the reader kept them.

Readers that remap ids or convert boxes (CVAT image ids -> 1..M, COCO XYWH -> XYXY) set `Location.item`
on the item's `source` to the id and values as written in the file; these helpers quote it, and fall
back to detforge's own id and XYXY box when the reader kept nothing (its ids and numbers are the user's).
"""

from __future__ import annotations

from detforge.structures import Annotation, ImageRecord, Location

__all__ = ["box_label", "image_label", "image_location", "quoted"]


def image_label(image: ImageRecord) -> str:
    """`image 0` as the user's file names the image (e.g. CVAT's `id="0"`), else `image <detforge id>`."""
    source = image.source
    return source.item if source is not None and source.item else f"image {image.id}"


def image_location(image: ImageRecord, file: str | None = None) -> Location:
    """`file` (default: the image file), carrying the user's name of the image when it differs from detforge's."""
    label = image_label(image)
    return Location(file or str(image.path), item=label if label != f"image {image.id}" else None)


def box_label(ann: Annotation) -> str:
    """The annotation and its box as written (`annotation 11 (image 7): bbox [10, 10, -5, 20]`), else
    `annotation <id>: box (x0, y0, x1, y1)` in detforge's XYXY pixels."""
    source = ann.source
    return source.item if source is not None and source.item else f"annotation {ann.id}: box {ann.bbox}"


def quoted(location: Location | None) -> bool:
    """True when `location` carries the user's own name of its item (so internal ids need not be shown)."""
    return location is not None and bool(location.item)
