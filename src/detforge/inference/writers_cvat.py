"""Predictions as a CVAT for images 1.1 task annotations file, importable into CVAT as pre-annotations.

Written with ElementTree (every name and value escaped); boxes are `source="auto"` rectangles in
the image's displayed frame. Import into a task whose labels include the written ones ("Upload
annotations" -> "CVAT 1.1").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from xml.etree.ElementTree import Element, ElementTree, SubElement, indent, tostring

from detforge.fileio import atomic_write_bytes
from detforge.inference.predictor import PredictionResult
from detforge.visualization.colors import color_for

__all__ = ["TEXT_ATTRIBUTE", "write_cvat"]

TEXT_ATTRIBUTE = "text"
"""Name of the CVAT label attribute (input type text) that carries the value read in a box."""


def _text(parent: Element, tag: str, text: str) -> Element:
    elem = SubElement(parent, tag)
    elem.text = text
    return elem


def _labels(task: Element, class_names: Sequence[str], score_attribute: bool, text_attribute: bool) -> None:
    labels = SubElement(task, "labels")
    for i, name in enumerate(class_names):
        label = SubElement(labels, "label")
        _text(label, "name", name)
        _text(label, "color", "#{:02x}{:02x}{:02x}".format(*color_for(i)))
        _text(label, "type", "rectangle")
        attributes = SubElement(label, "attributes")
        if score_attribute:
            attribute = SubElement(attributes, "attribute")
            _text(attribute, "name", "score")
            _text(attribute, "mutable", "False")
            _text(attribute, "input_type", "number")
            _text(attribute, "default_value", "0")
            _text(attribute, "values", "0\n1\n0.01")
        if text_attribute:  # free text: the value read, for the reviewer to correct
            attribute = SubElement(attributes, "attribute")
            _text(attribute, "name", TEXT_ATTRIBUTE)
            _text(attribute, "mutable", "False")
            _text(attribute, "input_type", "text")
            _text(attribute, "default_value", "")
            _text(attribute, "values", "")


def write_cvat(
    results: Sequence[PredictionResult],
    out: str | Path,
    class_names: Sequence[str],
    *,
    task_name: str = "detforge predictions",
    score_attribute: bool = False,
) -> Path:
    """Write `out` (an annotations .xml): `<meta><task>` with one rectangle label per class name (in class
    order, palette colours) and one `<image>` per successful result (id in result order, `name` = the
    result's source name, oriented width/height) holding a `<box>` per detection (XYXY pixels clipped to
    the image, 2 decimals). With `score_attribute`, each label declares a number attribute "score" and
    each box carries its score (the CVAT task's labels then need that attribute too). When any detection was
    read, each label declares a text attribute "text" and each box that was read carries its value in
    `<attribute name="text">` (so a reviewer corrects the text and the box in one pass). Atomic.
    """
    names = [str(n) for n in class_names]
    root = Element("annotations")
    _text(root, "version", "1.1")
    meta = SubElement(root, "meta")
    task = SubElement(meta, "task")
    ok = [r for r in results if r.detections is not None and r.image_size is not None]
    _text(task, "name", task_name)
    _text(task, "size", str(len(ok)))
    _text(task, "mode", "annotation")
    has_text = any(r.detections is not None and r.detections.has_text for r in ok)
    _labels(task, names, score_attribute, has_text)
    _text(meta, "dumped", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    for image_id, result in enumerate(ok):
        assert result.detections is not None and result.image_size is not None
        height, width = result.image_size
        attrs = {"id": str(image_id), "name": result.source, "width": str(width), "height": str(height)}
        image = SubElement(root, "image", attrs)
        for index, label, score, (x0, y0, x1, y1) in result.clipped_indexed():
            if not 0 <= label < len(names):
                raise ValueError(f"write_cvat: {result.source}: label {label} has no class name (have {len(names)})")
            box_attrs = {
                "label": names[label],
                "source": "auto",
                "occluded": "0",
                "xtl": f"{x0:.2f}",
                "ytl": f"{y0:.2f}",
                "xbr": f"{x1:.2f}",
                "ybr": f"{y1:.2f}",
                "z_order": "0",
            }
            box = SubElement(image, "box", box_attrs)
            if score_attribute:
                attribute = SubElement(box, "attribute", {"name": "score"})
                attribute.text = f"{score:.4f}"
            read = result.text(index)
            if read is not None:
                SubElement(box, "attribute", {"name": TEXT_ATTRIBUTE}).text = read[0]
    tree = ElementTree(root)
    indent(tree, space="  ")
    data = b'<?xml version="1.0" encoding="utf-8"?>\n' + tostring(root, encoding="utf-8", xml_declaration=False) + b"\n"
    return atomic_write_bytes(out, data)
