"""The data verbs of the Python API; `detforge data <verb>` calls these with the same parameter names."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from detforge.data.clean import sanitize
from detforge.data.dataset import Dataset
from detforge.data.formats import WRITE_FORMATS, load_dataset, write_dataset
from detforge.data.transcriptions import apply_text_attribute
from detforge.errors import DatasetError

if TYPE_CHECKING:
    from detforge.data.check import CheckReport
    from detforge.data.stats import DatasetStats

__all__ = ["check", "convert", "sample", "show", "split", "stats"]

log = logging.getLogger(__name__)

DataLike = str | Path | Dataset


def _as_dataset(data: DataLike, format: str | None, text_attribute: str | None = None) -> Dataset:
    """The dataset at `data` (or `data` itself), its transcriptions read from `text_attribute` when given."""
    if isinstance(data, Dataset):
        return data if text_attribute is None else apply_text_attribute(data, text_attribute)
    return load_dataset(data, format=format, text_attribute=text_attribute)


def check(
    data: DataLike,
    *,
    format: str | None = None,
    strict: bool = False,
    leakage: bool = True,
    text_attribute: str | None = None,
) -> CheckReport:
    """Check every annotation and image header of a dataset; the report lists each problem with its place.

    `strict` makes warnings count as errors. `text_attribute` names the box attribute holding the
    transcription when auto-detection cannot choose (every data verb takes it). Never modifies any file.
    """
    from detforge.data.check import check_dataset

    return check_dataset(_as_dataset(data, format, text_attribute), strict=strict, leakage=leakage)


def stats(
    data: DataLike, *, format: str | None = None, out: str | Path | None = None, text_attribute: str | None = None
) -> DatasetStats:
    """Dataset statistics; with `out`, also PNG plots and `out/index.html`."""
    from detforge.data.stats import dataset_stats
    from detforge.data.stats_report import write_stats_report

    dataset = _as_dataset(data, format, text_attribute)
    result = dataset_stats(dataset)
    if out is not None:
        write_stats_report(dataset, result, Path(out))
    return result


def show(
    data: DataLike,
    *,
    out: str | Path,
    n: int = 16,
    seed: int = 0,
    subset: str | None = None,
    format: str | None = None,
    text_attribute: str | None = None,
) -> Path:
    """Draw `n` random images with their labels into `out/` (gallery.png + index.html); returns the HTML path."""
    from detforge.data.show import show_dataset

    return show_dataset(_as_dataset(data, format, text_attribute), Path(out), n=n, seed=seed, subset=subset)


def _writable_format(dataset: Dataset, to: str | None) -> str:
    if to is not None:
        if to not in WRITE_FORMATS:
            raise DatasetError(f"cannot write format {to!r}; expected one of {', '.join(WRITE_FORMATS)}")
        return to
    if dataset.format in WRITE_FORMATS:
        return dataset.format
    log.warning("detforge cannot write %s; writing COCO instead (choose with --to)", dataset.format)
    return "coco"


def _writable(dataset: Dataset) -> Dataset:
    cleaned, problems = sanitize(dataset)
    for p in problems:
        log.warning("%s", p)
    return cleaned


def convert(
    src: DataLike, dst: str | Path, *, to: str, format: str | None = None, text_attribute: str | None = None
) -> Path:
    """Read `src` (any readable format) and write it to the folder `dst` as `to` (coco, yolo, voc or cvat).

    Boxes that cannot be written (non-finite, empty, outside the image) are dropped and logged;
    boxes partly outside the image are clipped. Images are copied, never moved. Transcriptions are
    written as the attribute `text` (COCO, VOC, CVAT); converting them to YOLO logs how many are lost.
    """
    dataset = _as_dataset(src, format, text_attribute)
    return write_dataset(_writable(dataset), dst, _writable_format(dataset, to))


def split(
    data: DataLike,
    *,
    out: str | Path,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    group: str | None = None,
    folds: int | None = None,
    to: str | None = None,
    rename: bool = False,
    format: str | None = None,
    text_attribute: str | None = None,
) -> list[Path]:
    """Split into train/val(/test) (or `folds` train/val folds) and write each to `out` (or `out/fold_<i>`).

    Deterministic for a seed, stratified by class, keeps images whose file name gives the same
    `group` (regex) together. Written in the input's format unless `to` says otherwise. Returns the
    folders written.
    """
    from detforge.data.split import kfold, rename_to_ids, split_dataset

    dataset = _as_dataset(data, format, text_attribute)
    fmt = _writable_format(dataset, to)
    cleaned = _writable(dataset)
    if rename:
        cleaned = rename_to_ids(cleaned)
    out = Path(out)
    if folds:
        parts = kfold(cleaned, folds, seed=seed, group=group)
        return [write_dataset(part, out / f"fold_{i}", fmt) for i, part in enumerate(parts)]
    names = (
        ("train", "val", "test")[: len(ratios)] if len(ratios) <= 3 else tuple(f"split{i}" for i in range(len(ratios)))
    )
    result = split_dataset(cleaned, tuple(ratios), names=names, seed=seed, group=group)
    return [write_dataset(result, out, fmt)]


def sample(out: str | Path, *, n: int = 240, seed: int = 0) -> Path:
    """Generate the bundled sample dataset (handwritten physics solutions; class `task_number`) as COCO."""
    from detforge.data.sample import make_sample

    return make_sample(Path(out), n=n, seed=seed)
