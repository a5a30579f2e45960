"""`detforge train` turns reading on from the training transcriptions, calibrates the text threshold on the
validation boxes with a (fake) reader, and stores both in model.pt; without transcriptions reading stays off."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from detforge.api import train
from detforge.cli import main
from detforge.models.artifact import load_model
from detforge.reading import ReadSettings, TextRead
from tiny_fixtures import write_tiny_coco

pytestmark = pytest.mark.timeout(300)

TINY = [
    "model.name=fasterrcnn_mobilenet_v3_large_320_fpn",
    "model.weights=none",
    "model.min_size=64",
    "model.max_size=64",
    "train.device=cpu",
    "train.batch_size=2",
    "train.max_iter=2",
    "train.warmup_iters=1",
    "eval.period=2",
    "data.num_workers=0",
    "data.augment=none",
    "data.test=null",
]


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _text(ann_id: int) -> str:
    return f"{ann_id % 7 + 1}.{ann_id}"


def _with_texts(root: Path) -> dict[tuple[int, ...], tuple[int, str]]:
    """Give every class-"a" box of the tiny COCO dataset at `root` a transcription in the attribute "number"
    (`attributes.number`, as CVAT's COCO export writes a label attribute; not a name auto-detected, so it
    needs --text-attribute); class "b" boxes get none. Returns {val box (XYXY ints): (id, text)}."""
    val: dict[tuple[int, ...], tuple[int, str]] = {}
    for subset in ("train", "val"):
        path = root / "annotations" / f"instances_{subset}.json"
        coco = json.loads(path.read_text(encoding="utf-8"))
        for ann in coco["annotations"]:
            if ann["category_id"] == 1:
                ann["attributes"] = {"number": _text(ann["id"])}
                if subset == "val":
                    x, y, w, h = ann["bbox"]
                    key = (x, y, x + w, y + h)
                    assert key not in val, "test data: two val boxes at the same place"
                    val[key] = (ann["id"], _text(ann["id"]))
        path.write_text(json.dumps(coco), encoding="utf-8")
    return val


class FakeReader:
    """Reads labelled boxes from a table: box i (in annotation-id order) gets score 0.5 + 0.04 * i and its
    true text, except boxes 0 and 3, which are misread ("?"); counts its calls."""

    WRONG = (0, 3)

    def __init__(self, val: dict[tuple[int, ...], tuple[int, str]]) -> None:
        order = sorted(val.items(), key=lambda item: item[1][0])
        self.table = {
            box: TextRead("?" if i in self.WRONG else text, round(0.5 + 0.04 * i, 4))
            for i, (box, (_, text)) in enumerate(order)
        }
        self.calls: list[int] = []

    def read(self, image: np.ndarray, boxes: np.ndarray) -> Sequence[TextRead]:
        assert image.dtype == np.uint8 and image.shape == (64, 64, 3)
        self.calls.append(len(boxes))
        return [self.table[tuple(round(float(v)) for v in box)] for box in boxes]


@pytest.fixture(scope="module")
def texts_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FakeReader, str, str]:
    """One CLI `detforge train` on the tiny dataset with transcriptions (class a only, 10 val images), the
    recogniser replaced by FakeReader where the API builds it. Returns (run folder, reader, stdout, log)."""
    root = tmp_path_factory.mktemp("texts")
    data = write_tiny_coco(root / "data", n_train=6, n_val=10)
    reader = FakeReader(_with_texts(data))
    built: list[ReadSettings] = []

    def fake_build(settings: ReadSettings, **_: object) -> FakeReader:
        built.append(settings)
        return reader

    monkey = pytest.MonkeyPatch()
    monkey.setattr("detforge.reading.build_reader", fake_build)
    handler, logger = _ListHandler(), logging.getLogger("detforge")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            args = [str(data), *TINY, "--out", str(root / "run"), "--text-attribute", "number", "--no-progress"]
            assert main(["train", *args]) == 0
    finally:
        monkey.undo()
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert len(built) == 1 and built[0].allow == ").0123456789:" and built[0].classes == ("a",)
    return root / "run", reader, out.getvalue(), "\n".join(handler.lines)


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.getMessage()}")


def test_reading_settings_and_calibrated_threshold_are_stored(texts_run: tuple[Path, FakeReader, str, str]) -> None:
    run, reader, _, _ = texts_run
    _, spec = load_model(run / "model.pt")
    read = spec.read
    assert read is not None and read.enabled
    assert read.classes == ("a",)  # class b has no transcription
    # characters of the training transcriptions ('.' and some digits), completed to every digit, and the
    # delimiters the automatic pattern strips
    assert read.allow == ").0123456789:" and read.pattern is not None and "(?P<value>" in read.pattern
    assert read.recognizer == "ppocr" and read.padding == 0.05 and read.lexicon is None
    n = len(reader.table)
    assert n >= 6
    # boxes 4.. are all right, box 3 (score 0.62) is wrong: the lowest threshold with precision >= 0.98 is
    # box 4's score
    assert read.min_score == pytest.approx(0.66) and read.min_score_calibrated
    # one batched read per val image with text, every labelled val box read once
    assert sum(reader.calls) == n and len(reader.calls) <= 10
    saved = json.loads((run / "result.json").read_text(encoding="utf-8"))["read"]
    assert saved["settings"]["min_score"] == pytest.approx(0.66)
    assert saved["calibration"]["accuracy"] == pytest.approx((n - 2) / n)
    assert saved["calibration"]["precision"] == 1.0 and saved["calibration"]["reached_target"]
    assert saved["calibration"]["coverage"] == pytest.approx((n - 4) / n)
    assert saved["train_texts"] > 0
    config = (run / "config.yaml").read_text(encoding="utf-8")
    assert "enabled: true" in config and "flip: false" in config  # the resolved choices are saved
    assert "text_attribute: number" in config


def test_summary_and_log_say_what_was_chosen(texts_run: tuple[Path, FakeReader, str, str]) -> None:
    _, reader, out, log = texts_run
    n = len(reader.table)
    assert f"read accuracy on {n} validation boxes {(n - 2) / n:.3f} ({n - 2}/{n} exact)" in out
    assert "text threshold 0.660 (calibrated)" in out
    assert "reading: on for a (" in log and "allow-list ').0123456789:'" in log
    assert "read.enabled = True:" in log and "read.allow = ').0123456789:'" in log


def test_no_transcriptions_means_no_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_tiny_coco(tmp_path / "data", n_train=4, n_val=2)
    monkeypatch.setattr("detforge.reading.build_reader", _never)
    result = train(data, [*TINY, "train.max_iter=1"], out=tmp_path / "run", progress=False, calibrate=False)
    _, spec = load_model(result.model_path)
    assert spec.read is None and result.read is None
    assert json.loads((tmp_path / "run" / "result.json").read_text())["read"] is None


def test_forced_reading_without_transcriptions_warns_and_reads_every_class(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_tiny_coco(tmp_path / "data", n_train=4, n_val=2)
    monkeypatch.setattr("detforge.reading.build_reader", _never)
    reader = FakeReader({})
    with caplog.at_level(logging.INFO, logger="detforge"):
        result = train(
            data, [*TINY, "train.max_iter=1", "read.enabled=true"], out=tmp_path / "run", progress=False, reader=reader
        )
    _, spec = load_model(result.model_path)
    assert spec.read == ReadSettings(enabled=True)  # every class, any character, default threshold 0.5
    assert not spec.read.min_score_calibrated and reader.calls == []
    assert "no training box of a read class has a transcription" in caplog.text
    assert result.read is not None and "no validation box" in result.read.note


def _never(settings: ReadSettings, **_: object) -> None:
    raise AssertionError("the injected reader must be used (or none needed)")


def test_a_recogniser_that_cannot_run_leaves_the_threshold_uncalibrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from detforge.api.train import setup_reading
    from detforge.config import load_config
    from detforge.data.formats import load_dataset
    from detforge.errors import DetforgeError

    data = write_tiny_coco(tmp_path / "data", n_train=2, n_val=4)
    _with_texts(data)

    def broken(settings: ReadSettings, **_: object) -> None:
        raise DetforgeError("the PP-OCR model file is missing: pip install rapidocr")

    stored: list[tuple[Path, ReadSettings]] = []
    monkeypatch.setattr("detforge.reading.build_reader", broken)
    monkeypatch.setattr("detforge.engine.reading.store_read_settings", lambda path, s: stored.append((path, s)))
    config = load_config(None, [f"data.path={data}", "read.enabled=true", "read.classes=[a]"])
    settings = ReadSettings(classes=("a",))
    with caplog.at_level(logging.WARNING):
        outcome = setup_reading(tmp_path / "model.pt", config, settings, load_dataset(data, text_attribute="number"), 3)
    assert stored == [(tmp_path / "model.pt", settings)]  # still stored: the model reads once it is installed
    assert outcome.calibration is None and not outcome.settings.min_score_calibrated
    assert "text threshold not calibrated: the PP-OCR model file is missing" in caplog.text
