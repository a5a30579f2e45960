"""Dataset formats: one explicit table of readers and writers, and format detection.

Each format module converts its quirks (coordinate conventions, id schemes) at the edge and
returns / accepts the one in-memory `Dataset`. Readers: `read_<fmt>(path) -> Dataset`; writers:
`write_<fmt>(dataset, out_dir, *, copy_images=True) -> Path` (the folder written).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from detforge.data.dataset import Dataset
from detforge.data.formats.detect import detect_format
from detforge.errors import DatasetError

__all__ = ["READ_FORMATS", "WRITE_FORMATS", "detect_format", "load_dataset", "write_dataset"]

READ_FORMATS = ("coco", "yolo", "voc", "cvat", "labelme", "labelstudio")
WRITE_FORMATS = ("coco", "yolo", "voc")


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
    raise DatasetError(f"cannot write format {fmt!r}; expected one of {', '.join(WRITE_FORMATS)}")


def load_dataset(path: str | Path, format: str | None = None) -> Dataset:
    """Read a dataset from a file or folder; the format is detected unless `format` forces it.

    Raises DatasetError naming the path (and file/line) when it cannot be read at all; recoverable
    problems (a malformed line, an unknown id) are in `Dataset.problems` and the bad item is left out.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    fmt = format or detect_format(path)
    return _reader(fmt)(path)


def write_dataset(dataset: Dataset, out: str | Path, format: str, *, copy_images: bool = True) -> Path:
    """Write `dataset` (all subsets) to the folder `out` in `format`; returns the folder.

    Annotation files are written atomically; images are copied (never moved or modified).
    """
    return _writer(format)(dataset, Path(out), copy_images=copy_images)
