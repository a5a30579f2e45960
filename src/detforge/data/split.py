"""Assign images to subsets: stratified by class, grouped by a file-name pattern, deterministic for a seed."""

from __future__ import annotations

import logging
import math
import numbers
import re
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

import numpy as np

from detforge.data.dataset import Dataset
from detforge.errors import ConfigError
from detforge.structures import ImageRecord

__all__ = ["MIN_INSTANCES_FOR_COVERAGE", "check_groups", "check_nonempty", "kfold", "rename_to_ids", "split_dataset"]

log = logging.getLogger(__name__)

MIN_INSTANCES_FOR_COVERAGE = 3
"""A class with at least this many instances (in enough images) is put in every non-empty subset."""


@dataclass(frozen=True)
class _Groups:
    """Images that must stay together, in a deterministic order, with their class histograms."""

    members: tuple[tuple[ImageRecord, ...], ...]
    histogram: np.ndarray  # [G, K] int64 instances of each class per group
    sizes: np.ndarray  # [G] int64 images per group


def _validate_ratios(ratios: tuple[float, ...], names: tuple[str, ...]) -> None:
    if len(ratios) != len(names):
        raise ConfigError(
            f"split: ratios {tuple(ratios)} has {len(ratios)} values but names {tuple(names)} has {len(names)}; "
            "give one ratio per subset name"
        )
    for name, ratio in zip(names, ratios, strict=True):
        if not isinstance(ratio, numbers.Real) or not math.isfinite(ratio) or ratio < 0:
            raise ConfigError(f"split: ratio of subset {name!r} is {ratio!r}; expected a finite number >= 0")
    total = float(sum(ratios))
    if abs(total - 1.0) > 1e-6:
        raise ConfigError(f"split: ratios {tuple(ratios)} sum to {total:.6g}; expected them to sum to 1")
    bad = [n for n in names if not isinstance(n, str) or not n]
    if bad:
        raise ConfigError(f"split: subset names must be non-empty strings, got {bad!r}")
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise ConfigError(f"split: subset names {dups} appear more than once in {tuple(names)}; expected unique names")


def _group_key(pattern: re.Pattern[str] | None, image: ImageRecord) -> tuple[bool, str]:
    if pattern is not None:
        match = pattern.search(image.file_name)
        if match is not None:
            key = match.group(1) if pattern.groups >= 1 and match.group(1) is not None else match.group(0)
            return (True, key)
    return (False, f"{image.file_name}\0{image.id}")


def _compile(group: str) -> re.Pattern[str]:
    try:
        return re.compile(group)
    except re.error as exc:
        raise ConfigError(f"split: group pattern {group!r} is not a valid regular expression ({exc})") from None


def _complain(message: str, allow_empty: bool) -> None:
    if not allow_empty:
        raise ConfigError(f"{message}; pass --allow-empty (allow_empty=True) to split anyway")
    log.warning("%s", message)


def check_groups(dataset: Dataset, group: str | None, *, allow_empty: bool = False) -> None:
    """Raise ConfigError (log a warning with `allow_empty`) when the `group` pattern matches none of the
    dataset's file names: then every image would be its own group, which is never what the user meant."""
    if group is None or not dataset.images:
        return
    pattern = _compile(group)
    if any(pattern.search(im.file_name) for im in dataset.images):
        return
    examples = ", ".join(repr(im.file_name) for im in dataset.images[:3])
    _complain(
        f"split: group pattern {group!r} matches none of the {len(dataset.images)} file names (e.g. {examples}), "
        "so no images are kept together",
        allow_empty,
    )


def check_nonempty(
    dataset: Dataset,
    ratios: tuple[float, ...],
    names: tuple[str, ...],
    *,
    group: str | None = None,
    allow_empty: bool = False,
) -> None:
    """Name each subset with a ratio > 0 that holds no image of the split `dataset`: a ConfigError when a
    `group` pattern made the groups too large to share out (a warning with `allow_empty`), a warning when
    there are simply fewer images than subsets."""
    counts = {name: 0 for name in names}
    for im in dataset.images:
        if im.subset in counts:
            counts[im.subset] += 1
    pairs = zip(names, ratios, strict=True)
    empty = [f"{name!r} (ratio {ratio:g})" for name, ratio in pairs if ratio > 0 and counts[name] == 0]
    if empty:
        sizes = ", ".join(f"{name} {n}" for name, n in counts.items())
        if group is None:
            log.warning("split: subset(s) %s got no images (%s images): too few images", ", ".join(empty), sizes)
            return
        _complain(
            f"split: subset(s) {', '.join(empty)} got no images ({sizes} images): the group pattern {group!r} "
            "puts too many images into one group",
            allow_empty,
        )


def _groups(dataset: Dataset, group: str | None) -> _Groups:
    pattern = _compile(group) if group is not None else None
    buckets: dict[tuple[bool, str], list[ImageRecord]] = {}
    for image in sorted(dataset.images, key=lambda im: (im.file_name, im.id)):
        buckets.setdefault(_group_key(pattern, image), []).append(image)
    members = tuple(tuple(b) for b in buckets.values())
    index = {c.id: i for i, c in enumerate(dataset.categories)}
    row_of = {im.id: g for g, b in enumerate(members) for im in b}
    histogram = np.zeros((len(members), len(index)), dtype=np.int64)
    for ann in dataset.annotations:
        if ann.image_id in row_of and ann.category_id in index:
            histogram[row_of[ann.image_id], index[ann.category_id]] += 1
    sizes = np.array([len(b) for b in members], dtype=np.int64)
    return _Groups(members, histogram, sizes)


def _targets(ratios: np.ndarray, n: int) -> np.ndarray:
    """Image counts per subset: largest remainder rounding of ratios * n, summing to n, >= 1 per non-zero ratio
    when n allows."""
    exact = ratios * n
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - int(counts.sum())]] += 1
    nonzero = np.flatnonzero(ratios > 0)
    if n >= len(nonzero):
        for s in nonzero:
            if counts[s] == 0:
                counts[int(np.argmax(counts))] -= 1
                counts[s] = 1
    return counts


def _assign(groups: _Groups, ratios: np.ndarray, seed: int) -> np.ndarray:
    """Subset index for each group: iterative stratification, rarest class first, within image quotas."""
    hist, sizes = groups.histogram, groups.sizes
    num_groups, num_classes = hist.shape
    nonzero = ratios > 0
    image_left = _targets(ratios, int(sizes.sum())).astype(np.float64)  # [S]
    class_left = ratios[:, None] * hist.sum(axis=0)[None, :]  # [S, K] desired instances still to place
    placed = np.zeros((len(ratios), num_classes), dtype=np.int64)  # [S, K]
    images_with = (hist > 0).sum(axis=0)  # [K]
    cover = (hist.sum(axis=0) >= MIN_INSTANCES_FOR_COVERAGE) & (images_with >= nonzero.sum())  # [K]
    order = np.random.default_rng(seed).permutation(num_groups)
    assignment = np.full(num_groups, -1, dtype=np.int64)

    def place(g: int, c: int | None) -> None:
        open_ = nonzero & (image_left > 0)
        candidates = np.flatnonzero(open_ if open_.any() else nonzero)

        def rank(s: int) -> tuple[float, float, float, int]:
            if c is None:
                return (0.0, 0.0, image_left[s], -s)
            missing = 1.0 if cover[c] and placed[s, c] == 0 else 0.0
            return (missing, class_left[s, c], image_left[s], -s)

        s = max((int(s) for s in candidates), key=rank)
        assignment[g] = s
        image_left[s] -= sizes[g]
        class_left[s] -= hist[g]
        placed[s] += hist[g]

    while True:
        unassigned = assignment < 0
        remaining = hist[unassigned].sum(axis=0)  # [K]
        if not (remaining > 0).any():
            break
        c = int(np.argmin(np.where(remaining > 0, remaining, np.iinfo(np.int64).max)))
        for g in order[(assignment[order] < 0) & (hist[order, c] > 0)]:
            place(int(g), c)
    for g in order[assignment[order] < 0]:
        place(int(g), None)
    _fill_empty(assignment, sizes, nonzero)
    return assignment


def _fill_empty(assignment: np.ndarray, sizes: np.ndarray, nonzero: np.ndarray) -> None:
    """Give each empty non-zero subset the smallest group of the largest subset holding >= 2 groups, if any."""
    for s in np.flatnonzero(nonzero):
        if (assignment == s).any():
            continue
        counts = np.array([(assignment == t).sum() for t in range(len(nonzero))])
        images = np.array([sizes[assignment == t].sum() for t in range(len(nonzero))])
        donors = np.flatnonzero(counts >= 2)
        if len(donors) == 0:
            return
        donor = donors[np.argmax(images[donors])]
        members = np.flatnonzero(assignment == donor)
        assignment[members[np.argmin(sizes[members])]] = s


def _with_subsets(dataset: Dataset, subset_of: dict[int, str]) -> Dataset:
    return replace(dataset, images=tuple(replace(im, subset=subset_of[im.id]) for im in dataset.images))


def split_dataset(
    dataset: Dataset,
    ratios: tuple[float, ...] = (0.8, 0.1, 0.1),
    *,
    names: tuple[str, ...] = ("train", "val", "test"),
    seed: int = 0,
    group: str | None = None,
) -> Dataset:
    """The same dataset with every image's `subset` set to one of `names`, in proportions `ratios`.

    Image counts per subset are `ratios * len(dataset)` rounded to add up (each non-zero ratio gets at
    least one image when there are enough images or groups). Classes are stratified: each subset's share
    of every class is close to its ratio, rarest classes placed first, and a class with >= 3 instances
    appears in every non-empty subset where possible. `group` is a regex searched in `file_name`: images
    with the same key (first capture group, else the whole match) share a subset; an image it does not
    match is its own group. Deterministic for a seed, independent of the input order.
    Raises ConfigError naming the bad ratio, name or pattern.
    """
    ratios = tuple(ratios)
    names = tuple(names)
    _validate_ratios(ratios, names)
    if not dataset.images:
        return dataset
    groups = _groups(dataset, group)
    assignment = _assign(groups, np.array(ratios, dtype=np.float64), seed)
    subset_of = {im.id: names[int(s)] for g, s in enumerate(assignment) for im in groups.members[g]}
    return _with_subsets(dataset, subset_of)


def kfold(dataset: Dataset, k: int, *, seed: int = 0, group: str | None = None) -> list[Dataset]:
    """`k` copies of the dataset for cross-validation: in fold i its held-out part has subset "val", the rest "train".

    Folds are stratified and grouped like `split_dataset`; every image is in exactly one "val" part.
    Raises ConfigError when k < 2 or there are fewer images (groups) than k.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ConfigError(f"kfold: k must be an integer >= 2, got {k!r}")
    groups = _groups(dataset, group)
    if len(groups.members) < k:
        raise ConfigError(
            f"kfold: k={k} folds need at least {k} images (groups), but the dataset has {len(groups.members)}"
        )
    assignment = _assign(groups, np.full(k, 1.0 / k), seed)
    fold_of = {im.id: int(s) for g, s in enumerate(assignment) for im in groups.members[g]}
    return [
        _with_subsets(dataset, {i: ("val" if f == fold else "train") for i, f in fold_of.items()}) for fold in range(k)
    ]


def rename_to_ids(dataset: Dataset) -> Dataset:
    """The same dataset with each `file_name` replaced by `f"{id:06d}{suffix}"` (suffix of the old name).

    `path` and `subset` are unchanged, so a writer copies each image from its current file to the new
    name under the same subset folder. The files on disk are not touched.
    """
    return replace(
        dataset,
        images=tuple(
            replace(im, file_name=f"{im.id:06d}{PurePosixPath(im.file_name).suffix}") for im in dataset.images
        ),
    )
