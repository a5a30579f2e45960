"""detforge.progress: one on/off rule (asked for, not switched off, stderr a terminal) for every bar."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from detforge import progress
from detforge.progress import LARGE_SET, counting, progress_enabled, progress_scope, scoped_by_progress, tick, track


class _Terminal:
    """stderr taken for a terminal: the bars drawn on it (tqdm objects, closed or not) and its text."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys
        self.bars: list[Any] = []

    def text(self) -> str:
        return self._capsys.readouterr().err

    def counts(self) -> dict[str, tuple[int, int | None]]:
        """desc -> (items counted, total) of each bar drawn so far."""
        return {bar.desc: (bar.n, bar.total) for bar in self.bars}


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> _Terminal:
    """stderr taken for a terminal (pytest sets sys.stderr anew for each test phase, so it is not replaced)."""
    seen = _Terminal(capsys)
    real_bar = progress._bar

    def recorded(*args: Any) -> Any:
        seen.bars.append(real_bar(*args))
        return seen.bars[-1]

    monkeypatch.setattr(progress, "_stderr_is_terminal", lambda: True)
    monkeypatch.setattr(progress, "_bar", recorded)
    return seen


def test_no_bar_unless_stderr_is_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert not sys.stderr.isatty() and not progress_enabled()
    assert list(track([1, 2, 3], desc="work")) == [1, 2, 3]
    with counting("copying", counts="copy", total=1):
        tick("copy")
    assert capsys.readouterr().err == ""


def test_rule_asked_for_and_scoped(terminal: _Terminal) -> None:
    assert progress_enabled() and not progress_enabled(False)
    with progress_scope(False):
        assert not progress_enabled()
        with counting("copying", counts="copy", total=1):
            tick("copy")
        with progress_scope(True):  # an inner scope cannot turn bars back on
            assert not progress_enabled()
    assert progress_enabled() and terminal.bars == []


def test_track_draws_and_yields_unchanged(terminal: _Terminal) -> None:
    assert list(track(iter("abc"), desc="letters", unit="letter", total=3)) == ["a", "b", "c"]
    assert terminal.counts() == {"letters": (3, 3)} and "letters" in terminal.text()


def test_track_skips_small_sets(terminal: _Terminal) -> None:
    assert list(track(range(5), desc="small", min_total=6)) == [0, 1, 2, 3, 4]
    assert list(track(range(5), desc="off", progress=False)) == [0, 1, 2, 3, 4]
    assert terminal.bars == [] and terminal.text() == ""


def test_tick_moves_only_the_bar_of_its_kind(terminal: _Terminal) -> None:
    tick("copy")  # outside any block: nothing
    with counting("copying", counts="copy", total=2):
        tick("copy")
        tick("header")  # another kind of work: not counted
        tick("copy")
    assert terminal.counts() == {"copying": (2, 2)}


def test_scoped_verb_turns_bars_off_below_it(terminal: _Terminal) -> None:
    @scoped_by_progress
    def verb(*, progress: bool = True) -> list[int]:
        return list(track(range(3), desc="inner"))

    assert verb(progress=False) == [0, 1, 2] and terminal.bars == []
    assert verb() == [0, 1, 2] and terminal.counts() == {"inner": (3, 3)}


def _large_dataset(root: Path, n: int) -> Path:
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(1, n + 1):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        images.append({"id": i, "file_name": f"{i}.png", "width": 8, "height": 8})
        annotations.append({"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 4, 4], "area": 16, "iscrowd": 0})
    coco = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "a"}]}
    (root / "annotations.json").write_text(json.dumps(coco), encoding="utf-8")
    return root / "annotations.json"


def test_data_check_and_convert_of_a_large_set_show_bars(terminal: _Terminal, tmp_path: Path) -> None:
    from detforge.cli import main

    data = _large_dataset(tmp_path / "data", LARGE_SET)
    assert main(["data", "check", str(data), "--no-progress"]) == 0
    assert terminal.bars == []
    assert main(["data", "check", str(data)]) == 0
    assert terminal.counts()["check"] == (LARGE_SET, LARGE_SET)
    assert main(["data", "convert", str(data), str(tmp_path / "yolo"), "--to", "yolo"]) == 0
    assert terminal.counts()["write yolo"] == (LARGE_SET, LARGE_SET)  # one tick per image copied
    assert "write yolo" in terminal.text()


def test_small_sets_show_no_bars(terminal: _Terminal, tmp_path: Path) -> None:
    from detforge.cli import main

    data = _large_dataset(tmp_path / "data", LARGE_SET - 1)
    assert main(["data", "check", str(data)]) == 0
    assert main(["data", "convert", str(data), str(tmp_path / "yolo"), "--to", "yolo"]) == 0
    assert set(terminal.counts()) <= {"read coco"}  # reading has no size threshold, only a 1 s delay


def test_train_logger_draws_no_bar_into_a_pipe(tmp_path: Path) -> None:
    """Before: `progress=True` drew the training bar into logs and pipes too (only `index` checked for a
    terminal)."""
    from detforge.engine.logs import TrainLogger

    with TrainLogger(tmp_path, total=10, start=0, enabled=True, progress=True) as log:
        assert log._bar is None
