"""`detforge index` on the command line: a real model file (a tiny ONNX graph with fixed boxes) through
make_predictor, with a fake recogniser; flags are the API's parameter names."""

from __future__ import annotations

import argparse
import inspect
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import detforge
from detforge.cli import build_parser, main
from detforge.reading import ReadSettings

CLI_ONLY = {"handler", "json", "verbose", "command", "help"}


def _photos(root: Path, count: int) -> Path:
    rng = np.random.default_rng(0)
    for i in range(count):
        (root / f"p{i}.png").parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(root / f"p{i}.png")
    return root


def test_index_flags_are_api_parameters() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["index"]
    dests = {a.dest for a in sub._actions} - CLI_ONLY
    assert dests <= set(inspect.signature(detforge.index).parameters), dests - set(
        inspect.signature(detforge.index).parameters
    )
    assert {"out", "sort_into", "read_pattern", "read_allow", "read_classes", "score_threshold", "batch_size",
            "device", "runtime", "progress"} <= dests  # fmt: skip


def test_cli_indexes_sorts_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from read_fakes import FakeReader, constant_onnx

    model = constant_onnx(tmp_path / "model.onnx", ReadSettings(classes=("number",), min_score=0.5))
    readers: list[FakeReader] = []

    def fake_build_reader(settings: ReadSettings, **kwargs: object) -> FakeReader:
        assert settings.pattern == r"\d+\.\d+"  # --read-pattern reached the recogniser's settings
        readers.append(FakeReader(["3.14"]))
        return readers[-1]

    monkeypatch.setattr("detforge.inference.read.build_reader", fake_build_reader)
    photos = _photos(tmp_path / "photos", 3)
    argv = ["index", str(model), str(photos), "--out", str(tmp_path / "idx"), "--sort-into", str(tmp_path / "by_task"),
            "--read-pattern", r"\d+\.\d+", "--device", "cpu", "--no-progress", "--json"]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["counts"] == {"read": 3, "unsure": 0, "nothing": 0, "error": 0}
    assert summary["done_now"] == 3 and summary["sort_into"]["folders"] == ["3.14"]
    assert sorted(p.name for p in (tmp_path / "by_task" / "3.14").iterdir()) == ["p0.png", "p1.png", "p2.png"]
    # one box of class "number" above the threshold per photo: one read per photo
    assert [len(boxes) for _, boxes in readers[0].calls] == [1, 1, 1]

    assert main(argv[:-1]) == 0  # again, human-readable: everything is skipped
    out = capsys.readouterr().out
    assert "3 photos (0 done now, 3 already indexed): 3 read, 0 unsure" in out
    assert readers[1].calls == []


def test_cli_reports_an_empty_folder_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from read_fakes import FakeReader, constant_onnx

    monkeypatch.setattr("detforge.inference.read.build_reader", lambda settings, **kwargs: FakeReader())
    model = constant_onnx(tmp_path / "model.onnx", None)
    (tmp_path / "photos").mkdir()
    assert main(["index", str(model), str(tmp_path / "photos"), "--out", str(tmp_path / "idx"), "--read"]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "no photos found" in err and "Traceback" not in err


def test_cli_indexes_a_glob_and_a_path_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from read_fakes import FakeReader, constant_onnx

    monkeypatch.setattr("detforge.inference.read.build_reader", lambda settings, **kwargs: FakeReader(["7"]))
    model = constant_onnx(tmp_path / "model.onnx", ReadSettings(classes=("number",), min_score=0.5))
    photos = _photos(tmp_path / "photos", 3)
    pattern = f"{photos}/p[01].png"
    assert main(["index", str(model), pattern, "--out", str(tmp_path / "g"), "--device", "cpu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["read"] == 2
    todo = tmp_path / "todo.txt"
    todo.write_text("photos/p2.png\nphotos/missing.png\n")
    assert main(["index", str(model), str(todo), "--out", str(tmp_path / "l"), "--device", "cpu", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["counts"] == {"read": 1, "unsure": 0, "nothing": 0, "error": 1}
    assert [e["file"] for e in summary["errors"]] == ["missing.png"]
