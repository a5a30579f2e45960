"""COCO instances format (also CVAT's "COCO 1.0" export): reader and writer.

Reading: one json file, or a folder with `annotations/*.json` or `*.json`; the subset comes from the
file name (`instances_<s>.json` or `<s>.json` -> `<s>`; `instances.json`/`instances_default.json` -> None).
Roboflow's export is read at its top folder: `<s>/_annotations.coco.json` with images beside it, subset
`<s>` (its `valid` folder is the subset `val`); the workspace class Roboflow lists as category 0 (no
annotation uses it, every other category names it as supercategory) is left out (info
`coco.roboflow_superclass`), so that training does not learn a class that has no boxes.
Boxes go from COCO XYWH to detforge XYXY pixels; category ids are kept as written (gaps and 0 allowed).

Problem codes (`Dataset.problems`; the item is left out unless said otherwise):
- `coco.duplicate_image_id`, `coco.duplicate_annotation_id` (the first is kept),
- `coco.unknown_image`, `coco.unknown_category` (annotation referring to neither of its file),
- `coco.bad_bbox` (bbox not a list of 4 numbers), `coco.bad_value` (error: an id of the wrong type,
  item left out; warning: an optional value ignored, item kept),
- `coco.duplicate_category` (warning), `coco.ids_offset` (info: colliding ids of a later file
  were shifted), `coco.file_skipped` (info: a non-instances json next to instances files).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from detforge.data.dataset import Dataset
from detforge.data.formats._coco_files import ROBOFLOW_FILE, coco_root, find_coco_files
from detforge.data.formats._coco_parse import CocoFile, parse_coco_file
from detforge.data.formats._coco_write import write_coco_dataset
from detforge.errors import DatasetError
from detforge.structures import Annotation, Categories, Category, ImageRecord, Location, Problem

__all__ = ["read_coco", "write_coco"]


def _merge_categories(files: list[CocoFile]) -> Categories:
    by_id: dict[int, tuple[Category, Path]] = {}
    by_name: dict[str, tuple[Category, Path]] = {}
    for f in files:
        for cat in f.categories:
            if cat.id in by_id and by_id[cat.id][0].name != cat.name:
                first, where = by_id[cat.id]
                raise DatasetError(
                    f"category id {cat.id} is {first.name!r} in {where} but {cat.name!r} in {f.path}; "
                    "categories must agree (same id, same name) across files"
                )
            if cat.name in by_name and by_name[cat.name][0].id != cat.id:
                first, where = by_name[cat.name]
                raise DatasetError(
                    f"category {cat.name!r} has id {first.id} in {where} but id {cat.id} in {f.path}; "
                    "categories must agree (same id, same name) across files"
                )
            by_id.setdefault(cat.id, (cat, f.path))
            by_name.setdefault(cat.name, (cat, f.path))
    return Categories(tuple(by_id[i][0] for i in sorted(by_id)))


def _offset(ids: set[int], used: set[int]) -> int:
    """0 when `ids` and `used` are disjoint, else the shift that puts all `ids` above max(`used`)."""
    if not ids & used:
        return 0
    return max(used) - min(ids) + 1


def _shift_problem(p: Problem, image_shift: int, ann_shift: int) -> Problem:
    """`p` with detforge's shifted ids; its location keeps the ids as written (which its message quotes)."""
    written = [f"{kind} {i}" for kind, i in (("image", p.image_id), ("annotation", p.annotation_id)) if i is not None]
    return replace(
        p,
        location=_written(p.location, ", ".join(written)) if written else p.location,
        image_id=None if p.image_id is None else p.image_id + image_shift,
        annotation_id=None if p.annotation_id is None else p.annotation_id + ann_shift,
    )


def _written(source: Location | None, item: str) -> Location | None:
    """`source` naming its item by the ids as written in the file (kept when the reader already quoted it)."""
    if source is None or source.item:
        return source
    return replace(source, item=item)


def _shifted(f: CocoFile, used_images: set[int], used_anns: set[int]) -> tuple[CocoFile, list[Problem]]:
    """The file with image/annotation ids moved clear of ids already used, plus info Problems saying so."""
    image_shift = _offset({im.id for im in f.images}, used_images)
    ann_shift = _offset({a.id for a in f.annotations}, used_anns)
    notes: list[Problem] = []
    for kind, shift in (("image", image_shift), ("annotation", ann_shift)):
        if shift:
            notes.append(
                Problem(
                    "info",
                    "coco.ids_offset",
                    f"{kind} ids of this file collide with those of an earlier file; they were offset by "
                    f"+{shift} (id N in this file is id N+{shift} in the dataset)",
                    Location(str(f.path)),
                )
            )
    if not (image_shift or ann_shift):
        return f, notes
    images = tuple(replace(im, id=im.id + image_shift, source=_written(im.source, f"image {im.id}")) for im in f.images)
    anns = tuple(
        replace(
            a,
            id=a.id + ann_shift,
            image_id=a.image_id + image_shift,
            source=_written(a.source, f"annotation {a.id} (image {a.image_id})"),
        )
        for a in f.annotations
    )
    problems = tuple(_shift_problem(p, image_shift, ann_shift) for p in f.problems)
    return replace(f, images=images, annotations=anns, problems=problems), notes


def read_coco(path: Path) -> Dataset:
    """Read COCO instances from a json file or a folder of them into one Dataset.

    Boxes are absolute pixel XYXY; polygons absolute pixels; RLE kept as written (counts list or
    compressed string, size (height, width)). Image width/height are as declared, else read from the
    image header (EXIF-oriented), else 0. Several files become several subsets; when their image or
    annotation ids collide, the later file's ids are offset (info Problem `coco.ids_offset`).
    Raises DatasetError for unreadable or structurally invalid files and for categories that
    disagree between files.
    """
    path = Path(path)
    json_files, problems = find_coco_files(path)
    files = [parse_coco_file(f) for f in json_files]
    categories = _merge_categories(files)
    images: list[ImageRecord] = []
    annotations: list[Annotation] = []
    used_images: set[int] = set()
    used_anns: set[int] = set()
    for f in files:
        f, notes = _shifted(f, used_images, used_anns)
        images += f.images
        annotations += f.annotations
        problems += notes
        problems += f.problems
        used_images.update(im.id for im in f.images)
        used_anns.update(a.id for a in f.annotations)
    if any(f.name == ROBOFLOW_FILE for f in json_files):
        categories, note = _without_roboflow_superclass(categories, annotations, json_files[0])
        problems += note
    root = path if path.is_dir() else coco_root(path)
    return Dataset(tuple(images), tuple(annotations), categories, root, "coco", tuple(problems))


def _without_roboflow_superclass(
    categories: Categories, annotations: list[Annotation], where: Path
) -> tuple[Categories, list[Problem]]:
    """Roboflow's category 0 (the workspace's name, supercategory of every other class, never used) left out."""
    zero = next((c for c in categories if c.id == 0), None)
    others = [c for c in categories if c.id != 0]
    if zero is None or not others or any(a.category_id == 0 for a in annotations):
        return categories, []
    if any(c.supercategory != zero.name for c in others):
        return categories, []
    note = Problem(
        "info",
        "coco.roboflow_superclass",
        f"category 0 ({zero.name!r}) is Roboflow's workspace class (no annotation uses it; it is the "
        "supercategory of every other class); left out of the classes",
        Location(str(where)),
    )
    return Categories(tuple(others)), [note]


def write_coco(dataset: Dataset, out: Path, *, copy_images: bool = True) -> Path:
    """Write `dataset` as COCO to the folder `out`; returns `out`.

    One `out/annotations/instances_<subset>.json` per subset (`instances.json` for subset None), boxes
    as XYWH, `area` as given (else the box area), polygons / RLE / `[]` segmentation, `iscrowd`,
    CVAT-style `attributes` when present. With `copy_images`, images are copied to
    `out/images/<subset>/<file_name>` (`out/images/<file_name>` for subset None); an existing different
    file is never overwritten (DatasetError). Non-finite boxes and overwriting an input annotation
    file raise DatasetError.
    """
    return write_coco_dataset(dataset, Path(out), copy_images=copy_images)
