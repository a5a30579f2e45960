"""Random corruptions of every readable format: a DatasetError naming the place, or a Dataset whose
problems are located, and which then checks, sanitizes and loads without any other exception.

The corruptions: truncation, invalid UTF-8, numbers replaced by NaN / negative / huge / strings / null,
deleted and duplicated lines, extra and missing columns, and (JSON formats) any value of the document
replaced by a value of another type or by an id that is unknown or already used.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detforge.api.data import check
from detforge.data.clean import sanitize
from detforge.data.dataset import Dataset
from detforge.data.formats import load_dataset
from detforge.data.loader import DetectionDataset
from detforge.errors import DatasetError

FORMATS = ("coco", "yolo", "voc", "cvat", "labelme", "labelstudio")
JSON_FORMATS = ("coco", "labelme", "labelstudio")
NUMBER = re.compile(rb"-?\d+(?:\.\d+)?")
BAD_NUMBERS = (b"NaN", b"nan", b"-5", b"-1e12", b"1e309", b"999999999999", b"0", b'"x"', b"null", b"[]", b"1.5", b"")
BAD_VALUES: tuple[Any, ...] = (None, "x", "", -1, 0, 2, 999, 1e308, -1e308, float("nan"), True, [], {}, [1, 2], "1")
FUZZ = settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# A corruption of one file's bytes: (op, position in [0, 1), choice index).
byte_corruptions = st.tuples(
    st.sampled_from(["truncate", "utf8", "number", "drop_line", "dup_line", "extra_column", "drop_column"]),
    st.floats(0.0, 0.999),
    st.integers(0, 1000),
)


def _corrupt_bytes(data: bytes, op: str, where: float, pick: int) -> bytes:
    at = int(len(data) * where)
    lines = data.split(b"\n")
    line = int(len(lines) * where)
    if op == "truncate":
        return data[:at]
    if op == "utf8":
        return data[:at] + (b"\xff\xfe\xc3", b"\x80", b"\xed\xa0\x80")[pick % 3] + data[at:]
    if op == "number":
        numbers = list(NUMBER.finditer(data))
        if not numbers:
            return data[:at]
        m = numbers[int(len(numbers) * where)]
        return data[: m.start()] + BAD_NUMBERS[pick % len(BAD_NUMBERS)] + data[m.end() :]
    if op == "drop_line":
        return b"\n".join(lines[:line] + lines[line + 1 :])
    if op == "dup_line":
        return b"\n".join(lines[: line + 1] + lines[line:])
    words = lines[line].split(b" ")
    if op == "extra_column":
        words.insert(pick % (len(words) + 1), b"0.5")
    elif len(words) > 1:
        del words[pick % len(words)]
    lines[line] = b" ".join(words)
    return b"\n".join(lines)


def _leaves(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into `doc` (keys and indices), containers included, in document order."""
    out = [path]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _leaves(value, (*path, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += _leaves(value, (*path, i))
    return out


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return doc


def _fresh(build: Callable[..., tuple[Path, list[Path]]], fmt: str, base: Path) -> tuple[Path, list[Path], Path]:
    root = Path(tempfile.mkdtemp(dir=base))
    path, files = build(fmt, root / "ds")
    return path, files, root


def _assert_handled(path: Path, fmt: str, names: set[str]) -> str:
    """Load, check, sanitize and decode every item; only DatasetError may escape, naming a file or folder."""
    try:
        dataset = load_dataset(path, format=fmt)
        assert isinstance(dataset, Dataset)
        for problem in dataset.problems:
            if problem.severity == "error":
                assert problem.location is not None, problem
        check(dataset, leakage=False)
        sanitize(dataset)
        loader = DetectionDataset(dataset, None)
        for i in range(len(loader)):
            image, target = loader[i]
            assert image.shape[0] == 3 and target.boxes.shape[1] == 4
        return "problems" if dataset.problems else "clean"
    except DatasetError as exc:
        message = str(exc)
        assert any(name in message for name in names), f"DatasetError names no file: {message}"
        return "error"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fmt", FORMATS)
def test_corrupted_bytes_give_a_located_error_or_dataset(fmt: str, tmp_path: Path, build_dataset, memory_cap) -> None:  # type: ignore[no-untyped-def]
    outcomes: list[str] = []

    @FUZZ
    @given(file_pick=st.integers(0, 10), corruption=byte_corruptions)
    def run(file_pick: int, corruption: tuple[str, float, int]) -> None:
        path, files, root = _fresh(build_dataset, fmt, tmp_path)
        editable = files[1:] if fmt == "voc" else files  # ImageSets: see test_voc_image_set_with_invalid_utf8
        target = editable[file_pick % len(editable)]
        target.write_bytes(_corrupt_bytes(target.read_bytes(), *corruption))
        names = {p.name for p in root.rglob("*")} | {str(path)}
        outcomes.append(_assert_handled(path, fmt, names))
        shutil.rmtree(root)

    with memory_cap():
        run()
    assert len(outcomes) == FUZZ.max_examples
    assert {"error", "problems"} & set(outcomes), outcomes  # the corruptions were noticed


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fmt", JSON_FORMATS)
def test_json_values_of_wrong_type_or_unknown_id(fmt: str, tmp_path: Path, build_dataset, memory_cap) -> None:  # type: ignore[no-untyped-def]
    outcomes: list[str] = []

    @FUZZ
    @given(where=st.floats(0.0, 0.999), value=st.sampled_from(BAD_VALUES), file_pick=st.integers(0, 10))
    def run(where: float, value: Any, file_pick: int) -> None:
        path, files, root = _fresh(build_dataset, fmt, tmp_path)
        target = files[file_pick % len(files)]
        doc = json.loads(target.read_text())
        paths = _leaves(doc)
        target.write_text(json.dumps(_replace(doc, paths[int(len(paths) * where)], value)))
        names = {p.name for p in root.rglob("*")} | {str(path)}
        outcomes.append(_assert_handled(path, fmt, names))
        shutil.rmtree(root)

    with memory_cap():
        run()
    assert len(outcomes) == FUZZ.max_examples


@pytest.mark.timeout(30)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("box", [("nan", "nan"), ("-50", "-40"), ("1e12", "1e12"), ("30", "2")], ids=str)
def test_nan_negative_huge_and_inverted_boxes_are_problems(  # type: ignore[no-untyped-def]
    fmt: str, box: tuple[str, str], tmp_path: Path, build_dataset
) -> None:
    """The first box's second corner replaced: the dataset loads (or fails naming the file), sanitize
    drops or clips it with a Problem, and the loader's targets hold only finite boxes inside the image."""
    path, files = build_dataset(fmt, tmp_path / "ds")
    target = files[-1] if fmt == "yolo" else files[0]
    text = target.read_text()
    x, y = box
    if fmt == "yolo":  # width/height of the first line's box
        first, rest = text.split("\n", 1)
        text = " ".join([*first.split(" ")[:3], x, y]) + "\n" + rest
    elif fmt == "voc":
        text = re.sub(r"<xmax>[^<]*</xmax><ymax>[^<]*</ymax>", f"<xmax>{x}</xmax><ymax>{y}</ymax>", text, count=1)
    elif fmt == "cvat":
        text = re.sub(r'xbr="[^"]*" ybr="[^"]*"', f'xbr="{x}" ybr="{y}"', text, count=1)
    else:
        doc = json.loads(text)
        value = [float(x), float(y)]
        if fmt == "coco":
            doc["annotations"][0]["bbox"][2:] = value
        elif fmt == "labelme":
            doc["shapes"][0]["points"][1] = value
        else:
            doc[0]["annotations"][0]["result"][0]["value"].update(width=value[0], height=value[1])
        text = json.dumps(doc)
    target.write_text(text)
    try:
        dataset = load_dataset(path, format=fmt)
    except DatasetError as exc:
        assert target.name in str(exc)
        return
    cleaned, problems = sanitize(dataset)
    loader = DetectionDataset(dataset, None)
    kept = sum(len(loader[i][1].boxes) for i in range(len(loader)))
    assert kept == len(cleaned.annotations) <= 3
    if kept < 3 or problems:  # the bad box was dropped or clipped: said so
        assert problems or any(p.severity in ("error", "warning") for p in dataset.problems)
    for i in range(len(loader)):
        image, t = loader[i]
        h, w = image.shape[1:]
        assert bool((t.boxes[:, 0::2] >= 0).all() and (t.boxes[:, 0::2] <= w).all())
        assert bool((t.boxes[:, 1::2] >= 0).all() and (t.boxes[:, 1::2] <= h).all())
        assert bool((t.boxes[:, 2:] > t.boxes[:, :2]).all())


# --- bugs found by the fuzzing above, each reduced to one case ----------------------------------------------


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


# Cases the fuzzing found (each once let a non-DatasetError escape); kept as regression tests.
BUG_CASES = {
    "voc-size-inf": ("voc", 1, "<width>40", "<width>1e309"),
    "cvat-size-inf": ("cvat", 0, 'width="40"', 'width="1e309"'),
    "labelme-size-nan": ("labelme", 0, '"imageHeight": 30', '"imageHeight": NaN'),
    "labelme-size-inf": ("labelme", 0, '"imageHeight": 30', '"imageHeight": 1e309'),
    "labelstudio-annotations-number": ("labelstudio", 0, '"annotations": [', '"annotations": 5, "x": ['),
    "labelstudio-result-number": ("labelstudio", 0, '"result": [', '"result": 5, "x": ['),
    "labelstudio-value-string": ("labelstudio", 0, '"value": {', '"value": "v", "x": {'),
    "yolo-huge-class-index": ("yolo", 0, "0: cat", "999999999999: cat"),
    "coco-huge-category-id": ("coco", 0, '"id": 1,\n   "name": "cat"', '"id": 1e308,\n   "name": "cat"'),
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", list(BUG_CASES))
def test_found_bug_is_now_a_dataset_error_or_problem(case: str, tmp_path: Path, build_dataset, memory_cap) -> None:  # type: ignore[no-untyped-def]
    fmt, index, old, new = BUG_CASES[case]
    path, files = build_dataset(fmt, tmp_path / "ds")
    _edit(files[index], old, new)
    with memory_cap():
        try:
            dataset = load_dataset(path, format=fmt)
            check(dataset, leakage=False)
        except DatasetError as exc:
            assert files[index].name in str(exc)


@pytest.mark.timeout(30)
def test_voc_image_set_with_invalid_utf8(tmp_path: Path, build_dataset) -> None:  # type: ignore[no-untyped-def]
    path, files = build_dataset("voc", tmp_path / "ds")
    files[0].write_bytes(b"\xff\xfe" + files[0].read_bytes())
    with pytest.raises(DatasetError, match=r"train\.txt"):
        load_dataset(path, format="voc")
