"""COCO results files (the list of detections COCO tools exchange) <-> a `DetectionTable` or `Detections` per image.

A results file is a JSON list of {"image_id", "category_id", "bbox": [x, y, width, height] (pixels),
"score", optional "segmentation" (RLE or polygons), optional "text" (the value read in the box, or null: not
read) and "text_score" (the reader's confidence in [0, 1], or null)}. COCO's XYWH exists only here: everything returned
is XYXY pixels with labels 0..K-1 (the index of `category_id` in `Categories`).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from detforge.errors import DatasetError
from detforge.evaluation.detection_table import DetectionTable
from detforge.evaluation.gc_pause import gc_paused
from detforge.structures import Categories, ImageRecord
from detforge.structures.boxes import xyxy_to_xywh

if TYPE_CHECKING:
    from detforge.structures.detections import Detections

__all__ = ["load_coco_results", "parse_coco_results", "parse_results_table", "read_coco_results", "to_coco_results"]


def _is_number(value: object) -> bool:
    """A finite int or float (not a bool; not an integer too large for a float)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _mask(where: str, seg: object, height: int, width: int) -> np.ndarray:
    """[H, W] bool mask of a COCO segmentation (RLE dict, compressed or not, or a list of polygons)."""
    if not (height and width):
        raise DatasetError(f"{where}: 'segmentation' given but the image size is unknown (0); cannot decode it")
    from faster_coco_eval.core import mask as mask_utils

    try:
        if isinstance(seg, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
        elif isinstance(seg, dict) and "counts" in seg and "size" in seg:
            if list(seg["size"]) != [height, width]:
                raise DatasetError(
                    f"{where}: 'segmentation' size {seg['size']} differs from the image's [{height}, {width}]"
                )
            rle = mask_utils.frPyObjects(seg, height, width) if isinstance(seg["counts"], list) else dict(seg)
            if isinstance(rle["counts"], str):
                rle["counts"] = rle["counts"].encode("ascii")
        else:
            raise DatasetError(
                f"{where}: 'segmentation' must be an RLE dict or a list of polygons, got {type(seg).__name__}"
            )
        return np.asarray(mask_utils.decode(rle), dtype=bool).reshape(height, width)
    except DatasetError:
        raise
    except Exception as e:  # malformed polygons or RLE strings
        raise DatasetError(f"{where}: cannot decode 'segmentation': {e}") from e


def _text(where: str, entry: dict[str, Any]) -> tuple[str | None, float]:
    """(text or None, text score or NaN) of one entry of a results file whose detections carry texts."""
    text, text_score = entry.get("text"), entry.get("text_score")
    if text is not None and not isinstance(text, str):
        raise DatasetError(f"{where}: 'text' {text!r:.80} is not a string or null")
    if text_score is not None and (not _is_number(text_score) or not 0.0 <= text_score <= 1.0):
        raise DatasetError(f"{where}: 'text_score' {text_score!r} is not a number in [0, 1] or null")
    if text is None or text_score is None:
        return text, math.nan  # not read: no score; read without a score: unknown confidence
    return text, float(text_score)


def parse_coco_results(
    entries: object, images: Sequence[ImageRecord], categories: Categories, *, source: str = "results"
) -> dict[int, Detections]:
    """Detections for every image of `images` (empty where the results have none) from parsed JSON.

    Each image's detections are sorted by descending score. Masks are decoded when the entries carry a
    "segmentation" (then every entry must). When any entry has "text" or "text_score", every image's
    Detections carry texts (`has_text`): an entry without "text" (or with null) was not read (None, NaN).
    DatasetError naming `source`, the list index and the key for an unknown image id, an unknown category
    id, a bad bbox (not 4 finite numbers, negative size), score, text (not a string) or text_score.
    """
    import torch

    from detforge.structures.detections import Detections

    if not isinstance(entries, list):
        raise DatasetError(f"{source}: expected a JSON list of detections, got {type(entries).__name__}")
    fast = _parse_columns(entries, images, categories, source)
    if fast is not None:
        return fast
    sizes = {im.id: (im.height, im.width) for im in images}
    index = {c.id: k for k, c in enumerate(categories)}
    rows: dict[int, list[tuple[float, int, list[float], np.ndarray | None, str | None, float]]] = {i: [] for i in sizes}
    with_masks = bool(entries) and isinstance(entries[0], dict) and "segmentation" in entries[0]
    with_texts = any(isinstance(e, dict) and ("text" in e or "text_score" in e) for e in entries)
    for n, entry in enumerate(entries):
        where = f"{source}[{n}]"
        if not isinstance(entry, dict):
            raise DatasetError(
                f"{where}: expected an object with image_id, category_id, bbox, score; got {entry!r:.80}"
            )
        for key in ("image_id", "category_id", "bbox", "score"):
            if key not in entry:
                raise DatasetError(f"{where}: missing key {key!r}")
        image_id, category_id, bbox, score = entry["image_id"], entry["category_id"], entry["bbox"], entry["score"]
        if not isinstance(image_id, int) or isinstance(image_id, bool) or image_id not in sizes:
            raise DatasetError(f"{where}: 'image_id' {image_id!r} is not an image of the dataset")
        if not isinstance(category_id, int) or isinstance(category_id, bool) or category_id not in index:
            raise DatasetError(f"{where}: 'category_id' {category_id!r} is unknown; known ids: {list(categories.ids)}")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)) or min(bbox[2:]) < 0:
            raise DatasetError(
                f"{where}: 'bbox' {bbox!r} is not [x, y, width, height] with 4 finite numbers, size >= 0"
            )
        if not _is_number(score):
            raise DatasetError(f"{where}: 'score' {score!r} is not a finite number")
        if ("segmentation" in entry) != with_masks:
            raise DatasetError(f"{where}: 'segmentation' must be given for every detection or for none")
        height, width = sizes[image_id]
        mask = _mask(f"{where}", entry["segmentation"], height, width) if with_masks else None
        text, text_score = _text(where, entry) if with_texts else (None, math.nan)
        x, y, w, h = (float(v) for v in bbox)
        rows[image_id].append((float(score), index[category_id], [x, y, x + w, y + h], mask, text, text_score))
    out: dict[int, Detections] = {}
    for image_id, dets in rows.items():
        height, width = sizes[image_id]
        if not dets:
            empty = Detections.empty((height, width))
            if with_masks:
                empty = Detections(
                    empty.boxes,
                    empty.labels,
                    empty.scores,
                    (height, width),
                    torch.zeros((0, height, width), dtype=torch.bool),
                )
            out[image_id] = empty.with_texts((), ()) if with_texts else empty
            continue
        dets.sort(key=lambda d: -d[0])
        masks = torch.from_numpy(np.stack([d[3] for d in dets if d[3] is not None])) if with_masks else None
        det = Detections(
            torch.tensor([d[2] for d in dets], dtype=torch.float32),
            torch.tensor([d[1] for d in dets], dtype=torch.int64),
            torch.tensor([d[0] for d in dets], dtype=torch.float32),
            (height, width),
            masks,
        )
        out[image_id] = det.with_texts([d[4] for d in dets], [d[5] for d in dets]) if with_texts else det
    return out


def _columns(
    entries: list[Any], images: Sequence[ImageRecord], categories: Categories, *, plain: bool
) -> tuple[np.ndarray, ...] | None:
    """(image index, label, XYWH box float64, score float64) of every entry, or None unless every entry is
    valid and has no segmentation (the checking loop of `parse_coco_results` then names the problem).
    `plain`: every entry is a dict of exactly four keys (then, once the four are found, no other key is)."""
    if set(map(type, entries)) - {dict}:
        return None
    try:
        image_ids = [e["image_id"] for e in entries]
        category_ids = [e["category_id"] for e in entries]
        bboxes = [e["bbox"] for e in entries]
        scores = [e["score"] for e in entries]
    except KeyError:
        return None
    numbers = {int, float}
    if (
        (not plain and any("segmentation" in e for e in entries))
        or set(map(type, image_ids)) - {int}
        or set(map(type, category_ids)) - {int}
        or set(map(type, bboxes)) - {list}
        or set(map(len, bboxes)) - {4}
        or set(map(type, itertools.chain.from_iterable(bboxes))) - numbers
        or set(map(type, scores)) - numbers
    ):
        return None
    try:
        ids, cats = np.asarray(image_ids, dtype=np.int64), np.asarray(category_ids, dtype=np.int64)
        boxes = np.fromiter(itertools.chain.from_iterable(bboxes), np.float64, count=4 * len(bboxes)).reshape(-1, 4)
        score = np.asarray(scores, dtype=np.float64)
    except (OverflowError, ValueError):  # integers beyond 64 bits
        return None
    if not (np.isfinite(boxes).all() and np.isfinite(score).all() and (boxes[:, 2:] >= 0).all()):
        return None
    known, known_cats = np.asarray([im.id for im in images], dtype=np.int64), np.asarray(categories.ids, dtype=np.int64)
    img, label = _lookup(known, ids), _lookup(known_cats, cats)
    if img is None or label is None:
        return None
    return img, label, boxes, score


def _lookup(known: np.ndarray, values: np.ndarray) -> np.ndarray | None:
    """Index of each value in `known` (unique), or None if some value is not there."""
    order = np.argsort(known, kind="stable")
    pos = np.minimum(np.searchsorted(known[order], values), max(len(known) - 1, 0))
    if len(known) == 0 or not np.array_equal(known[order][pos], values):
        return None if len(values) else np.zeros(0, dtype=np.int64)
    return order[pos]


def _table_from_columns(
    entries: list[Any], images: Sequence[ImageRecord], categories: Categories, source: str
) -> DetectionTable | None:
    """The entries as a table, all numbers checked and converted at once; None when some entry needs the
    checking loop of `parse_coco_results` (it is invalid or has a mask)."""
    plain = sum(map(len, entries)) == 4 * len(entries) if not set(map(type, entries)) - {dict} else False
    unique_ids = len({im.id for im in images}) == len(images)
    columns = _columns(entries, images, categories, plain=plain) if unique_ids else None
    if columns is None:
        return None
    img, label, xywh, score = columns
    with_texts = not plain and any(("text" in e or "text_score" in e) for e in entries)
    order = np.lexsort((-score, img))  # by image, then descending score (stable: ties keep the file's order)
    ids = np.asarray([im.id for im in images], dtype=np.int64)
    texts: tuple[str | None, ...] | None = None
    text_scores: np.ndarray | None = None
    if with_texts:
        in_file = [_text(f"{source}[{n}]", e) for n, e in enumerate(entries)]  # errors name the first bad entry
        read = [in_file[n] for n in order.tolist()]
        texts, text_scores = tuple(t for t, _ in read), np.asarray([v for _, v in read], dtype=np.float64)
    return DetectionTable(ids[img[order]], label[order], score[order], xywh[order], texts, text_scores)


def _parse_columns(
    entries: list[Any], images: Sequence[ImageRecord], categories: Categories, source: str
) -> dict[int, Detections] | None:
    """`parse_coco_results` for results without masks, through `_table_from_columns` (the same Detections as
    the entry-by-entry loop); None when some entry needs that loop."""
    table = _table_from_columns(entries, images, categories, source)
    if table is None:
        return None
    rounded = DetectionTable(
        table.image_ids, table.labels, table.scores.astype(np.float32).astype(np.float64), table.xywh,
        table.texts, table.text_scores, table.xyxy.astype(np.float32).astype(np.float64),
    )  # fmt: skip
    return rounded.to_detections(images)


def parse_results_table(
    entries: object, images: Sequence[ImageRecord], categories: Categories, *, source: str = "results"
) -> DetectionTable:
    """The detections of parsed results JSON as one table (float64, XYWH as written; no torch), checked as
    `parse_coco_results` checks them (the same DatasetError naming `source`, the list index and the key).
    Masks ("segmentation") are checked and then left out: evaluation scores boxes."""
    if not isinstance(entries, list):
        raise DatasetError(f"{source}: expected a JSON list of detections, got {type(entries).__name__}")
    table = _table_from_columns(entries, images, categories, source)
    if table is not None:
        return table
    return DetectionTable.from_detections(parse_coco_results(entries, images, categories, source=source))


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise DatasetError(f"{path}: cannot read the results file: {e.strerror or e}") from e


def _parse_json(path: Path, text: str) -> object:
    """`json.loads(text)`; DatasetError naming the line and column of invalid JSON."""
    try:
        with gc_paused():  # half the parse time of a large file went to collections that free nothing
            return json.loads(text)
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}:{e.lineno}: not valid JSON ({e.msg}, column {e.colno})") from e


def _read_json(path: Path) -> object:
    return _parse_json(path, _read_text(path))


def _fast_json(text: str) -> object | None:
    """`text` parsed by orjson (~2.5x faster than `json` on a large results file), or None where orjson is not
    installed or refuses the text (invalid JSON, NaN, Infinity, ...). What it accepts parses to the objects
    `json.loads` gives, except that an integer beyond 64 bits becomes a float: use the result only where that
    cannot show (a results table whose every id checked as a 64-bit int), else parse again with `json`."""
    try:
        import orjson
    except ImportError:  # pragma: no cover - a base dependency; everything works without it, more slowly
        return None
    try:
        with gc_paused():
            return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def read_coco_results(path: str | Path, images: Sequence[ImageRecord], categories: Categories) -> DetectionTable:
    """Read a COCO results JSON file into a `DetectionTable` (see `parse_results_table`).

    A valid file of plain detections is parsed by orjson straight into the table; any other file (invalid
    JSON, an entry the columns do not take) is parsed by `json` and checked entry by entry, so its
    errors name exactly what `json` read."""
    path = Path(path)
    text = _read_text(path)
    fast = _fast_json(text)
    if isinstance(fast, list):
        try:
            table = _table_from_columns(fast, images, categories, str(path))
        except DatasetError:  # a bad text or text_score: named below from json's own objects
            table = None
        if table is not None:
            return table
    del fast
    return parse_results_table(_parse_json(path, text), images, categories, source=str(path))


def load_coco_results(path: str | Path, images: Sequence[ImageRecord], categories: Categories) -> dict[int, Detections]:
    """Read a COCO results JSON file into Detections per image id (see `parse_coco_results`)."""
    return parse_coco_results(_read_json(Path(path)), images, categories, source=str(path))


def _rle(mask: np.ndarray) -> dict[str, Any]:
    from faster_coco_eval.core import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)[:, :, None]))[0]
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def to_coco_results(predictions: Mapping[int, Detections], categories: Categories) -> list[dict[str, Any]]:
    """COCO result dicts (image id ascending, then each image's order): XYWH bbox, dataset category id,
    score, a compressed RLE "segmentation" when the detections have masks, and "text" / "text_score" (null
    where not read) when they carry reading results. JSON-ready."""
    ids = categories.ids
    out: list[dict[str, Any]] = []
    for image_id in sorted(predictions):
        det = predictions[image_id].cpu()
        labels = det.labels.tolist()
        bad = [v for v in labels if not 0 <= v < len(ids)]
        if bad:
            raise ValueError(f"to_coco_results: image {image_id} has label {bad[0]} outside 0..{len(ids) - 1}")
        masks = det.masks.numpy().astype(bool) if det.masks is not None else None
        texts = det.texts
        text_scores = det.text_scores.tolist() if det.text_scores is not None else None
        for i, (box, label, score) in enumerate(zip(det.boxes.tolist(), labels, det.scores.tolist(), strict=True)):
            entry: dict[str, Any] = {
                "image_id": int(image_id),
                "category_id": int(ids[label]),
                "bbox": list(xyxy_to_xywh(box)),
                "score": float(score),
            }
            if masks is not None:
                entry["segmentation"] = _rle(masks[i])
            if texts is not None and text_scores is not None:
                entry["text"] = texts[i]
                entry["text_score"] = float(text_scores[i]) if math.isfinite(text_scores[i]) else None
            out.append(entry)
    return out
