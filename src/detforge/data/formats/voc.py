"""Pascal VOC: `Annotations/*.xml` (+ `JPEGImages/`, `ImageSets/Main/<subset>.txt`), read and written.

VOC pixel coordinates are 1-based and inclusive; detforge boxes are continuous XYXY, so a VOC box
(xmin, ymin, xmax, ymax) is read as (xmin - 1, ymin - 1, xmax, ymax) and written back inverted.
Messages quote an object's box as written (`object 'cat' <xmin>10</xmin> ...`, with the xml file and line)
and an image by its VOC id (the xml name, `image '2008_000123'`), never detforge's ids or numbers.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from xml.etree.ElementTree import Element, ElementTree, SubElement, indent, tostring

from detforge.data.dataset import Dataset
from detforge.data.formats._xml import XmlDocument, child_text, format_number, parse_number, parse_xml
from detforge.data.images import declared_size, displayed_size
from detforge.data.transcriptions import text_attribute_pairs, text_write_name
from detforge.errors import DatasetError
from detforge.fileio import atomic_write_bytes, atomic_write_text
from detforge.progress import tick
from detforge.structures import Annotation, BBox, Categories, ImageRecord, Location, Problem

__all__ = ["read_voc", "write_voc"]

_FLAGS = ("difficult", "truncated", "occluded", "pose")
_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
_SUBSET_ORDER = ("train", "val", "test")


@dataclass(frozen=True)
class _Object:
    name: str
    bbox: BBox
    attributes: tuple[tuple[str, str], ...]
    location: Location


@dataclass(frozen=True)
class _Item:
    item_id: str  # path of the xml relative to Annotations/, without ".xml" (VOC's image id)
    file_name: str
    path: Path
    width: int
    height: int
    objects: tuple[_Object, ...]
    location: Location | None


def _find_image(root: Path, item_id: str) -> Path | None:
    for ext in _IMAGE_EXTS:
        for candidate in (root / "JPEGImages" / f"{item_id}{ext}", root / "JPEGImages" / f"{item_id}{ext.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def _object_item(name: str, box: Element) -> str:
    """An object's box as written, for messages: `object 'cat' <xmin>10</xmin> <ymin>10</ymin> ...`."""
    written = " ".join(f"<{k}>{child_text(box, k)}</{k}>" for k in ("xmin", "ymin", "xmax", "ymax"))
    return f"object {name!r} {written}"


def _parse_object(obj: Element, doc: XmlDocument, problems: list[Problem]) -> _Object | None:
    where = doc.location(obj)
    name = child_text(obj, "name")
    if not name:
        problems.append(Problem("error", "label.missing", "object without a <name>; left out", where))
        return None
    box = obj.find("bndbox")
    if box is None:
        problems.append(Problem("error", "box.invalid", f"object {name!r} has no <bndbox>; left out", where))
        return None
    values = []
    for key in ("xmin", "ymin", "xmax", "ymax"):
        text = child_text(box, key)
        value = parse_number(text)
        if value is None:
            message = f"object {name!r}: <{key}> is {text!r}, expected a number; left out"
            problems.append(Problem("error", "box.invalid", message, where))
            return None
        values.append(value)
    where = replace(where, item=_object_item(name, box))
    attributes = [(flag, text) for flag in _FLAGS if (text := child_text(obj, flag))]
    actions = obj.find("actions")
    if actions is not None:
        attributes += [(f"action.{a.tag}", (a.text or "").strip()) for a in actions]
    for attr in obj.iterfind("attributes/attribute"):
        attr_name = child_text(attr, "name")
        if attr_name:
            attributes.append((attr_name, child_text(attr, "value") or ""))
    for part in obj.iterfind("part"):
        message = f"part {child_text(part, 'name')!r} of {name!r} ignored (detforge reads whole objects only)"
        problems.append(Problem("info", "voc.part_ignored", message, doc.location(part)))
    x0, y0, x1, y1 = values
    return _Object(name, (x0 - 1.0, y0 - 1.0, x1, y1), tuple(sorted(attributes)), where)


def _parse_item(xml_path: Path, item_id: str, root: Path, problems: list[Problem]) -> _Item | None:
    doc = parse_xml(xml_path)
    if doc.root.tag != "annotation":
        message = f"root element is <{doc.root.tag}>, expected <annotation>; file skipped"
        problems.append(Problem("warning", "voc.not_annotation", message, doc.location(doc.root)))
        return None
    filename = (child_text(doc.root, "filename") or "").replace("\\", "/")
    if filename:
        candidates = [root / "JPEGImages" / filename, xml_path.parent / filename, root / filename]
        path = next((c for c in candidates if c.is_file()), candidates[0])
    else:
        found = _find_image(root, item_id)
        path = found or root / "JPEGImages" / f"{item_id}.jpg"
        filename = path.relative_to(root / "JPEGImages").as_posix()
        if found is None:
            message = f"no <filename> and no image named {item_id}.* in JPEGImages; assuming {filename}"
            problems.append(Problem("warning", "voc.no_filename", message, doc.location(doc.root)))
    width = height = 0
    size = doc.root.find("size")
    if size is not None:
        w, h = parse_number(child_text(size, "width")), parse_number(child_text(size, "height"))
        declared = declared_size(w, h) if (w, h) != (0, 0) else (0, 0)
        if declared is not None:
            width, height = declared
        else:
            given = f"{child_text(size, 'width')!r} x {child_text(size, 'height')!r}"
            message = f"<size> is {given}, expected integers; using the image's size"
            problems.append(Problem("warning", "size.invalid", message, doc.location(size)))
    if width == 0 or height == 0:
        width, height = displayed_size(path)
    objects = [o for obj in doc.root.iterfind("object") if (o := _parse_object(obj, doc, problems))]
    return _Item(item_id, filename, path, width, height, tuple(objects), doc.location())


def _read_label_file(root: Path, problems: list[Problem]) -> list[str] | None:
    """Category names from labelmap.txt (CVAT: `name:color:parts:actions`) or labels.txt; None if neither."""
    labelmap, labels = root / "labelmap.txt", root / "labels.txt"
    source = labelmap if labelmap.is_file() else labels if labels.is_file() else None
    if source is None:
        return None
    names: list[str] = []
    for number, line in enumerate(source.read_text(encoding="utf-8-sig").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name = text.split(":", 1)[0].strip() if source is labelmap else text
        if not name or name in names:
            message = f"label {name!r} is empty or repeated; ignored"
            problems.append(Problem("error", "label.invalid", message, Location(str(source), number)))
            continue
        names.append(name)
    return names


def _subset_order(name: str) -> tuple[int, str]:
    return (_SUBSET_ORDER.index(name) if name in _SUBSET_ORDER else len(_SUBSET_ORDER), name)


def _read_image_sets(root: Path, label_names: set[str], problems: list[Problem]) -> dict[str, str]:
    """Item id -> subset from ImageSets/Main/<subset>.txt (not the `<class>_<subset>.txt` lists)."""
    lists: dict[str, list[str]] = {}
    folder = root / "ImageSets" / "Main"
    for txt in sorted(folder.glob("*.txt")) if folder.is_dir() else []:
        try:
            text = txt.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{txt}: cannot read this image-set list as UTF-8 text ({exc})") from None
        ids = [ln.split() for ln in text.splitlines() if ln.strip()]
        prefix = txt.stem.rsplit("_", 1)[0] if "_" in txt.stem else None
        if (prefix is not None and prefix in label_names) or any(len(tokens) != 1 for tokens in ids):
            continue  # a per-class list "<class>_<subset>.txt": "<id> <-1|0|1>" lines
        lists[txt.stem] = [tokens[0] for tokens in ids]
    if {"train", "val", "trainval"} <= lists.keys() and set(lists["trainval"]) == {*lists["train"], *lists["val"]}:
        del lists["trainval"]
        message = "trainval.txt is the union of train.txt and val.txt; images keep their train/val subset"
        problems.append(Problem("info", "subset.trainval_skipped", message, Location(str(folder / "trainval.txt"))))
    subsets: dict[str, str] = {}
    for subset in sorted(lists, key=_subset_order):
        for number, item_id in enumerate(lists[subset], start=1):
            first = subsets.setdefault(item_id, subset)
            if first != subset:
                message = f"image {item_id!r} is listed in {first}.txt and {subset}.txt; kept in {first}"
                where = Location(str(folder / f"{subset}.txt"), number)
                problems.append(Problem("error", "subset.duplicate", message, where))
    return subsets


def _layout(path: Path) -> tuple[Path, Path, list[Path]]:
    """(dataset root, folder item ids are relative to, xml files) for a VOC folder, xml folder or one file."""
    if path.is_file():
        if path.suffix.lower() != ".xml":
            raise DatasetError(f"{path}: expected a VOC .xml file or a folder with Annotations/")
        base = path.parent
        return (base.parent if base.name == "Annotations" else base), base, [path]
    if not path.is_dir():
        raise DatasetError(f"{path}: no such file or folder")
    base = path / "Annotations" if (path / "Annotations").is_dir() else path
    return path, base, sorted(base.rglob("*.xml"))


def read_voc(path: Path) -> Dataset:
    """Read Pascal VOC from a VOC folder, a folder of VOC xml files, or one xml file.

    Boxes become XYXY pixels (xmin - 1, ymin - 1, xmax, ymax). `difficult`, `truncated`, `occluded`,
    `pose`, `<actions>` (as "action.<name>") and CVAT `<attributes>` become annotation attributes;
    difficult objects are kept (attribute "difficult" = "1"), not dropped or marked crowd. `<part>`s
    are ignored (info Problem). Categories, ids 1..K: labelmap.txt (a leading "background" entry no
    object uses is dropped), else labels.txt, else sorted object names. Subsets from
    ImageSets/Main/<subset>.txt; an image listed in no list has subset None.
    """
    path = Path(path)
    root, base, xml_files = _layout(path)
    problems: list[Problem] = []
    label_names = _read_label_file(root, problems)
    items: dict[str, _Item] = {}
    for xml_path in xml_files:
        item_id = xml_path.relative_to(base).with_suffix("").as_posix()
        item = _parse_item(xml_path, item_id, root, problems)
        if item is not None:
            items[item_id] = item
    used = {o.name for item in items.values() for o in item.objects}
    if label_names is None:
        label_names = sorted(used)
    elif label_names and label_names[0] == "background" and "background" not in used:
        label_names = label_names[1:]
    subsets = _read_image_sets(root, set(label_names), problems)
    if path.is_dir():
        for item_id, subset in subsets.items():
            if item_id in items:
                continue
            image = _find_image(root, item_id)
            where = Location(str(root / "ImageSets" / "Main" / f"{subset}.txt"))
            if image is None:
                message = f"image {item_id!r} in {subset}.txt has no annotation file and no image; left out"
                problems.append(Problem("warning", "subset.missing_item", message, where))
                continue
            message = f"image {item_id!r} has no Annotations/{item_id}.xml; kept as an image with no objects"
            problems.append(Problem("info", "image.no_annotation_file", message, where))
            w, h = displayed_size(image)
            items[item_id] = _Item(item_id, image.relative_to(root / "JPEGImages").as_posix(), image, w, h, (), None)
    if not items:
        raise DatasetError(f"{path}: no VOC annotation files found (expected Annotations/*.xml or *.xml)")
    categories = Categories.from_names(label_names)
    images: list[ImageRecord] = []
    annotations: list[Annotation] = []
    for image_id, item_id in enumerate(sorted(items), start=1):
        item = items[item_id]
        in_subset = subsets.get(item_id)
        named = replace(item.location, item=f"image {item_id!r}") if item.location is not None else None
        images.append(ImageRecord(image_id, item.file_name, item.path, item.width, item.height, in_subset, named))
        for obj in item.objects:
            if obj.name not in label_names:
                message = f"object {obj.name!r} is not a label of the label file (labels: {label_names}); left out"
                problems.append(Problem("error", "label.unknown", message, obj.location, image_id))
                continue
            category_id = categories.by_name(obj.name).id
            ann_id = len(annotations) + 1
            annotations.append(
                Annotation(ann_id, image_id, category_id, obj.bbox, attributes=obj.attributes, source=obj.location)
            )
    return Dataset(tuple(images), tuple(annotations), categories, root, "voc", tuple(problems))


def _item_path(file_name: str) -> PurePosixPath:
    rel = PurePosixPath(file_name.replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        rel = PurePosixPath(rel.name or "image")
    return PurePosixPath(*[p for p in rel.parts if p != "."])


def _add(parent: Element, tag: str, text: str) -> Element:
    child = SubElement(parent, tag)
    child.text = text
    return child


def _annotation_xml(dataset: Dataset, image: ImageRecord, rel: PurePosixPath) -> bytes:
    root = Element("annotation")
    _add(root, "folder", "JPEGImages")
    _add(root, "filename", rel.as_posix())
    width, height = image.width, image.height
    if (width == 0 or height == 0) and image.path.is_file():
        width, height = displayed_size(image.path)
    if width and height:
        size = SubElement(root, "size")
        for key, text in (("width", str(width)), ("height", str(height)), ("depth", "3")):
            _add(size, key, text)
    _add(root, "segmented", "0")
    text_name = text_write_name(dataset)
    for ann in dataset.annotations_of(image.id):
        attrs = text_attribute_pairs(ann, dataset.text_attribute, text_name)  # the transcription as attribute "text"
        if ann.iscrowd:
            attrs.setdefault("difficult", "1")
        attrs.setdefault("difficult", "0")
        obj = SubElement(root, "object")
        _add(obj, "name", dataset.categories.by_id(ann.category_id).name)
        for flag in _FLAGS:
            if flag in attrs:
                _add(obj, flag, attrs.pop(flag))
        box = SubElement(obj, "bndbox")
        x0, y0, x1, y1 = ann.bbox
        for key, number in (("xmin", x0 + 1.0), ("ymin", y0 + 1.0), ("xmax", x1), ("ymax", y1)):
            _add(box, key, format_number(number))
        actions = {k: v for k, v in attrs.items() if k.startswith("action.") and k[7:].isidentifier()}
        if actions:
            acts = SubElement(obj, "actions")
            for key, value in actions.items():
                _add(acts, key[7:], value)
        others = [(k, v) for k, v in attrs.items() if k not in actions]
        if others:
            container = SubElement(obj, "attributes")
            for key, value in others:
                attr = SubElement(container, "attribute")
                _add(attr, "name", key)
                _add(attr, "value", value)
    tree = ElementTree(root)
    indent(tree, space="  ")
    return tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _copy_image(src: Path, dst: Path, image_id: int) -> None:
    if not src.is_file():
        raise DatasetError(f"image {image_id}: {src} does not exist; cannot copy it (use copy_images=False)")
    if dst.exists():
        if dst.samefile(src) or dst.read_bytes() == src.read_bytes():
            return
        raise DatasetError(f"image {image_id}: {dst} already exists and differs from {src}; not overwriting it")
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)
    tick("copy")


def write_voc(dataset: Dataset, out: Path, *, copy_images: bool = True) -> Path:
    """Write `dataset` as Pascal VOC under `out`; returns `out`.

    Writes `Annotations/<file_name without suffix>.xml` (sub-folders kept), `JPEGImages/<file_name>`
    (copied when `copy_images`), `ImageSets/Main/<subset>.txt` (images with subset None are in no
    list) and `labels.txt` with every category name in order (so empty classes survive). Boxes are
    written 1-based (xmin = x_min + 1, ..., xmax = x_max), integers when integral, else 2 decimals.
    Masks are not written (VOC detection has none); crowd boxes are written with difficult=1;
    `difficult` is always written (0 by default) because common VOC readers require it.
    """
    out = Path(out)
    if out.resolve() == Path(dataset.root).resolve():
        raise DatasetError(f"{out}: is the folder the dataset was read from; write VOC to another folder")
    for name in dataset.categories.names:
        if not name.strip() or "\n" in name or "\r" in name:
            raise DatasetError(f"category name {name!r} cannot be written to labels.txt (empty or has a newline)")
    for subset in dataset.subsets:
        if not subset or any(c in subset for c in "/\\\n\r") or subset in (".", ".."):
            raise DatasetError(f"subset name {subset!r} cannot be a VOC ImageSets file name")
    items: dict[str, tuple[ImageRecord, PurePosixPath]] = {}
    for image in dataset.images:
        rel = _item_path(image.file_name)
        item_id = rel.with_suffix("").as_posix()
        if item_id in items:
            first = items[item_id][0]
            raise DatasetError(
                f"images {first.id} ({first.file_name}) and {image.id} ({image.file_name}) would both be written "
                f"as Annotations/{item_id}.xml; rename one of them"
            )
        items[item_id] = (image, rel)
    for item_id, (image, rel) in items.items():
        atomic_write_bytes(out / "Annotations" / f"{item_id}.xml", _annotation_xml(dataset, image, rel))
        if copy_images:
            _copy_image(Path(image.path), out / "JPEGImages" / rel, image.id)
    for subset in dataset.subsets:
        ids = [item_id for item_id, (im, _) in items.items() if im.subset == subset]
        atomic_write_text(out / "ImageSets" / "Main" / f"{subset}.txt", "".join(f"{i}\n" for i in ids))
    atomic_write_text(out / "labels.txt", "".join(f"{n}\n" for n in dataset.categories.names))
    return out
