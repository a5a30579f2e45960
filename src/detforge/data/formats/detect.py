"""Guess a dataset's format from its path, reading as little as possible."""

from __future__ import annotations

import json
from pathlib import Path

from detforge.errors import DatasetError

__all__ = ["detect_format"]

_PEEK_BYTES = 1 << 20


def _json_kind(path: Path) -> str | None:
    try:
        with path.open("rb") as f:
            head = f.read(_PEEK_BYTES)
    except OSError:
        return None
    obj = None
    if len(head) < _PEEK_BYTES:  # the whole file: parse it; a large file is only sniffed
        try:
            obj = json.loads(head)
        except ValueError:
            obj = None
    if obj is None:
        text = head.decode("utf-8", "replace")
        if '"annotations"' in text and '"images"' in text:
            return "coco"
        if '"shapes"' in text and '"imagePath"' in text:
            return "labelme"
        if text.lstrip().startswith("[") and '"data"' in text:
            return "labelstudio"
        return None
    if isinstance(obj, dict):
        if "images" in obj and ("annotations" in obj or "categories" in obj):
            return "coco"
        if "shapes" in obj and "imagePath" in obj:
            return "labelme"
    if isinstance(obj, list) and obj and isinstance(obj[0], dict) and "data" in obj[0]:
        return "labelstudio"
    return None


def _xml_kind(path: Path) -> str | None:
    try:
        with path.open("rb") as f:
            head = f.read(4096).decode("utf-8", "replace")
    except OSError:
        return None
    if "<annotations" in head:
        return "cvat"
    if "<annotation" in head:
        return "voc"
    return None


def _file_kind(path: Path) -> str | None:
    name = path.name.lower()
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _json_kind(path)
    if suffix == ".xml":
        return _xml_kind(path)
    if suffix in (".yaml", ".yml") or name in ("obj.data", "obj.names"):
        return "yolo"
    return None


def detect_format(path: str | Path) -> str:
    """Return one of "coco", "yolo", "voc", "cvat", "labelme", "labelstudio" for a file or folder.

    Raises DatasetError saying what was looked for when nothing matches.
    """
    path = Path(path)
    if path.is_file():
        kind = _file_kind(path)
        if kind:
            return kind
        raise DatasetError(
            f"{path}: cannot tell the dataset format of this file (expected a COCO/LabelMe/Label Studio "
            ".json, a CVAT/VOC .xml, or a YOLO data.yaml/obj.data); pass --format"
        )
    if not path.is_dir():
        raise DatasetError(f"{path}: no such file or folder")
    if any((path / n).is_file() for n in ("data.yaml", "data.yml", "dataset.yaml", "obj.data", "obj.names")):
        return "yolo"
    if (path / "Annotations").is_dir():
        return "voc"
    ann_dir = path / "annotations"
    for folder in (ann_dir, path):
        if folder.is_dir():
            for f in sorted(folder.glob("*.json")):
                kind = _json_kind(f)
                if kind:
                    return kind
            for f in sorted(folder.glob("*.xml")):
                kind = _xml_kind(f)
                if kind:
                    return kind
    if any(_json_kind(f) == "coco" for f in path.glob("*/_annotations.coco.json")):  # Roboflow's COCO export
        return "coco"
    if (path / "labels").is_dir() and (path / "images").is_dir():
        return "yolo"
    for split in ("train", "val", "test"):  # LabelMe files in split sub-folders (as detforge writes them)
        first = next(iter(sorted((path / split).glob("*.json"))), None) if (path / split).is_dir() else None
        if first is not None and _json_kind(first) == "labelme":
            return "labelme"
    if any(path.glob("*.yaml")):
        return "yolo"
    raise DatasetError(
        f"{path}: cannot tell the dataset format of this folder. Looked for: data.yaml or obj.names (YOLO), "
        "Annotations/ (VOC), annotations/*.json or *.json (COCO, LabelMe, Label Studio), *.xml (CVAT, VOC), "
        "<subset>/_annotations.coco.json (Roboflow COCO), images/ + labels/ (YOLO). Pass --format to choose one."
    )
