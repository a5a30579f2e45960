"""CVAT for images 1.1 XML (task or project export): boxes and polygons; reader and writer.

Rotated boxes are refused (an error Problem, box left out): detforge never turns a rotated box into
an axis-aligned one silently. Shapes detforge cannot train on are skipped with a warning each.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from xml.etree.ElementTree import Element

from detforge.data.dataset import Dataset
from detforge.data.formats._cvat_write import write_cvat_dataset
from detforge.data.formats._xml import XmlDocument, child_text, parse_number, parse_xml
from detforge.data.images import declared_size, displayed_size
from detforge.errors import DatasetError
from detforge.structures import Annotation, BBox, Categories, ImageRecord, Polygons, Problem

__all__ = ["read_cvat", "write_cvat"]

_UNSUPPORTED = ("polyline", "points", "ellipse", "mask", "cuboid", "skeleton", "tag")
_NO_SUBSET = ("", "default")


@dataclass(frozen=True)
class _Shape:
    label: str
    bbox: BBox
    polygons: Polygons | None
    attributes: tuple[tuple[str, str], ...]


def _label_names(doc: XmlDocument) -> list[str]:
    """Label names of `<meta><task|project><labels>` in file order (skeleton sub-labels left out)."""
    names: list[str] = []
    for label in doc.root.iterfind("meta/*/labels/label"):
        name = child_text(label, "name")
        if name and not child_text(label, "parent") and name not in names:
            names.append(name)
    return names


def _text_fields(doc: XmlDocument) -> list[str]:
    """Names of label attributes declared with `<input_type>text</input_type>` (free text: a transcription)."""
    names: list[str] = []
    for attr in doc.root.iterfind("meta/*/labels/label/attributes/attribute"):
        name = child_text(attr, "name")
        if name and (child_text(attr, "input_type") or "").lower() == "text" and name not in names:
            names.append(name)
    return names


def _subset(text: str | None) -> str | None:
    if text is None or text.strip().lower() in _NO_SUBSET:
        return None
    return text.strip()


def _attributes(elem: Element) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = [(key, elem.attrib[key]) for key in ("occluded", "z_order") if key in elem.attrib]
    # Trimmed, but a value of only whitespace is kept as is (data check warns about such a transcription).
    pairs += [(a.attrib.get("name", ""), (a.text or "").strip() or (a.text or "")) for a in elem.iterfind("attribute")]
    return tuple(sorted((k, v) for k, v in pairs if k))


def _image_ident(elem: Element) -> str | None:
    """`image 0` for `<image id="0">` (the user's id, not detforge's 1..M); None without an id."""
    ident = elem.attrib.get("id")
    return f"image {ident}" if ident else None


def _image_label(elem: Element) -> str:
    """The image as the file names it: `image 0 (a.jpg)` for `<image id="0" name="a.jpg">`."""
    ident = _image_ident(elem)
    name = elem.attrib.get("name", "")
    return f"{ident} ({name})" if ident else f"image {name!r}"


def _shape_item(elem: Element, image: str) -> str:
    """A shape as written, for messages: `<box label="cat" xtl="10" ytl="10" xbr="5" ybr="30"> on image 0 (a.jpg)`."""
    keys = ("label", "xtl", "ytl", "xbr", "ybr", "rotation") if elem.tag == "box" else ("label", "points")
    written = " ".join(f'{k}="{_shorten(elem.attrib[k])}"' for k in keys if k in elem.attrib)
    return f"<{elem.tag} {written}> on {image}"


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parse_points(text: str) -> tuple[float, ...] | None:
    values: list[float] = []
    for pair in text.split(";"):
        xy = pair.split(",")
        numbers = [parse_number(v) for v in xy]
        if len(xy) != 2 or None in numbers:
            return None
        values += [float(n) for n in numbers if n is not None]
    return tuple(values)


def _parse_shape(elem: Element, image_name: str, doc: XmlDocument, problems: list[Problem]) -> _Shape | None:
    """`image_name` is the image's label as the file names it (`_image_label`)."""
    where = replace(doc.location(elem), item=_shape_item(elem, image_name))
    label = elem.attrib.get("label", "")
    if elem.tag == "box":
        rotation = parse_number(elem.attrib.get("rotation", "0"))
        if rotation is None or rotation % 360 != 0:
            problems.append(
                Problem(
                    "error",
                    "box.rotated",
                    f"{image_name}: box {label!r} has rotation="
                    f"{elem.attrib.get('rotation')!r}; detforge does not make rotated boxes "
                    "axis-aligned silently, so it is left out",
                    where,
                )
            )
            return None
        coords = [parse_number(elem.attrib.get(k)) for k in ("xtl", "ytl", "xbr", "ybr")]
        if any(c is None for c in coords):
            values = {k: elem.attrib.get(k) for k in ("xtl", "ytl", "xbr", "ybr")}
            problems.append(
                Problem(
                    "error",
                    "box.invalid",
                    f"{image_name}: box {label!r} has coordinates {values}, expected four numbers; left out",
                    where,
                )
            )
            return None
        x0, y0, x1, y1 = (float(c) for c in coords if c is not None)
        return _Shape(label, (x0, y0, x1, y1), None, _attributes(elem))
    points = _parse_points(elem.attrib.get("points", ""))
    if points is None or len(points) < 6:
        problems.append(
            Problem(
                "error",
                "polygon.invalid",
                f"{image_name}: polygon {label!r} has points="
                f"{elem.attrib.get('points')!r}, expected at least 3 'x,y' pairs; left out",
                where,
            )
        )
        return None
    polygons = Polygons((points,))
    return _Shape(label, polygons.bbox(), polygons, _attributes(elem))


def _image_path(root: Path, xml_dir: Path, name: str, subset: str | None) -> Path:
    candidates = [root / "images" / subset / name] if subset else []
    candidates += [root / "images" / name, xml_dir / name]
    return next((c for c in candidates if c.is_file()), candidates[-2])


def _size(elem: Element, path: Path) -> tuple[int, int]:
    w, h = parse_number(elem.attrib.get("width")), parse_number(elem.attrib.get("height"))
    return declared_size(w, h) or displayed_size(path)


def _xml_files(path: Path) -> tuple[Path, list[Path]]:
    if path.is_file():
        return path.parent, [path]
    if not path.is_dir():
        raise DatasetError(f"{path}: no such file or folder")
    files = sorted(path.glob("*.xml")) or sorted((path / "annotations").glob("*.xml"))
    if not files:
        raise DatasetError(f"{path}: no CVAT .xml file found (expected annotations.xml or <subset>.xml)")
    return path, files


def read_cvat(path: Path) -> Dataset:
    """Read a CVAT for images 1.1 XML export (one file, or a folder of them with `images/`).

    Boxes (xtl, ytl, xbr, ybr) are already XYXY pixels; polygons become `Polygons` plus their bbox.
    `occluded`, `z_order` and `<attribute>`s become annotation attributes; label attributes declared
    with input_type text are the candidates for the transcription (`Dataset.text_fields`). Categories are the meta
    labels in file order, ids 1..K. Image ids are 1..M in file order; an image's subset is its
    `subset` attribute, else the task's `<subset>`, else None ("default" counts as None).
    Unsupported shapes (polyline, points, ellipse, mask, cuboid, skeleton, tag, tracks) are skipped
    with a warning each; rotated boxes and unknown or empty labels are error Problems (left out).
    """
    path = Path(path)
    root, files = _xml_files(path)
    problems: list[Problem] = []
    names: list[str] = []
    text_fields: list[str] = []
    images: list[ImageRecord] = []
    annotations: list[Annotation] = []
    for xml_path in files:
        doc = parse_xml(xml_path)
        if doc.root.tag != "annotations":
            if path.is_file():
                raise DatasetError(f"{xml_path}: root element is <{doc.root.tag}>, expected CVAT's <annotations>")
            continue
        file_names = _label_names(doc)
        if not file_names:
            problems.append(
                Problem(
                    "warning",
                    "cvat.no_labels",
                    "no <meta> labels; categories are the sorted labels used by shapes",
                    doc.location(doc.root),
                )
            )
            file_names = sorted({e.attrib.get("label", "") for e in doc.root.iterfind("image/*")} - {""})
        names += [n for n in file_names if n not in names]
        text_fields += [n for n in _text_fields(doc) if n not in text_fields]
        task_subset = _subset(child_text(doc.root, "meta/task/subset"))
        for track in doc.root.iterfind("track"):
            problems.append(
                Problem(
                    "warning",
                    "shape.unsupported",
                    f"<track> {track.attrib.get('id')!r} skipped: export as 'CVAT for images' to get per-image shapes",
                    doc.location(track),
                )
            )
        for image_elem in doc.root.iterfind("image"):
            name = image_elem.attrib.get("name", "")
            subset = _subset(image_elem.attrib.get("subset")) if "subset" in image_elem.attrib else task_subset
            image_path = _image_path(root, xml_path.parent, name, subset)
            width, height = _size(image_elem, image_path)
            image_id = len(images) + 1
            label = _image_label(image_elem)
            image_where = replace(doc.location(image_elem), item=_image_ident(image_elem))
            images.append(ImageRecord(image_id, name, image_path, width, height, subset, image_where))
            for elem in image_elem:
                where = replace(doc.location(elem), item=_shape_item(elem, label))
                if elem.tag not in ("box", "polygon"):
                    if elem.tag in _UNSUPPORTED:
                        problems.append(
                            Problem(
                                "warning",
                                "shape.unsupported",
                                f"{label}: <{elem.tag}> "
                                f"{elem.attrib.get('label', '')!r} skipped (detforge reads boxes and "
                                "polygons)",
                                where,
                                image_id,
                            )
                        )
                    continue
                shape = _parse_shape(elem, label, doc, problems)
                if shape is None:
                    continue
                if shape.label not in file_names:
                    what = f"label {shape.label!r}" if shape.label else "an empty label"
                    message = f"{label}: <{elem.tag}> has {what}, not one of the task's labels {file_names}; left out"
                    code = "label.unknown" if shape.label else "label.missing"
                    problems.append(Problem("error", code, message, where, image_id))
                    continue
                annotations.append(
                    Annotation(
                        len(annotations) + 1,
                        image_id,
                        names.index(shape.label) + 1,
                        shape.bbox,
                        shape.polygons,
                        attributes=shape.attributes,
                        source=where,
                    )
                )
    if not images and not names:
        raise DatasetError(f"{path}: no CVAT <annotations> with <image> elements found")
    categories = Categories.from_names(names)
    return Dataset(
        tuple(images), tuple(annotations), categories, root, "cvat", tuple(problems), text_fields=tuple(text_fields)
    )


def write_cvat(dataset: Dataset, out: Path, *, copy_images: bool = True) -> Path:
    """Write `dataset` as CVAT for images 1.1 XML to the folder `out`; returns `out`.

    One `out/annotations.xml` (importable into a CVAT task as "CVAT 1.1"): every category is a meta
    label; each image an `<image>` with its `subset`; each annotation a `<box>` (XYXY pixels), or a
    `<polygon>` when it has exactly one polygon whose bbox is its box (other masks are not written).
    `occluded`/`z_order` attributes become the shape's own; every other attribute an `<attribute>`
    declared on its label (input_type select with the values used). The transcription is the
    attribute `text`, declared with input_type text. With `copy_images`, images are copied to
    `out/images/<subset>/<file_name>` (`out/images/<file_name>` for subset None); an existing different
    file is never overwritten. Overwriting an input annotation file raises DatasetError.
    """
    return write_cvat_dataset(dataset, Path(out), copy_images=copy_images)
