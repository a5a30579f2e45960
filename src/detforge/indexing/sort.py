"""`--sort-into DIR`: copies of the photos sorted by the values read in them, never the photos themselves.

Layout: a photo whose status is "read" is copied into `DIR/<value>/<its relative path>` for every distinct
value on it; "unsure" photos into `DIR/_review/<relative path>` next to `annotations.xml` (CVAT for images
1.1) and `tasks.json` (Label Studio) pre-annotations of every unsure photo; "nothing" photos into
`DIR/_nothing/<relative path>`; photos that could not be read are not copied (the index lists them).
Folder names from values are made safe by `folder_name`. Copies are made with `shutil.copy2` (contents,
times and permission bits) into a temp file in the target folder, then renamed, so a kill never leaves
half a photo under its real name; a copy that is already there (same size and modification time) is
kept as it is, so a second run copies only what is new.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import torch

from detforge.fileio import remove_partial_writes
from detforge.indexing.records import FoundBox, PageRecord
from detforge.inference.predictor import PredictionResult
from detforge.inference.writers import write_predictions
from detforge.structures.detections import Detections
from detforge.structures.text import normalize_text

__all__ = ["NOTHING_FOLDER", "REVIEW_FOLDER", "SortSummary", "copy_photo", "folder_name", "sort_photos"]

REVIEW_FOLDER = "_review"
NOTHING_FOLDER = "_nothing"
_FORBIDDEN = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)}
_MAX_NAME_BYTES = 120


def folder_name(value: str) -> str:
    """A folder name for `value`, the same on Linux, macOS and Windows: the value normalised
    (`normalize_text`: NFKC, whitespace removed); path separators, control characters and `:*?"<>|` each
    replaced by "_"; a trailing "." replaced by "_"; a name starting with "." or "_" (hidden, or clashing with
    `_review` / `_nothing`) prefixed with "value"; a Windows device name (CON, NUL, COM1, ...) suffixed with
    "_"; a name over 120 UTF-8 bytes cut and ended with "~" and 8 hex digits of the value's SHA-1 (distinct
    values keep distinct folders). "" gives "value_empty"."""
    name = _FORBIDDEN.sub("_", normalize_text(value))
    if not name:
        return "value_empty"
    if name.endswith("."):
        name = name[:-1] + "_"
    if name[0] in "._":
        name = "value" + name
    if name.split(".")[0].upper() in _WINDOWS_RESERVED:
        name += "_"
    encoded = name.encode("utf-8")
    if len(encoded) > _MAX_NAME_BYTES:
        digest = hashlib.sha1(value.encode("utf-8")).hexdigest()[:8]
        name = encoded[: _MAX_NAME_BYTES - 9].decode("utf-8", errors="ignore") + "~" + digest
    return name


def copy_photo(source: Path, target: Path) -> bool:
    """Copy `source` to `target` (folders made as needed) with `shutil.copy2` through a temp file renamed into
    place; `source` is only read. False (nothing done) when `target` already has `source`'s size and
    modification time."""
    stat = source.stat()
    try:
        there = target.stat()
        if there.st_size == stat.st_size and there.st_mtime_ns == stat.st_mtime_ns:
            return False
    except FileNotFoundError:
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        shutil.copy2(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


@dataclass(frozen=True)
class SortSummary:
    """What `sort_photos` did: `copied` new copies made, `kept` copies already in place, `folders` the value
    folders in use (sorted), `review_files` the pre-annotation files written (empty without unsure photos)."""

    copied: int
    kept: int
    folders: tuple[str, ...]
    review_files: tuple[Path, ...]


def _targets(record: PageRecord) -> list[str]:
    if record.status == "read":
        return list(dict.fromkeys(folder_name(v) for v in record.value_strings))
    if record.status == "unsure":
        return [REVIEW_FOLDER]
    if record.status == "nothing":
        return [NOTHING_FOLDER]
    return []


def _review_result(record: PageRecord) -> PredictionResult:
    """The record as a PredictionResult for the pre-annotation writers: every box (values first, in reading
    order), with the text read on the value boxes."""
    assert record.image_size is not None
    boxes: list[FoundBox] = [*record.values, *record.others]
    if not boxes:
        return PredictionResult(record.file, record.image_size, Detections.empty(record.image_size))
    detections = Detections(
        torch.tensor([b.box for b in boxes], dtype=torch.float32),
        torch.tensor([b.label for b in boxes], dtype=torch.int64),
        torch.tensor([b.score for b in boxes], dtype=torch.float32),
        record.image_size,
    ).with_texts([b.text for b in boxes], [float("nan") if b.text_score is None else b.text_score for b in boxes])
    return PredictionResult(record.file, record.image_size, detections)


def sort_photos(
    records: Sequence[PageRecord], photos: Path, sort_into: Path, class_names: Sequence[str]
) -> SortSummary:
    """Copy each photo of `records` (paths relative to `photos`) into its folders under `sort_into` (see the
    module docstring) and write the review pre-annotations. Returns what was done."""
    copied = kept = 0
    folders: set[str] = set()
    cleaned: set[Path] = set()
    for record in records:
        relative = PurePosixPath(record.file)
        for folder in _targets(record):
            folders.add(folder)
            target = sort_into / folder / relative
            if target.parent not in cleaned:  # temp files of copies a killed run left behind
                remove_partial_writes(target.parent)
                cleaned.add(target.parent)
            if copy_photo(photos / relative, target):
                copied += 1
            else:
                kept += 1
    review = [_review_result(r) for r in records if r.status == "unsure"]
    review_dir = sort_into / REVIEW_FOLDER
    files: list[Path] = []
    if review or review_dir.is_dir():  # rewritten (maybe empty) so old pre-annotations never linger
        files.append(write_predictions(review, review_dir / "annotations.xml", "cvat", class_names))
        files.append(write_predictions(review, review_dir / "tasks.json", "labelstudio", class_names))
    value_folders = tuple(sorted(folders - {REVIEW_FOLDER, NOTHING_FOLDER}))
    return SortSummary(copied, kept, value_folders, tuple(files))
