"""Prediction outputs: COCO results JSON, YOLO txt, CSV, CVAT XML, Label Studio JSON and drawn images.

Every writer takes the `PredictionResult`s of a run (results with an error are left out), writes
atomically, and puts boxes in the frame of the image as displayed, clipped to the image; boxes
that are empty after clipping are left out. Class names index by the detections' labels 0..K-1.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from PIL import Image

from detforge.fileio import atomic_write_bytes, atomic_write_json, atomic_write_text
from detforge.inference.predictor import PredictionResult
from detforge.inference.sources import load_image_file
from detforge.inference.writers_cvat import write_cvat
from detforge.inference.writers_labelstudio import write_labelstudio
from detforge.structures.boxes import coco_bbox, yolo_cxcywh
from detforge.structures.detections import Detections
from detforge.structures.prediction_formats import PREDICTION_FORMATS, PredictionFormat
from detforge.visualization.draw import draw_boxes

__all__ = [
    "CSV_COLUMNS",
    "PredictionFormat",
    "draw_detections",
    "output_path",
    "save_images",
    "write_coco_results",
    "write_csv",
    "write_cvat",
    "write_labelstudio",
    "write_predictions",
    "write_yolo",
]

CSV_COLUMNS = ("file", "class", "score", "x_min", "y_min", "x_max", "y_max", "width", "height", "text", "text_score")
"""CSV header: source name, class name, score, XYXY box in pixels, the image's width and height, then the value
read in the box and its confidence (both empty when the box was not read)."""

_DRAW_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _ok(results: Sequence[PredictionResult]) -> list[PredictionResult]:
    return [r for r in results if r.detections is not None and r.image_size is not None]


def _class_name(names: Sequence[str], label: int, source: str) -> str:
    if not 0 <= label < len(names):
        raise ValueError(f"{source}: label {label} has no class name (have {len(names)} names)")
    return str(names[label])


def output_path(name: str, suffix: str) -> PurePosixPath:
    """A safe relative path for the output of the source `name`, with `suffix`: the name's relative path
    (folder runs keep their sub-folders), or only its sanitised file name for absolute paths (also
    Windows drive paths), paths with "..", and in-memory sources ("<array 1>" -> "array_1")."""
    path = PurePosixPath(name.replace("\\", "/"))
    if name.startswith("<") or path.is_absolute() or ".." in path.parts or not path.parts or ":" in path.parts[0]:
        stem = _UNSAFE.sub("_", PurePosixPath(path.name).stem if path.parts else "image").strip("_") or "image"
        return PurePosixPath(stem + suffix)
    return path.with_suffix(suffix)


def _unique(paths: Sequence[PurePosixPath]) -> list[PurePosixPath]:
    seen: set[str] = set()
    out = []
    for p in paths:
        candidate, n = p, 1
        while str(candidate).lower() in seen:
            n += 1
            candidate = p.with_name(f"{p.stem}_{n}{p.suffix}")
        seen.add(str(candidate).lower())
        out.append(candidate)
    return out


def write_coco_results(
    results: Sequence[PredictionResult],
    out: str | Path,
    *,
    category_ids: Sequence[int] | None = None,
    image_ids: Mapping[str, int] | None = None,
) -> Path:
    """Write a COCO results file (JSON list of {image_id, category_id, bbox [x, y, w, h] pixels, score}, plus
    `text` (the value read) and `text_score` (its confidence, 4 decimals) on each detection that was read).

        `category_ids[label]` is the dataset id of each class (default label + 1). `image_ids` maps source
        names to dataset image ids (every successful source must be in it); default 1..N in result order
        (counting failed results too, so ids do not shift when an image fails). Atomic.
    """
    rows = []
    for index, result in enumerate(results, start=1):
        if result.detections is None:
            continue
        if image_ids is not None:
            if result.source not in image_ids:
                raise ValueError(f"write_coco_results: no image id for {result.source!r} in image_ids")
            image_id = int(image_ids[result.source])
        else:
            image_id = index
        for index, label, score, box in result.clipped_indexed():
            if category_ids is not None and not 0 <= label < len(category_ids):
                raise ValueError(f"write_coco_results: {result.source}: label {label} has no category id")
            category_id = int(category_ids[label]) if category_ids is not None else label + 1
            bbox = coco_bbox(box, 2)
            row = {"image_id": image_id, "category_id": category_id, "bbox": bbox, "score": round(score, 5)}
            read = result.text(index)
            if read is not None:
                row.update(text=read[0], text_score=round(read[1], 4))
            rows.append(row)
    return atomic_write_json(out, rows, indent=None)


def write_yolo(results: Sequence[PredictionResult], out_dir: str | Path) -> Path:
    """Write one `<source>.txt` per successful result under `out_dir` (sub-folders kept, see `output_path`):
    a line "class cx cy w h conf" per detection, coordinates normalised to [0, 1] by the image size,
    6 decimals; an image without detections gets an empty file. Returns `out_dir`."""
    out_dir = Path(out_dir)
    ok = _ok(results)
    for result, rel in zip(ok, _unique([output_path(r.source, ".txt") for r in ok]), strict=True):
        assert result.image_size is not None
        height, width = result.image_size
        lines = []
        for label, score, box in result.clipped():
            cx, cy, w, h = yolo_cxcywh(box, width, height)
            lines.append(f"{label} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f} {score:.6f}\n")
        atomic_write_text(out_dir / rel, "".join(lines))
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def write_csv(results: Sequence[PredictionResult], out: str | Path, class_names: Sequence[str]) -> Path:
    """Write a CSV with header `CSV_COLUMNS`, one row per detection of the successful results (pixels,
    2 decimals; score 4 decimals; width/height are the image's; text and text score 4 decimals, empty for a
    box that was not read). Atomic."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for result in _ok(results):
        assert result.image_size is not None
        height, width = result.image_size
        for index, label, score, (x0, y0, x1, y1) in result.clipped_indexed():
            name = _class_name(class_names, label, result.source)
            box = [f"{v:.2f}" for v in (x0, y0, x1, y1)]
            read = result.text(index)
            text = ["", ""] if read is None else [read[0], f"{read[1]:.4f}"]
            writer.writerow([result.source, name, f"{score:.4f}", *box, width, height, *text])
    return atomic_write_text(out, buffer.getvalue())


def draw_detections(image: Image.Image, detections: Detections, class_names: Sequence[str]) -> Image.Image:
    """A new RGB image with each detection drawn: box and mask in its class colour, tag "name 0.87", and the
    value read (when the box was read) in large type beside the box."""
    labels = [int(v) for v in detections.labels.tolist()]
    names = [str(class_names[v]) if 0 <= v < len(class_names) else str(v) for v in labels]
    masks = None if detections.masks is None else detections.masks.cpu().numpy().astype(bool)
    return draw_boxes(
        image,
        detections.boxes.cpu().numpy(),
        names,
        scores=[float(s) for s in detections.scores.tolist()],
        class_ids=labels,
        masks=masks,
        texts=detections.texts,
    )


def save_images(
    results: Sequence[PredictionResult],
    out_dir: str | Path,
    class_names: Sequence[str],
    *,
    images: Mapping[str, Image.Image] | None = None,
) -> list[Path]:
    """Save each successful result's image with its detections drawn under `out_dir` (relative paths as in
    `output_path`, the source's extension when it is a common one, else .png). The image is re-read from
    the result's file, or taken from `images[source]` (displayed frame) for in-memory sources; results
    with neither are skipped. Atomic; returns the paths written."""
    out_dir = Path(out_dir)
    todo = [r for r in _ok(results) if r.path is not None or (images is not None and r.source in images)]
    rels = []
    for r in todo:
        suffix = PurePosixPath(r.source).suffix.lower()
        rels.append(output_path(r.source, suffix if suffix in _DRAW_SUFFIXES else ".png"))
    written = []
    for result, rel in zip(todo, _unique(rels), strict=True):
        assert result.detections is not None
        image = images[result.source] if images is not None and result.source in images else None
        if image is None:
            assert result.path is not None
            image = load_image_file(result.path)
        drawn = draw_detections(image, result.detections, class_names)
        buffer = io.BytesIO()
        fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".webp": "WEBP"}[rel.suffix]
        drawn.save(buffer, format=fmt, **({"quality": 92} if fmt == "JPEG" else {}))
        written.append(atomic_write_bytes(out_dir / rel, buffer.getvalue()))
    return written


def write_predictions(
    results: Sequence[PredictionResult],
    out: str | Path,
    fmt: PredictionFormat,
    class_names: Sequence[str],
    *,
    category_ids: Sequence[int] | None = None,
) -> Path:
    """Write `results` in `fmt`: "coco" (JSON file), "yolo" (folder of txt), "csv", "cvat" (XML file),
    "labelstudio" (JSON file); defaults of each writer apply. Returns the path written."""
    if fmt == "coco":
        return write_coco_results(results, out, category_ids=category_ids)
    if fmt == "yolo":
        return write_yolo(results, out)
    if fmt == "csv":
        return write_csv(results, out, class_names)
    if fmt == "cvat":
        return write_cvat(results, out, class_names)
    if fmt == "labelstudio":
        return write_labelstudio(results, out, class_names)
    raise ValueError(f"write_predictions: format {fmt!r} is not one of {PREDICTION_FORMATS}")
