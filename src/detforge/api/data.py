"""The data verbs of the Python API; `detforge data <verb>` calls these with the same parameter names."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from detforge.data.clean import sanitize
from detforge.data.dataset import Dataset
from detforge.data.formats import WRITE_FORMATS, load_dataset, write_into
from detforge.data.transcriptions import apply_text_attribute
from detforge.errors import DatasetError
from detforge.outdir import check_output_folder, output_folder
from detforge.progress import scoped_by_progress
from detforge.ranges import FRACTION, POSITIVE_INT, check_each, check_numbers, int_range

if TYPE_CHECKING:
    from detforge.data.check import CheckReport
    from detforge.data.stats import DatasetStats
    from detforge.data.stats_plots import ModelInput

__all__ = ["check", "convert", "sample", "show", "split", "stats"]

log = logging.getLogger(__name__)

DataLike = str | Path | Dataset


def _as_dataset(data: DataLike, format: str | None, text_attribute: str | None = None) -> Dataset:
    """The dataset at `data` (or `data` itself), its transcriptions read from `text_attribute` when given."""
    if isinstance(data, Dataset):
        return data if text_attribute is None else apply_text_attribute(data, text_attribute)
    return load_dataset(data, format=format, text_attribute=text_attribute)


@scoped_by_progress
def check(
    data: DataLike,
    *,
    format: str | None = None,
    strict: bool = False,
    leakage: bool = True,
    text_attribute: str | None = None,
    progress: bool = True,
) -> CheckReport:
    """Check every annotation and image header of a dataset; the report lists each problem with its place.

    `strict` makes warnings count as errors. `text_attribute` names the box attribute holding the
    transcription when auto-detection cannot choose (every data verb takes it). Never modifies any file.
    `progress` (every data verb but `sample` takes it): bars on stderr, when it is a terminal, for sets of
    `detforge.progress.LARGE_SET` images or more.
    """
    from detforge.data.check import check_dataset

    return check_dataset(_as_dataset(data, format, text_attribute), strict=strict, leakage=leakage)


@scoped_by_progress
def stats(
    data: DataLike,
    *,
    format: str | None = None,
    out: str | Path | None = None,
    text_attribute: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> DatasetStats:
    """Dataset statistics; with `out`, also PNG plots and `out/index.html`.

    `out` must be new, empty or an earlier `data stats` output (replaced as a whole); `overwrite`
    replaces any folder (see `detforge.outdir`).
    """
    from detforge.data.stats import dataset_stats
    from detforge.data.stats_report import write_stats_report

    if out is not None:
        check_output_folder(out, "data stats", overwrite=overwrite, inputs=_inputs(data))  # before reading
    dataset = _as_dataset(data, format, text_attribute)
    result = dataset_stats(dataset)
    if out is not None:
        with output_folder(out, "data stats", overwrite=overwrite, inputs=_inputs(data)) as tmp:
            write_stats_report(dataset, result, tmp, model=_cpu_model_input(dataset))
    return result


def _cpu_model_input(dataset: Dataset) -> ModelInput | None:
    """The model and input size `train` picks on CPU for `dataset` (the plots show boxes after its resize);
    None when that choice leaves the size to the model (then the plot shows stored sizes only)."""
    import os

    from detforge.config.auto import auto_config
    from detforge.data.stats_plots import ModelInput

    config, _ = auto_config(dataset, device="cpu", cpu_count=os.cpu_count() or 1)
    model = config.model
    if model.min_size is None or model.max_size is None:
        return None
    return ModelInput(model.name, model.min_size, model.max_size)


@scoped_by_progress
def show(
    data: DataLike,
    *,
    out: str | Path,
    n: int = 16,
    seed: int = 0,
    subset: str | None = None,
    format: str | None = None,
    text_attribute: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Draw `n` random images with their labels into `out/` (gallery.png + index.html); returns the HTML path.

    `out` must be new, empty or an earlier `data show` output (replaced as a whole); `overwrite`
    replaces any folder.
    """
    from detforge.data.show import show_dataset

    check_numbers(n=(POSITIVE_INT, n))
    check_output_folder(out, "data show", overwrite=overwrite, inputs=_inputs(data))  # before reading
    dataset = _as_dataset(data, format, text_attribute)
    return show_dataset(dataset, Path(out), n=n, seed=seed, subset=subset, overwrite=overwrite)


def _inputs(data: DataLike) -> list[Path]:
    """The user's files a verb reads, which its output folder must never hold (it replaces that folder)."""
    if isinstance(data, Dataset):
        return sorted({im.path.parent for im in data.images})
    return [Path(data)]


def _writable_format(dataset: Dataset, to: str | None) -> str:
    if to is not None:
        if to not in WRITE_FORMATS:
            raise DatasetError(f"cannot write format {to!r}; expected one of {', '.join(WRITE_FORMATS)}")
        return to
    if dataset.format in WRITE_FORMATS:
        return dataset.format
    log.warning("detforge cannot write %s; writing COCO instead (choose with --to)", dataset.format)
    return "coco"


_LISTED = 20
"""At most this many left-out items are quoted in the error that stops a conversion (all are logged with
`skip_invalid`; `detforge data check` lists them all)."""


def _writable(dataset: Dataset, verb: str, skip_invalid: bool) -> Dataset:
    """`dataset` cleaned for writing (see `sanitize`). Every item a reader or the cleaning leaves out (an error
    Problem) is named with its file and line: they stop the verb with a DatasetError, or with `skip_invalid`
    are logged one by one with their count. Warnings (clipped boxes, ...) are logged."""
    cleaned, fixed = sanitize(dataset)
    problems = [*dataset.problems, *fixed]
    left_out = [p for p in problems if p.severity == "error"]
    for p in problems:
        if p.severity != "error":
            log.warning("%s", p)
    if left_out and not skip_invalid:
        listing = "\n".join(f"  {p}" for p in left_out[:_LISTED])
        more = f"\n  ... and {len(left_out) - _LISTED} more" if len(left_out) > _LISTED else ""
        raise DatasetError(
            f"{verb}: {len(left_out)} invalid item(s) would be left out; nothing written:\n{listing}{more}\n"
            "fix them (`detforge data check` lists every one), or pass --skip-invalid (skip_invalid=True) "
            "to write the rest"
        )
    for p in left_out:
        log.warning("left out: %s", p)
    if left_out:
        log.warning("%s: left out %d invalid item(s) (listed above)", verb, len(left_out))
    return cleaned


@scoped_by_progress
def convert(
    src: DataLike,
    dst: str | Path,
    *,
    to: str,
    format: str | None = None,
    text_attribute: str | None = None,
    skip_invalid: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Read `src` (any readable format) and write it to the folder `dst` as `to` (coco, yolo, voc or cvat).

    Items that cannot be written (lines a reader could not read, non-finite, empty or outside boxes) stop
    the conversion with a DatasetError naming each (file and line) and nothing is written; with
    `skip_invalid` they are left out and each is logged, with their count. Boxes partly outside the
    image are clipped. Images are copied, never moved. Transcriptions are written as the attribute
    `text` (COCO, VOC, CVAT); converting them to YOLO logs how many are lost. `dst` must be new, empty
    or an earlier `data convert` output (replaced as a whole); `overwrite` replaces any folder.
    """
    check_output_folder(dst, "data convert", overwrite=overwrite, inputs=_inputs(src))  # before reading
    dataset = _as_dataset(src, format, text_attribute)
    fmt = _writable_format(dataset, to)
    with output_folder(dst, "data convert", overwrite=overwrite, inputs=_inputs(src)) as tmp:
        write_into(_writable(dataset, "convert", skip_invalid), tmp, fmt)
    return Path(dst)


@scoped_by_progress
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
    allow_empty: bool = False,
    skip_invalid: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> list[Path]:
    """Split into train/val(/test) (or `folds` train/val folds) and write each to `out` (or `out/fold_<i>`).

    Deterministic for a seed, stratified by class, keeps images whose file name gives the same
    `group` (regex) together. A `group` that matches no file name, or that leaves a split without
    images, is a ConfigError (a warning with `allow_empty`); too few images for every split is a warning.
    Written in the input's format unless `to` says otherwise; invalid items stop it as in `convert` unless
    `skip_invalid`. `out` must be new, empty or
    an earlier `data split` output, which is replaced as a whole (`overwrite` replaces any folder).
    Returns the folders written.
    """
    from detforge.data.split import check_groups, check_nonempty, kfold, rename_to_ids, split_dataset

    check_each("ratios", FRACTION, ratios)
    check_numbers(folds=(int_range(2), folds))
    check_output_folder(out, "data split", overwrite=overwrite, inputs=_inputs(data))  # before reading
    dataset = _as_dataset(data, format, text_attribute)
    fmt = _writable_format(dataset, to)
    cleaned = _writable(dataset, "split", skip_invalid)
    if rename:
        cleaned = rename_to_ids(cleaned)
    check_groups(cleaned, group, allow_empty=allow_empty)
    if folds:
        parts = kfold(cleaned, folds, seed=seed, group=group)
        with output_folder(out, "data split", overwrite=overwrite, inputs=_inputs(data)) as tmp:
            for i, part in enumerate(parts):
                write_into(part, tmp / f"fold_{i}", fmt)
        return [Path(out) / f"fold_{i}" for i in range(len(parts))]
    names = (
        ("train", "val", "test")[: len(ratios)] if len(ratios) <= 3 else tuple(f"split{i}" for i in range(len(ratios)))
    )
    result = split_dataset(cleaned, tuple(ratios), names=names, seed=seed, group=group)
    check_nonempty(result, tuple(ratios), names, group=group, allow_empty=allow_empty)
    with output_folder(out, "data split", overwrite=overwrite, inputs=_inputs(data)) as tmp:
        write_into(result, tmp, fmt)
    return [Path(out)]


def sample(out: str | Path, *, n: int = 240, seed: int = 0) -> Path:
    """Generate the bundled sample dataset (handwritten physics solutions; class `task_number`) as COCO."""
    from detforge.data.sample import make_sample

    check_numbers(n=(POSITIVE_INT, n))
    return make_sample(Path(out), n=n, seed=seed)
