"""Resumable sharded prediction on one machine: SIGKILL and resume without loss or duplicates, output files
byte-identical to an uninterrupted run and to the writers fed directly, bad images and missing paths in
the stream, an empty folder, and which output folders a job takes, resumes or refuses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import detforge
from batch_fixtures import write_photos
from detforge.batch.shards import SHARDS_DIR
from detforge.outdir import OutputFolderError

FORMATS = ["coco", "csv", "yolo", "cvat", "labelstudio"]
OUTPUTS = ["predictions.json", "predictions.csv", "annotations.xml", "tasks.json"]


def _files(folder: Path) -> dict[str, bytes]:
    """Every output file's bytes (shards and manifest excluded; CVAT's `dumped` time line blanked)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and not rel.startswith(SHARDS_DIR) and rel != "manifest.json":
            data = path.read_bytes()
            if rel == "annotations.xml":
                data = b"\n".join(line for line in data.split(b"\n") if b"<dumped>" not in line)
            found[rel] = data
    return found


def _start(model: Path, photos: Path, out: Path) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "detforge", "predict", str(model), str(photos), "--out", str(out)]
    args += ["--format", *FORMATS, "--shard-size", "2", "--no-progress", "--device", "cpu"]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _kill_after(process: subprocess.Popen[bytes], out: Path, shards: int) -> int:
    """SIGKILL `process` as soon as `shards` shard files exist; returns how many existed at the kill."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        done = len(list((out / SHARDS_DIR).glob("*.jsonl"))) if (out / SHARDS_DIR).is_dir() else 0
        if done >= shards:
            process.send_signal(signal.SIGKILL)
            process.wait()
            return done
        time.sleep(0.005)
    raise AssertionError(f"the run ended (status {process.poll()}) before {shards} shards were written")


def test_sigkill_then_resume_gives_the_uninterrupted_outputs(tmp_path: Path, model_file: Path) -> None:
    photos = write_photos(tmp_path / "photos", 30)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    reference = tmp_path / "reference"
    expected = detforge.predict(model_file, photos, out=reference, format=FORMATS, shard_size=2, device="cpu")
    out = tmp_path / "out"
    first = _kill_after(_start(model_file, photos, out), out, 1)
    second = _kill_after(_start(model_file, photos, out), out, 6)
    assert 1 <= first < second < 16, "each run was killed with work left, the second resumed the first's shards"
    final = _start(model_file, photos, out)
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()
    assert b"broken.jpg" in err, "the bad image is reported by name"
    assert _files(out) == _files(reference)  # byte-identical, every format, YOLO label files included
    results = detforge.predict(model_file, photos, out=out, format=FORMATS, shard_size=2, device="cpu")
    assert [r.source for r in results] == [r.source for r in expected] and len(results) == 31  # no loss, no dup
    assert sum(not r.ok for r in results) == 1


def test_shards_keep_every_detection_and_text(
    tmp_path: Path, model_file: Path, photo_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from detforge.inference import Predictor, write_coco_results, write_predictions
    from detforge.reading import ReadSettings
    from read_fakes import FakeReader

    reading = ReadSettings(classes=("dog",))
    predictor = Predictor(model_file, device="cpu", reader=FakeReader(["12.3", "", "7"]), read_settings=reading)
    direct = list(predictor.predict_many(str(photo_folder)))
    assert any(t for r in direct if r.detections is not None for t in r.detections.texts or ()), "nothing read"
    monkeypatch.setattr("detforge.api._predictor.make_predictor", lambda *a, **k: predictor)
    detforge.predict(model_file, photo_folder, out=tmp_path / "out", format=FORMATS, shard_size=3)
    plain = tmp_path / "plain"
    write_coco_results(direct, plain / "predictions.json", category_ids=(3, 7))
    for fmt, name in (("csv", "predictions.csv"), ("labelstudio", "tasks.json"), ("yolo", "labels")):
        write_predictions(direct, plain / name, fmt, ("cat", "dog"))  # type: ignore[arg-type]
    got = _files(tmp_path / "out")
    assert {k: v for k, v in got.items() if not k.startswith(("annotations", ".detforge"))} == _files(plain)


def test_bad_images_missing_paths_and_an_empty_folder(tmp_path: Path, model_file: Path, photo_folder: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"")
    listing = tmp_path / "list.txt"
    listing.write_text(
        f"# photos to predict\n{photo_folder / 'p000.png'}\nmissing.png\nbad.png\n\n{photo_folder / 'p001.png'}\n"
    )
    results = detforge.predict(model_file, listing, out=tmp_path / "out", format="csv", device="cpu")
    assert [r.source for r in results][1:3] == ["missing.png", "bad.png"]
    assert [r.ok for r in results] == [True, False, False, True]
    assert "missing.png" in (results[1].error or "") and "bad.png" in (results[2].error or "")
    rows = (tmp_path / "out" / "predictions.csv").read_text().splitlines()[1:]
    assert {row.split(",")[0] for row in rows} <= {str(photo_folder / "p000.png"), str(photo_folder / "p001.png")}
    assert rows, "the readable photos were predicted"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert detforge.predict(model_file, empty, out=tmp_path / "none", format="coco", device="cpu") == []
    assert json.loads((tmp_path / "none" / "predictions.json").read_text()) == []


def test_a_finished_job_is_skipped_without_loading_the_model(
    tmp_path: Path, model_file: Path, photo_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    first = detforge.predict(model_file, photo_folder, out=out, format="coco", shard_size=4, device="cpu")
    opened: list[object] = []
    monkeypatch.setattr("detforge.api._predictor.make_predictor", lambda *a, **k: opened.append(a))
    again = detforge.predict(model_file, photo_folder, out=out, format=["coco", "csv"], shard_size=7, device="cpu")
    assert opened == [], "nothing left to do: the model is not loaded"
    assert [r.source for r in again] == [r.source for r in first]
    assert json.loads((out / "manifest.json").read_text())["shard_size"] == 4, "the folder's own shard size wins"
    assert (out / "predictions.csv").is_file()


def test_another_job_in_the_folder_is_refused_unless_overwrite(
    tmp_path: Path, model_file: Path, photo_folder: Path
) -> None:
    out = tmp_path / "out"
    detforge.predict(model_file, photo_folder, out=out, format="coco", device="cpu")
    with pytest.raises(OutputFolderError, match=r"another `detforge predict` job.*--overwrite"):
        detforge.predict(model_file, photo_folder, out=out, score_threshold=0.5, device="cpu")
    results = detforge.predict(model_file, photo_folder, out=out, score_threshold=0.5, overwrite=True, device="cpu")
    assert all(float(s) >= 0.5 for r in results if r.detections is not None for s in r.detections.scores)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    with pytest.raises(OutputFolderError, match="not written by detforge"):
        detforge.predict(model_file, photo_folder, out=foreign, device="cpu")
    assert (foreign / "notes.txt").read_text() == "keep"


def test_a_partial_shard_write_is_redone(tmp_path: Path, model_file: Path, photo_folder: Path) -> None:
    out = tmp_path / "out"
    detforge.predict(model_file, photo_folder, out=out, format="csv", shard_size=5, device="cpu")
    reference = (out / "predictions.csv").read_bytes()
    shard = out / SHARDS_DIR / "000002.jsonl"
    (out / SHARDS_DIR / ".000002.jsonl.abcd1234.tmp").write_bytes(shard.read_bytes()[:100])  # a kill mid-write
    shard.unlink()
    detforge.predict(model_file, photo_folder, out=out, format="csv", shard_size=5, device="cpu")
    assert (out / "predictions.csv").read_bytes() == reference
    assert sorted(p.name for p in (out / SHARDS_DIR).iterdir()) == [f"{i:06d}.jsonl" for i in range(3)]
    assert os.path.getsize(shard) > 100


def test_the_ray_engine_without_ray_names_the_extra(
    tmp_path: Path, model_file: Path, photo_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from detforge.errors import ConfigError

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(ConfigError, match=r"pip install 'detforge\[ray\]'"):
        detforge.predict(model_file, photo_folder, out=tmp_path / "out", engine="ray", device="cpu")
