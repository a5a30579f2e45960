"""Property: a round trip through any pair of writable formats keeps every box and class name."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from detforge.data.dataset import Dataset
from detforge.data.formats import WRITE_FORMATS, load_dataset, write_dataset
from detforge.structures import Annotation, Categories, ImageRecord

TOLERANCE_PX = 0.5
NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-0123456789éø", min_size=1, max_size=12).filter(
    lambda s: s[0].isalpha()
)


@st.composite
def datasets(
    draw: st.DrawFn,
) -> tuple[list[str], list[tuple[str, str | None, int, int, list[tuple[int, tuple[float, ...]]]]]]:
    names = draw(st.lists(NAME, min_size=1, max_size=4, unique=True))
    images = []
    for i in range(draw(st.integers(1, 4))):
        w, h = draw(st.integers(8, 120)), draw(st.integers(8, 120))
        boxes = []
        for _ in range(draw(st.integers(0, 4))):
            x0 = draw(st.floats(0, w - 2, allow_nan=False))
            y0 = draw(st.floats(0, h - 2, allow_nan=False))
            x1 = draw(st.floats(x0 + 1, w, allow_nan=False))
            y1 = draw(st.floats(y0 + 1, h, allow_nan=False))
            boxes.append((draw(st.integers(0, len(names) - 1)), (x0, y0, x1, y1)))
        subset = draw(st.sampled_from(["train", "val"]))
        images.append((f"img_{i}.png", subset, w, h, boxes))
    return names, images


def _build(root: Path, spec) -> Dataset:  # type: ignore[no-untyped-def]
    names, images = spec
    cats = Categories.from_names(names)
    recs, anns = [], []
    for i, (fname, subset, w, h, boxes) in enumerate(images, start=1):
        path = root / "src" / fname
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((h, w, 3), 127, np.uint8)).save(path)
        recs.append(ImageRecord(i, fname, path, w, h, subset))
        for cls, box in boxes:
            anns.append(Annotation(len(anns) + 1, i, cats.items[cls].id, box))
    return Dataset(tuple(recs), tuple(anns), cats, root / "src", "coco")


def _boxes_by_file(ds: Dataset) -> dict[str, list[tuple[str, tuple[float, ...]]]]:
    out = {}
    for im in ds.images:
        key = Path(im.file_name).name
        out[key] = sorted((ds.categories.by_id(a.category_id).name, a.bbox) for a in ds.annotations_of(im.id))
    return out


def _assert_same(original: Dataset, got: Dataset, route: str) -> None:
    assert set(got.categories.names) == set(original.categories.names), f"{route}: class names changed"
    want, have = _boxes_by_file(original), _boxes_by_file(got)
    assert set(have) == set(want), f"{route}: images changed"
    for key, boxes in want.items():
        assert len(have[key]) == len(boxes), f"{route}: {key} has {len(have[key])} boxes, expected {len(boxes)}"
        # match greedily by class then nearest box (order may differ between formats)
        remaining = list(have[key])
        for name, box in boxes:
            best = min(
                (r for r in remaining if r[0] == name),
                key=lambda r: max(abs(a - b) for a, b in zip(r[1], box, strict=True)),
                default=None,
            )
            assert best is not None, f"{route}: {key} lost a {name!r} box"
            err = max(abs(a - b) for a, b in zip(best[1], box, strict=True))
            assert err <= TOLERANCE_PX, f"{route}: {key} box {box} came back as {best[1]} ({err:.3f} px off)"
            remaining.remove(best)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=datasets())
def test_round_trip_through_every_format_pair(spec) -> None:  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        original = _build(root, spec)
        for a in WRITE_FORMATS:
            first = load_dataset(write_dataset(original, root / f"{a}_1", a), format=a)
            _assert_same(original, first, a)
            for b in WRITE_FORMATS:
                second = load_dataset(write_dataset(first, root / f"{a}_{b}_2", b), format=b)
                _assert_same(original, second, f"{a} -> {b}")
                shutil.rmtree(root / f"{a}_{b}_2")
            shutil.rmtree(root / f"{a}_1")
