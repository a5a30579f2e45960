"""Annotation and category checks for `check_dataset`: box geometry, crowds, class balance, unlabelled images."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import replace

from detforge.data.clean import sanitize
from detforge.data.dataset import Dataset
from detforge.data.quoting import box_label, image_label
from detforge.data.stats_text import text_state
from detforge.structures import Annotation, ImageRecord, Location, Problem

__all__ = [
    "ANNOTATION_UNKNOWN_CATEGORY",
    "ANNOTATION_UNKNOWN_IMAGE",
    "BOX_CROWD",
    "BOX_NORMALIZED",
    "CATEGORY_EMPTY",
    "CATEGORY_ID_GAP",
    "CATEGORY_RARE",
    "CATEGORY_ZERO_ID",
    "IMAGE_NO_ANNOTATIONS",
    "LABEL_MISSING",
    "LABEL_MISSING_SUMMARY",
    "NORMALIZED_MIN_SIDE",
    "RARE_INSTANCES",
    "TEXT_BLANK",
    "TEXT_MISSING",
    "box_problems",
    "category_problems",
    "instance_counts",
    "normalized_box_problems",
    "text_problems",
    "unlabelled_image_problems",
]

ANNOTATION_UNKNOWN_IMAGE = "annotation.unknown_image"
ANNOTATION_UNKNOWN_CATEGORY = "annotation.unknown_category"
BOX_CROWD = "box.crowd"
BOX_NORMALIZED = "box.normalized"
CATEGORY_ID_GAP = "category.id_gap"
CATEGORY_ZERO_ID = "category.zero_id"
CATEGORY_EMPTY = "category.empty"
CATEGORY_RARE = "category.rare"
IMAGE_NO_ANNOTATIONS = "image.no_annotations"
LABEL_MISSING = "label_file.missing"
"""The code YOLO-style readers give an image that has no label file."""
LABEL_MISSING_SUMMARY = "label_file.missing_summary"
TEXT_MISSING = "text.missing"
TEXT_BLANK = "text.blank"

RARE_INSTANCES = 10
"""Classes with fewer instances than this are reported as rare (info)."""
NORMALIZED_MIN_SIDE = 32
"""strict: an image at least this many pixels on each side whose boxes all lie within [0, 1] looks normalised."""

_LISTED = 5


def _examples(names: list[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown + (f", ... ({len(names) - _LISTED} more)" if len(names) > _LISTED else "")


def _where(ann: Annotation, image: ImageRecord | None) -> Location | None:
    if ann.source is not None:
        return ann.source
    if image is None:
        return None
    return image.source if image.source is not None else Location(str(image.path))


def box_problems(dataset: Dataset, sizes: dict[int, tuple[int, int]]) -> list[Problem]:
    """Box geometry (via `clean.sanitize`: not finite, degenerate, outside the image, clipped), unknown ids, crowds.

    `sizes` maps image id -> (width, height) of the image as displayed, overriding the declared size
    (pass the file's oriented size when it is known). Problems are in annotation order.
    """
    images = {im.id: im for im in dataset.images}
    sized = tuple(
        replace(im, width=sizes[im.id][0], height=sizes[im.id][1]) if im.id in sizes else im for im in dataset.images
    )
    problems: list[Problem] = []
    orphans: set[int] = set()
    for ann in dataset.annotations:
        image = images.get(ann.image_id)
        if image is None:
            orphans.add(ann.id)
            problems.append(
                Problem(
                    "error",
                    ANNOTATION_UNKNOWN_IMAGE,
                    f"annotation {ann.id}: image id {ann.image_id} is not an image of this dataset",
                    _where(ann, None),
                    ann.image_id,
                    ann.id,
                )
            )
        elif not dataset.categories.has_id(ann.category_id):
            problems.append(
                Problem(
                    "error",
                    ANNOTATION_UNKNOWN_CATEGORY,
                    f"annotation {ann.id}: category id {ann.category_id} is not one of {list(dataset.categories.ids)}",
                    _where(ann, image),
                    ann.image_id,
                    ann.id,
                )
            )
    kept = {a.id: a for a in dataset.annotations if a.id not in orphans}
    _, geometry = sanitize(replace(dataset, images=sized, annotations=tuple(kept.values())))
    for problem in geometry:
        source = kept.get(problem.annotation_id) if problem.annotation_id is not None else None
        if problem.location is None and source is not None:
            problem = replace(problem, location=_where(source, images.get(source.image_id)))
        problems.append(problem)
    order = {a.id: i for i, a in enumerate(dataset.annotations)}
    problems.sort(key=lambda p: order.get(p.annotation_id, -1) if p.annotation_id is not None else -1)
    crowds = [a for a in dataset.annotations if a.iscrowd]
    if crowds:
        problems.append(
            Problem(
                "info",
                BOX_CROWD,
                f"{len(crowds)} crowd annotations (iscrowd): ids {_examples([str(a.id) for a in crowds])}; "
                "they mark regions, not single objects, and are ignored by COCO evaluation",
            )
        )
    return problems


def normalized_box_problems(dataset: Dataset, sizes: dict[int, tuple[int, int]]) -> list[Problem]:
    """strict: one warning per image of at least NORMALIZED_MIN_SIDE pixels whose boxes all lie within [0, 1].

    Such boxes are almost always normalised (YOLO-style) coordinates written where pixels were expected.
    """
    problems: list[Problem] = []
    for image in dataset.images:
        width, height = sizes.get(image.id, (image.width, image.height))
        anns = dataset.annotations_of(image.id)
        if not anns or min(width, height) < NORMALIZED_MIN_SIDE:
            continue
        if all(a.is_finite() and all(0.0 <= v <= 1.0 for v in a.bbox) for a in anns):
            problems.append(
                Problem(
                    "warning",
                    BOX_NORMALIZED,
                    f"{image_label(image)} ({image.file_name}, {width}x{height}): all {len(anns)} boxes lie within "
                    "[0, 1], e.g. " + box_label(anns[0]) + "; they look like normalised coordinates, expected pixels",
                    _where(anns[0], image),
                    image.id,
                    anns[0].id,
                )
            )
    return problems


def instance_counts(dataset: Dataset) -> dict[str, int]:
    """Annotations per category name, in category order, every category present (zeros included)."""
    by_id = Counter(a.category_id for a in dataset.annotations)
    return {c.name: by_id.get(c.id, 0) for c in dataset.categories}


def _first_missing(ids: list[int], k: int) -> list[int]:
    """The first `k` integers missing between sorted unique `ids[0]` and `ids[-1]` (never builds the range)."""
    missing: list[int] = []
    for a, b in itertools.pairwise(ids):
        missing.extend(range(a + 1, min(b, a + 1 + k - len(missing))))
        if len(missing) >= k:
            break
    return missing


def category_problems(dataset: Dataset) -> list[Problem]:
    """Gaps in category ids (info), a 0 id in a COCO dataset (warning), empty (warning) and rare (info) classes."""
    problems: list[Problem] = []
    ids = sorted(dataset.categories.ids)
    if ids:
        gaps = ids[-1] - ids[0] + 1 - len(ids)  # ids are unique
        if gaps:
            shown = [str(i) for i in _first_missing(ids, _LISTED)]
            more = f", ... ({gaps - len(shown)} more)" if gaps > len(shown) else ""
            problems.append(
                Problem(
                    "info",
                    CATEGORY_ID_GAP,
                    f"category ids {ids[0]}..{ids[-1]} have gaps: {', '.join(shown)}{more} unused; "
                    "harmless, detforge maps ids to contiguous indices itself",
                )
            )
    if dataset.format == "coco" and 0 in ids:
        zero = dataset.categories.by_id(0)
        problems.append(
            Problem(
                "warning",
                CATEGORY_ZERO_ID,
                f"category 0 ({zero.name!r}): id 0 collides with the background index some COCO tools reserve; "
                "safe in detforge (it maps ids itself) but other tools may drop or mislabel this class",
            )
        )
    counts = Counter(a.category_id for a in dataset.annotations)
    for category in dataset.categories:
        n = counts.get(category.id, 0)
        if n == 0:
            problems.append(
                Problem(
                    "warning",
                    CATEGORY_EMPTY,
                    f"category {category.id} ({category.name!r}) has no instances",
                )
            )
        elif n < RARE_INSTANCES:
            problems.append(
                Problem(
                    "info",
                    CATEGORY_RARE,
                    f"category {category.id} ({category.name!r}) has only {n} instances (fewer than {RARE_INSTANCES})",
                )
            )
    return problems


def _missing_label_images(dataset: Dataset) -> set[int]:
    by_path = {str(im.path): im.id for im in dataset.images} | {im.file_name: im.id for im in dataset.images}
    found: set[int] = set()
    for p in dataset.problems:
        if p.code != LABEL_MISSING:
            continue
        if p.image_id is not None:
            found.add(p.image_id)
        elif p.location is not None and p.location.file in by_path:
            found.add(by_path[p.location.file])
    return found


def unlabelled_image_problems(dataset: Dataset) -> list[Problem]:
    """Info counts: images with no label file (reader's `label_file.missing`), and other images without objects."""
    problems: list[Problem] = []
    no_file = _missing_label_images(dataset)
    empty = [im for im in dataset.images if not dataset.annotations_of(im.id) and im.id not in no_file]
    if no_file:
        names = [im.file_name for im in dataset.images if im.id in no_file]
        problems.append(
            Problem(
                "info",
                LABEL_MISSING_SUMMARY,
                f"{len(no_file)} images have no label file: {_examples(names)}; they are used as background "
                "(no objects) - add empty label files if that is intended",
            )
        )
    if empty:
        problems.append(
            Problem(
                "info",
                IMAGE_NO_ANNOTATIONS,
                f"{len(empty)} of {len(dataset.images)} images have no annotations (background images): "
                f"{_examples([im.file_name for im in empty])}",
            )
        )
    return problems


def _box_place(ann: Annotation, image: ImageRecord | None, *, where: bool = True) -> str:
    """ "ID on FILE_NAME (file:line)": an annotation as a person finds it."""
    place = _where(ann, image) if where else None
    name = f" on {image.file_name}" if image is not None else ""
    return f"{ann.id}{name}" + (f" ({place})" if place is not None else "")


def text_problems(dataset: Dataset) -> list[Problem]:
    """Transcriptions: per read class (a class with at least one text value), one info counting its boxes
    without text (listing them when there are at most 5: id, image and file:line); one warning per box
    whose text is only whitespace. Text states as `stats_text.text_state` ("" counts as no text)."""
    images = {im.id: im for im in dataset.images}
    names = {c.id: c.name for c in dataset.categories}
    by_class: dict[int, dict[str, list[Annotation]]] = {}
    problems: list[Problem] = []
    for ann in dataset.annotations:
        state = text_state(ann.text)
        by_class.setdefault(ann.category_id, {"value": [], "blank": [], "none": []})[state].append(ann)
        if state == "blank":
            image = images.get(ann.image_id)
            problems.append(
                Problem(
                    "warning",
                    TEXT_BLANK,
                    f"annotation {_box_place(ann, image, where=False)} ({names.get(ann.category_id, '?')!r}): text "
                    f"{ann.text!r} is only whitespace; expected the value written in the box, or no text",
                    _where(ann, image),
                    ann.image_id,
                    ann.id,
                )
            )
    for cid, states in by_class.items():
        missing, values = states["none"], states["value"]
        if not values or not missing:
            continue
        total = sum(len(v) for v in states.values())
        listed = ""
        if len(missing) <= _LISTED:
            word = "annotation" if len(missing) == 1 else "annotations"
            listed = f": {word} " + "; ".join(_box_place(a, images.get(a.image_id)) for a in missing)
        only = missing[0] if len(missing) == 1 else None
        boxes = "1 box has" if only else f"{len(missing)} boxes have"
        problems.append(
            Problem(
                "info",
                TEXT_MISSING,
                f"category {cid} ({names.get(cid, '?')!r}) is read (text on {len(values)} of {total} boxes) but "
                f"{boxes} no text{listed}; add it where the value is legible",
                _where(only, images.get(only.image_id)) if only else None,
                only.image_id if only else None,
                only.id if only else None,
            )
        )
    return problems
