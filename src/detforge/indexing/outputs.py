"""The index files a person or a program reads: `index.csv` (one row per photo) and `index.json`, both
rebuilt from the records at the end of every run and written atomically."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from detforge.fileio import atomic_write_json, atomic_write_text
from detforge.indexing.records import STATUSES, PageRecord

__all__ = ["CSV_COLUMNS", "INDEX_CSV", "INDEX_JSON", "INDEX_VERSION", "index_document", "write_index"]

INDEX_CSV = "index.csv"
INDEX_JSON = "index.json"
INDEX_VERSION = 1
"""Version of the `index.json` shape (see docs/index.md)."""

CSV_COLUMNS = (
    "file",
    "status",
    "values",
    "text_scores",
    "scores",
    "boxes",
    "width",
    "height",
    "skew_degrees",
    "error",
)
"""One row per photo: relative path, status, the values read in reading order joined by ';', their text
and detection scores (';'-joined, same order, 4 decimals), their boxes as 'x_min y_min x_max y_max'
(pixels, 1 decimal, ';'-joined), the photo's width and height, the estimated tilt, and the error message."""


def _row(record: PageRecord) -> list[Any]:
    height, width = record.image_size if record.image_size is not None else ("", "")
    values = record.values
    return [
        record.file,
        record.status,
        ";".join(record.value_strings),
        ";".join(f"{b.text_score:.4f}" for b in values if b.text_score is not None),
        ";".join(f"{b.score:.4f}" for b in values),
        ";".join(" ".join(f"{v:.1f}" for v in b.box) for b in values),
        width,
        height,
        f"{record.skew_degrees:.1f}" if record.status != "error" else "",
        record.error or "",
    ]


def index_document(records: Sequence[PageRecord], *, source: str, min_score: float) -> dict[str, Any]:
    """The `index.json` object: version, source (the photo folder), min_score (text confidence threshold),
    counts per status, and `images`: one `PageRecord.to_dict()` per photo (without the internal settings
    fingerprint), in the order of `records`."""
    counts = {status: 0 for status in STATUSES}
    images = []
    for record in records:
        counts[record.status] += 1
        entry = record.to_dict()
        entry.pop("settings", None)
        images.append(entry)
    return {"version": INDEX_VERSION, "source": source, "min_score": min_score, "counts": counts, "images": images}


def write_index(records: Sequence[PageRecord], out: str | Path, *, source: str, min_score: float) -> tuple[Path, Path]:
    """Write `out/index.csv` (header `CSV_COLUMNS`) and `out/index.json` (`index_document`) atomically;
    returns their paths."""
    out = Path(out)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for record in records:
        writer.writerow(_row(record))
    csv_path = atomic_write_text(out / INDEX_CSV, buffer.getvalue())
    json_path = atomic_write_json(out / INDEX_JSON, index_document(records, source=source, min_score=min_score))
    return csv_path, json_path
