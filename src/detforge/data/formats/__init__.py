"""Dataset formats: one explicit table of readers and writers, and format detection.

Each format module converts its quirks (coordinate conventions, id schemes) at the edge and
returns / accepts the one in-memory `Dataset`. Readers: `read_<fmt>(path) -> Dataset`; writers:
`write_<fmt>(dataset, out_dir, *, copy_images=True) -> Path` (the folder written).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from detforge.data.dataset import Dataset
from detforge.data.formats.detect import detect_format
from detforge.data.transcriptions import apply_text_attribute, count_texts
from detforge.errors import DatasetError
from detforge.outdir import output_folder
from detforge.progress import LARGE_SET, counting

__all__ = [
    "READ_FORMATS",
    "TEXT_WRITE_FORMATS",
    "WRITE_FORMATS",
    "detect_format",
    "load_dataset",
    "write_dataset",
    "write_into",
]

READ_FORMATS = ("coco", "yolo", "voc", "cvat", "labelme", "labelstudio")
WRITE_FORMATS = ("coco", "yolo", "voc", "cvat", "labelme", "labelstudio")
TEXT_WRITE_FORMATS = ("coco", "voc", "cvat", "labelme", "labelstudio")
"""Writable formats that keep each box's transcription (YOLO label lines cannot)."""

log = logging.getLogger(__name__)


def _reader(fmt: str) -> Callable[[Path], Dataset]:
    # Imported on use so that reading one format never imports the others' dependencies.
    if fmt == "coco":
        from detforge.data.formats.coco import read_coco

        return read_coco
    if fmt == "yolo":
        from detforge.data.formats.yolo import read_yolo

        return read_yolo
    if fmt == "voc":
        from detforge.data.formats.voc import read_voc

        return read_voc
    if fmt == "cvat":
        from detforge.data.formats.cvat import read_cvat

        return read_cvat
    if fmt == "labelme":
        from detforge.data.formats.labelme import read_labelme

        return read_labelme
    if fmt == "labelstudio":
        from detforge.data.formats.labelstudio import read_labelstudio

        return read_labelstudio
    raise DatasetError(f"unknown dataset format {fmt!r}; expected one of {', '.join(READ_FORMATS)}")


def _writer(fmt: str) -> Callable[..., Path]:
    if fmt == "coco":
        from detforge.data.formats.coco import write_coco

        return write_coco
    if fmt == "yolo":
        from detforge.data.formats.yolo import write_yolo

        return write_yolo
    if fmt == "voc":
        from detforge.data.formats.voc import write_voc

        return write_voc
    if fmt == "cvat":
        from detforge.data.formats.cvat import write_cvat

        return write_cvat
    if fmt == "labelme":
        from detforge.data.formats.labelme import write_labelme

        return write_labelme
    if fmt == "labelstudio":
        from detforge.data.formats.labelstudio import write_labelstudio

        return write_labelstudio
    raise DatasetError(f"cannot write format {fmt!r}; expected one of {', '.join(WRITE_FORMATS)}")


def load_dataset(path: str | Path, format: str | None = None, text_attribute: str | None = None) -> Dataset:
    """Read a dataset from a file or folder; the format is detected unless `format` forces it.

    Each box's transcription (`Annotation.text`) is read from the attribute `text_attribute`, or
    from the one attribute that can hold it when that is unambiguous (see
    `detforge.data.transcriptions`); `Dataset.text_attribute` records the choice.
    Raises DatasetError naming the path (and file/line) when it cannot be read at all, or when no box
    has `text_attribute`; recoverable problems (a malformed line, an unknown id, several candidate
    text attributes) are in `Dataset.problems` and the bad item is left out.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    fmt = format or detect_format(path)
    with counting(f"read {fmt}", counts="header", delay=1.0):  # a bar only when reading headers takes long
        dataset = _reader(fmt)(path)
    return apply_text_attribute(dataset, text_attribute)


def write_dataset(
    dataset: Dataset, out: str | Path, format: str, *, copy_images: bool = True, overwrite: bool = False
) -> Path:
    """Write `dataset` (all subsets) to the folder `out` in `format`; returns `out`.

    `out` is an output folder of `data convert` (see `detforge.outdir`): it must be new, empty or an
    earlier output of `write_dataset` / `detforge data convert`, which is replaced as a whole (no file of
    it survives beside the new ones); `overwrite` replaces any other folder. A folder that holds the
    dataset's source or images is never replaced. Annotation files are written atomically; images are
    copied (never moved or modified). Transcriptions are written by the formats in TEXT_WRITE_FORMATS;
    writing boxes with text to another format logs a warning with the number of transcriptions left behind.
    """
    writer = _writer(format)
    inputs = [dataset.root, *sorted({im.path.parent for im in dataset.images})]
    with output_folder(out, "data convert", overwrite=overwrite, inputs=inputs) as folder:
        _write(writer, dataset, folder, format, copy_images=copy_images)
    return Path(out)


def write_into(dataset: Dataset, folder: Path, format: str, *, copy_images: bool = True) -> Path:
    """Write `dataset` in `format` into `folder`, a folder the caller owns (the temporary folder of an
    `output_folder` block): files already there stay. `write_dataset` is the one to use on a user's path."""
    return _write(_writer(format), dataset, Path(folder), format, copy_images=copy_images)


def _write(writer: Callable[..., Path], dataset: Dataset, folder: Path, format: str, *, copy_images: bool) -> Path:
    if format in WRITE_FORMATS and format not in TEXT_WRITE_FORMATS and (n := count_texts(dataset)):
        log.warning("%s cannot hold transcriptions: the text of %d box(es) is not written", format, n)
    with counting(f"write {format}", counts="copy", total=len(dataset.images), min_total=LARGE_SET):
        return writer(dataset, folder, copy_images=copy_images)
