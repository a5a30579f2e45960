"""Reading after detection: which boxes are read, one reader call per image, settings from the model and the
user's overrides, the Predictor, make_predictor (artifact spec and ONNX metadata) and `detforge predict`."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from detforge.errors import ConfigError
from detforge.inference.predictor import Predictor
from detforge.inference.read import ReadFailed, read_detections, resolve_read_settings
from detforge.reading import Reader, ReadSettings
from detforge.structures.detections import Detections
from read_fakes import FakeReader, constant_onnx

NAMES = ("number", "figure", "text")
OBJECTS = [(5, 5, 25, 25, 230, 0), (40, 10, 60, 30, 200, 1), (5, 30, 20, 38, 150, 0)]  # scores .90 .78 .59


def _dets() -> Detections:
    return Detections(
        torch.tensor([[0, 0, 10, 10], [10, 0, 20, 10], [0, 10, 10, 20]], dtype=torch.float32),
        torch.tensor([0, 1, 0]),
        torch.tensor([0.9, 0.8, 0.4]),
        (20, 30),
    )


def _png(arr: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(arr).save(buffer, format="PNG")
    return buffer.getvalue()


def test_reads_only_boxes_of_read_classes_in_one_call() -> None:
    reader = FakeReader()
    assert isinstance(reader, Reader)
    image = torch.zeros((3, 20, 30), dtype=torch.uint8)
    out = read_detections(reader, image, _dets(), ReadSettings(classes=("number",)), NAMES)
    assert len(reader.calls) == 1
    shape, boxes = reader.calls[0]
    assert shape == (20, 30, 3)
    assert boxes.tolist() == [[0, 0, 10, 10], [0, 10, 10, 20]]  # the two "number" boxes, in detection order
    assert out.texts == ("12", None, "13")
    assert out.text_scores is not None
    scores = out.text_scores.tolist()
    assert scores[0] == pytest.approx(0.9) and math.isnan(scores[1]) and scores[2] == pytest.approx(0.9)
    assert out.boxes.tolist() == _dets().boxes.tolist() and out.scores.tolist() == _dets().scores.tolist()


def test_every_class_min_box_score_array_image_and_no_box_to_read() -> None:
    reader = FakeReader(["7"])
    hwc = np.zeros((20, 30, 3), dtype=np.uint8)
    out = read_detections(reader, hwc, _dets(), ReadSettings(), NAMES, min_box_score=0.5)
    assert out.texts == ("7", "7", None)  # the 0.4 box is below the floor
    assert reader.calls[0][1].shape == (2, 4)
    none = read_detections(reader, hwc, _dets(), ReadSettings(classes=("text",)), NAMES)
    assert none.texts == (None, None, None) and len(reader.calls) == 1  # nothing to read: no call
    off = read_detections(reader, hwc, _dets(), ReadSettings(enabled=False), NAMES)
    assert not off.has_text
    empty = read_detections(reader, hwc, Detections.empty((20, 30)), ReadSettings(), NAMES)
    assert empty.texts == () and len(reader.calls) == 1


def test_a_reader_breaking_its_contract_is_a_clear_error() -> None:
    image = torch.zeros((3, 20, 30), dtype=torch.uint8)
    with pytest.raises(ReadFailed, match="returned 1 results for 3 boxes"):
        read_detections(FakeReader(count=1), image, _dets(), ReadSettings(), NAMES)
    with pytest.raises(ValueError, match=r"uint8 \[3, H, W\]"):
        read_detections(FakeReader(), image.float(), _dets(), ReadSettings(), NAMES)


def test_settings_resolution_from_the_model_and_overrides() -> None:
    stored = ReadSettings(classes=("number",), pattern=r"\d+", allow="0123456789")
    assert resolve_read_settings(None) is None
    assert resolve_read_settings(ReadSettings(enabled=False)) is None
    assert resolve_read_settings(stored) == stored
    assert resolve_read_settings(stored, read=False) is None
    assert resolve_read_settings(None, read=True) == ReadSettings()
    forced = resolve_read_settings(None, read=True, read_classes=["number"], class_names=NAMES)
    assert forced is not None and forced.classes == ("number",)
    changed = resolve_read_settings(stored, read_pattern=r"\d+\.\d+", read_allow="0123456789.")
    assert changed is not None
    assert (changed.pattern, changed.allow, changed.classes) == (r"\d+\.\d+", "0123456789.", ("number",))
    implied = resolve_read_settings(None, read_classes=["figure"])  # an override alone turns reading on
    assert implied is not None and implied.enabled and implied.classes == ("figure",)
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        resolve_read_settings(stored, read_pattern="(")
    with pytest.raises(ConfigError, match=r"\['page'\] are not classes of the model"):
        resolve_read_settings(stored, read_classes=["page"], class_names=NAMES)
    with pytest.raises(ConfigError, match="cannot apply"):
        resolve_read_settings(stored, read=False, read_pattern=r"\d+")


def test_predictor_reads_after_thresholding_and_keeps_boxes_when_reading_fails(tmp_path: Path, fake, painter) -> None:  # type: ignore[no-untyped-def]
    arr = painter(64, 40, OBJECTS)
    (tmp_path / "a.png").write_bytes(_png(arr))
    (tmp_path / "b.png").write_bytes(_png(arr))
    reader = FakeReader(["3.14"])
    predictor = Predictor(
        fake, device="cpu", class_names=NAMES, score_threshold=0.7, reader=reader,
        read_settings=ReadSettings(classes=("number",)),
    )  # fmt: skip
    results = list(predictor.predict_many(tmp_path))
    assert [r.source for r in results] == ["a.png", "b.png"]
    for r in results:
        assert r.detections is not None
        assert r.detections.labels.tolist() == [0, 1]  # the 0.59 box is below the threshold
        assert r.detections.texts == ("3.14", None)
        assert r.text(0) == ("3.14", pytest.approx(0.9)) and r.text(1) is None
    assert len(reader.calls) == 2 and all(len(boxes) == 1 for _, boxes in reader.calls)  # one call per image

    plain = Predictor(fake, device="cpu", class_names=NAMES)(arr)
    assert not plain.has_text  # no reader: nothing read
    broken = Predictor(fake, device="cpu", class_names=NAMES, reader=FakeReader(fail=True))(arr)
    assert len(broken) == 3 and broken.texts == (None, None, None)  # the boxes survive a failing recogniser
    predictor.use_reader(None)
    assert not predictor(arr).has_text and predictor.read_settings == ReadSettings(classes=("number",))


def test_onnx_metadata_read_settings_read_without_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from detforge.api._predictor import make_predictor
    from detforge.inference import read as read_module

    path = constant_onnx(tmp_path / "reads.onnx", ReadSettings(classes=("number",), pattern=r"\d+\.\d+"))
    built: list[tuple[ReadSettings, str]] = []

    def fake_build(settings: ReadSettings, *, runtime: str = "auto", threads: int | None = None) -> FakeReader:
        built.append((settings, runtime))
        return FakeReader(["3.14"])

    monkeypatch.setattr(read_module, "build_reader", fake_build)
    image = np.full((40, 64, 3), 128, dtype=np.uint8)
    predictor = make_predictor(path, runtime="onnxruntime", device="cpu")
    assert built == [(ReadSettings(classes=("number",), pattern=r"\d+\.\d+"), "onnxruntime")]
    dets = predictor(image)
    assert dets.labels.tolist() == [0, 1] and dets.texts == ("3.14", None)

    assert not make_predictor(path, runtime="onnxruntime", read=False)(image).has_text
    override = make_predictor(path, runtime="onnxruntime", read_classes=["figure"], read_allow="0123456789")
    assert override(image).texts == (None, "3.14")
    assert built[-1][0].allow == "0123456789" and built[-1][0].pattern == r"\d+\.\d+"

    plain = constant_onnx(tmp_path / "plain.onnx", None)  # exported without read settings
    assert not make_predictor(plain, runtime="onnxruntime")(image).has_text
    both = make_predictor(plain, runtime="onnxruntime", read=True, reader=FakeReader(["9"]))(image)
    assert both.texts == ("9", "9")


def test_predict_verb_and_cli_write_the_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from detforge.cli import main
    from detforge.inference import read as read_module

    model = constant_onnx(tmp_path / "plain.onnx", None)
    images = tmp_path / "photos"
    images.mkdir()
    Image.new("RGB", (64, 40), (200, 200, 200)).save(images / "page.png")
    monkeypatch.setattr(read_module, "build_reader", lambda settings, **_: FakeReader(["3.15"]))
    code = main([
        "predict", str(model), str(images), "--runtime", "onnxruntime", "--read", "--read-classes", "number",
        "--out", str(tmp_path / "out"), "--format", "coco", "csv",
    ])  # fmt: skip
    assert code == 0
    assert "1 images, 2 detections, 1 read" in capsys.readouterr().out
    rows = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert [(r["category_id"], r.get("text")) for r in rows] == [(1, "3.15"), (2, None)]
    assert "text_score" not in rows[1] and rows[0]["text_score"] == pytest.approx(0.9)
    csv_text = (tmp_path / "out" / "predictions.csv").read_text().splitlines()
    assert csv_text[0].endswith(",text,text_score") and csv_text[1].endswith(",3.15,0.9000")
    assert csv_text[2].endswith(",,")
    main(["predict", str(model), str(images), "--runtime", "onnxruntime", "--read"])
    assert "read '3.15'" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["predict", str(model), str(images), "--read", "--no-read"])
