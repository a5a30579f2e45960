"""split_dataset / kfold / rename_to_ids: sizes, stratification, groups, determinism, validation."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from detforge.data.dataset import Dataset
from detforge.data.split import kfold, rename_to_ids, split_dataset
from detforge.errors import ConfigError
from detforge.structures import Annotation, Categories, ImageRecord


def make_dataset(file_names: list[str], labels: list[list[int]], names: tuple[str, ...] = ("a", "b", "c")) -> Dataset:
    """Images named `file_names` (ids 1..N); image i has one box per category id in `labels[i]`."""
    images = tuple(ImageRecord(i + 1, fn, Path("/data") / fn, 100, 100) for i, fn in enumerate(file_names))
    anns: list[Annotation] = []
    for i, cats in enumerate(labels):
        for c in cats:
            anns.append(Annotation(len(anns) + 1, i + 1, c, (10.0, 10.0, 50.0, 50.0)))
    return Dataset(images, tuple(anns), Categories.from_names(list(names)), Path("/data"), "coco")


def random_dataset(n: int, seed: int = 1, rare_images: tuple[int, ...] = ()) -> Dataset:
    """n images with 1-3 boxes of classes a/b/c (60/30/10 %), plus one 'rare' box on each of `rare_images`."""
    rng = np.random.default_rng(seed)
    labels = [[int(c) for c in rng.choice([1, 2, 3], size=rng.integers(1, 4), p=[0.6, 0.3, 0.1])] for _ in range(n)]
    for i in rare_images:
        labels[i].append(4)
    return make_dataset([f"img{i:03d}.jpg" for i in range(n)], labels, ("a", "b", "c", "rare"))


def subsets(ds: Dataset) -> dict[int, str | None]:
    return {im.id: im.subset for im in ds.images}


def class_shares(ds: Dataset, category_id: int) -> dict[str | None, float]:
    sub = subsets(ds)
    counts = Counter(sub[a.image_id] for a in ds.annotations if a.category_id == category_id)
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()}


def test_split_sizes_and_class_shares_follow_ratios_on_200_images() -> None:
    ds = random_dataset(200)
    out = split_dataset(ds, (0.7, 0.2, 0.1))
    assert Counter(im.subset for im in out.images) == {"train": 140, "val": 40, "test": 20}
    for category_id in (1, 2, 3):
        shares = class_shares(out, category_id)
        assert shares["train"] == pytest.approx(0.7, abs=0.05)
        assert shares["val"] == pytest.approx(0.2, abs=0.05)
        assert shares["test"] == pytest.approx(0.1, abs=0.05)
    # Same images and annotations, only subsets changed, in the original order.
    assert [im.file_name for im in out.images] == [im.file_name for im in ds.images]
    assert out.annotations == ds.annotations


def test_split_is_deterministic_and_independent_of_input_order() -> None:
    ds = random_dataset(60)
    reversed_ds = Dataset(ds.images[::-1], ds.annotations[::-1], ds.categories, ds.root, ds.format)
    first = subsets(split_dataset(ds, seed=3))
    assert subsets(split_dataset(ds, seed=3)) == first
    assert subsets(split_dataset(reversed_ds, seed=3)) == first
    assert subsets(split_dataset(ds, seed=4)) != first


def test_rare_class_appears_in_every_split() -> None:
    ds = random_dataset(100, rare_images=(5, 40, 77))
    out = split_dataset(ds, (0.8, 0.1, 0.1))
    sub = subsets(out)
    rare_subsets = sorted(sub[a.image_id] or "" for a in out.annotations if a.category_id == 4)
    assert rare_subsets == ["test", "train", "val"]
    assert Counter(sub.values()) == {"train": 80, "val": 10, "test": 10}


def test_group_pattern_keeps_groups_in_one_subset() -> None:
    names = [f"patient{p:02d}/slice{s}.png" for p in range(20) for s in range(p % 4 + 1)]
    names += [f"loose_{i}.png" for i in range(10)]  # no match: each image is its own group
    rng = np.random.default_rng(0)
    ds = make_dataset(names, [[int(rng.integers(1, 4))] for _ in names])
    out = split_dataset(ds, (0.6, 0.2, 0.2), group=r"^(patient\d+)/")
    by_patient: dict[str, set[str | None]] = {}
    for im in out.images:
        match = re.match(r"^(patient\d+)/", im.file_name)
        if match:
            by_patient.setdefault(match.group(1), set()).add(im.subset)
    assert len(by_patient) == 20
    assert all(len(s) == 1 for s in by_patient.values())
    counts = Counter(im.subset for im in out.images)
    assert set(counts) == {"train", "val", "test"}
    assert counts["train"] == pytest.approx(0.6 * len(names), abs=4)
    # The loose images are split individually, not forced together.
    assert len({im.subset for im in out.images if im.file_name.startswith("loose_")}) > 1


def test_group_without_capture_uses_whole_match() -> None:
    names = [f"{scene}{take}_{frame}.jpg" for scene in "abcdefgh" for take in (1, 2) for frame in range(3)]
    ds = make_dataset(names, [[1] for _ in names])
    out = split_dataset(ds, (0.5, 0.5), names=("train", "val"), group=r"^[a-z]\d")
    by_key: dict[str, set[str | None]] = {}
    for im in out.images:
        by_key.setdefault(im.file_name[:2], set()).add(im.subset)
    assert len(by_key) == 16 and all(len(s) == 1 for s in by_key.values())


def test_each_nonzero_ratio_gets_an_image_and_zero_ratio_none() -> None:
    ds = make_dataset(["a.jpg", "b.jpg", "c.jpg", "d.jpg"], [[1], [1], [2], []])
    out = split_dataset(ds, (0.98, 0.01, 0.01, 0.0), names=("train", "val", "test", "extra"))
    assert Counter(im.subset for im in out.images) == {"train": 2, "val": 1, "test": 1}


def test_empty_dataset_is_returned_unchanged() -> None:
    ds = make_dataset([], [])
    assert split_dataset(ds) == ds


@pytest.mark.parametrize(
    ("ratios", "names", "message"),
    [
        ((0.8, 0.1), ("train", "val", "test"), "has 2 values but names"),
        ((0.8, 0.3, -0.1), ("train", "val", "test"), "'test' is -0.1"),
        ((0.5, 0.2, 0.2), ("train", "val", "test"), "sum to 0.9"),
        ((0.5, float("nan"), 0.5), ("train", "val", "test"), "'val' is nan"),
        ((0.5, 0.5), ("train", "train"), "appear more than once"),
    ],
)
def test_split_rejects_bad_ratios_naming_the_value(
    ratios: tuple[float, ...], names: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        split_dataset(random_dataset(10), ratios, names=names)


def test_split_rejects_bad_group_pattern() -> None:
    with pytest.raises(ConfigError, match=re.escape("group pattern '(unclosed'")):
        split_dataset(random_dataset(10), group="(unclosed")


def test_kfold_every_image_in_exactly_one_val_fold_and_groups_intact() -> None:
    names = [f"vid{v:02d}_f{f}.jpg" for v in range(15) for f in range(3)]
    rng = np.random.default_rng(2)
    ds = make_dataset(names, [[int(rng.integers(1, 4))] for _ in names])
    folds = kfold(ds, 5, group=r"^(vid\d+)_")
    assert len(folds) == 5
    val_count = Counter(im.id for fold in folds for im in fold.images if im.subset == "val")
    assert set(val_count) == {im.id for im in ds.images}
    assert set(val_count.values()) == {1}
    for fold in folds:
        assert {im.subset for im in fold.images} == {"train", "val"}
        assert sum(im.subset == "val" for im in fold.images) == 9  # 3 whole videos
        per_video: dict[str, set[str | None]] = {}
        for im in fold.images:
            per_video.setdefault(im.file_name[:5], set()).add(im.subset)
        assert all(len(s) == 1 for s in per_video.values())


def test_kfold_stratifies_a_rare_class_and_validates_k() -> None:
    ds = random_dataset(50, rare_images=(3, 13, 23, 33))
    folds = kfold(ds, 4, seed=7)
    for fold in folds:
        sub = subsets(fold)
        assert any(sub[a.image_id] == "val" for a in fold.annotations if a.category_id == 4)
    with pytest.raises(ConfigError, match="k must be an integer >= 2, got 1"):
        kfold(ds, 1)
    with pytest.raises(ConfigError, match="k=60 folds need at least 60"):
        kfold(ds, 60)


def test_rename_to_ids_keeps_path_and_subset() -> None:
    ds = make_dataset(["photos/IMG_1.JPG", "b.png"], [[1], []]).with_subset("val")
    out = rename_to_ids(ds)
    assert [im.file_name for im in out.images] == ["000001.JPG", "000002.png"]
    assert [im.path for im in out.images] == [Path("/data/photos/IMG_1.JPG"), Path("/data/b.png")]
    assert {im.subset for im in out.images} == {"val"}
    assert out.annotations == ds.annotations
