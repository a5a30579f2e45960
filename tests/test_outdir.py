"""Output folders: a command replaces only its own earlier output, as a whole; anything else is refused."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

import detforge
from detforge.outdir import MARKER, OutputFolderError, check_output_folder, output_folder, written_by
from tiny_fixtures import write_tiny_coco


def test_new_output_gets_a_marker_and_replaces_its_own_earlier_output(tmp_path: Path) -> None:
    out = tmp_path / "a" / "out"
    with output_folder(out, "data show") as folder:
        assert folder.parent == out.parent and not any(folder.iterdir())
        (folder / "old.txt").write_text("1", encoding="utf-8")
    assert written_by(out) == "data show" and (out / "old.txt").is_file()
    with output_folder(out, "data show") as folder:
        (folder / "new.txt").write_text("2", encoding="utf-8")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "new.txt"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"], "no temp folder left beside it"


def test_foreign_and_other_commands_folders_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_output_folder(empty, "eval") == empty
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("x", encoding="utf-8")
    with pytest.raises(OutputFolderError, match="not written by detforge"):
        check_output_folder(mine, "eval")
    (mine / MARKER).write_text(json.dumps({"command": "predict"}), encoding="utf-8")
    with pytest.raises(OutputFolderError, match="written by `detforge predict`"):
        check_output_folder(mine, "eval")
    (mine / MARKER).write_text("not json", encoding="utf-8")
    with pytest.raises(OutputFolderError, match="not written by detforge"):
        check_output_folder(mine, "eval")
    assert check_output_folder(mine, "eval", overwrite=True) == mine
    with pytest.raises(OutputFolderError, match="is a file"):
        check_output_folder(mine / "thesis.tex", "eval", overwrite=True)
    with pytest.raises(OutputFolderError, match="holds the input"):
        check_output_folder(tmp_path, "eval", overwrite=True, inputs=[mine / "thesis.tex"])


def test_an_error_inside_keeps_the_old_output_and_removes_the_new_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with output_folder(out, "predict") as folder:
        (folder / "keep.txt").write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError), output_folder(out, "predict") as folder:
        (folder / "half.txt").write_text("new", encoding="utf-8")
        raise RuntimeError("killed")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "keep.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_leftovers_of_a_killed_run_are_removed_by_the_next_one(tmp_path: Path) -> None:
    (tmp_path / ".out.abcd1234.partial").mkdir()
    (tmp_path / ".out.abcd1234.partial" / "x").write_text("x", encoding="utf-8")
    with output_folder(tmp_path / "out", "predict"):
        pass
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def _coco_results(root: Path) -> Path:
    """Ground truth boxes of the tiny COCO's val subset as a COCO results file (score 0.9)."""
    gt = json.loads((root / "annotations" / "instances_val.json").read_text(encoding="utf-8"))
    results = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
               for a in gt["annotations"]]  # fmt: skip
    path = root.parent / "results.json"
    path.write_text(json.dumps(results), encoding="utf-8")
    return path


def test_eval_out_replaces_its_report_and_refuses_a_foreign_folder(tmp_path: Path) -> None:
    data = write_tiny_coco(tmp_path / "data", n_train=2, n_val=3)
    results = _coco_results(data)
    out = tmp_path / "eval"
    first = detforge.evaluate(None, data, split="val", detections=results, out=out, bootstrap=0)
    assert first.report == out / "report.html" and first.report.is_file()
    (out / "stale.png").write_bytes(b"")
    again = detforge.evaluate(None, data, split="val", detections=results, out=out, bootstrap=0)
    assert again.report == out / "report.html" and not (out / "stale.png").exists()
    with pytest.raises(OutputFolderError, match="holds the input"):
        detforge.evaluate(None, data, split="val", detections=results, out=tmp_path, bootstrap=0, overwrite=True)


class _NoImagesPredictor:
    """Stands in for a loaded model: reports every source as unreadable (no torch, no weights)."""

    category_ids = (1,)
    class_names = ("a",)

    def predict_many(self, items: Iterable[Any], on_error: str = "report") -> Iterator[Any]:
        from detforge.inference import PredictionResult

        for item in items:
            yield PredictionResult(item.name, None, None, "unreadable", item.path)


def test_predict_out_is_checked_before_the_model_loads_and_replaced_as_a_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = write_tiny_coco(tmp_path / "data", n_train=2, n_val=0) / "images" / "train"
    foreign = tmp_path / "photos_out"
    foreign.mkdir()
    (foreign / "mine.jpg").write_bytes(b"")
    with pytest.raises(OutputFolderError, match="not written by detforge"):
        detforge.predict(tmp_path / "missing_model.pt", images, out=foreign)  # refused before the model is read
    monkeypatch.setattr("detforge.api._predictor.make_predictor", lambda *a, **k: _NoImagesPredictor())
    out = tmp_path / "preds"
    detforge.predict(tmp_path / "model.pt", images, out=out, format=["coco", "csv"])
    job = {MARKER, "manifest.json", "shards"}  # the resumable job's manifest and result shards (docs/batch.md)
    assert {p.name for p in out.iterdir()} == job | {"predictions.json", "predictions.csv"}
    detforge.predict(tmp_path / "model.pt", images, out=out, format="csv")
    assert {p.name for p in out.iterdir()} == job | {"predictions.csv"}, "the earlier coco file is stale"
    detforge.predict(tmp_path / "model.pt", images, out=foreign, format="csv", overwrite=True)
    assert not (foreign / "mine.jpg").exists()


def test_the_current_folder_its_parents_and_home_are_never_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for folder in (".", "..", work, Path.home()):
        with pytest.raises(OutputFolderError, match="never replaced"):
            check_output_folder(folder, "predict", overwrite=True)
    assert check_output_folder("sub", "predict") == work / "sub"
