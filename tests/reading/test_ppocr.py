"""PP-OCRv6 small (the rapidocr wheel's model) reading rendered text on ONNX Runtime and OpenVINO."""

from __future__ import annotations

import importlib.metadata

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from detforge.errors import ConfigError, DetforgeError
from detforge.reading import Reader, ReadSettings, TextRead, build_reader, ppocr
from detforge.reading.ppocr import MIN_WIDTH, PPOCRReader, locate_model


def _model_or_skip() -> None:
    try:
        locate_model()
    except DetforgeError:
        pytest.skip("the rapidocr wheel (PP-OCR model file) is not installed")


def _runtime_or_skip(runtime: str) -> None:
    _model_or_skip()
    pytest.importorskip(runtime)


def render(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """A white page with `texts` printed side by side (PIL's default font, 36 px); their tight boxes XYXY."""
    font = ImageFont.load_default(size=36)
    image = Image.new("RGB", (180 * len(texts) + 40, 120), "white")
    draw = ImageDraw.Draw(image)
    boxes = []
    for i, text in enumerate(texts):
        origin = (40 + 180 * i, 30)
        draw.text(origin, text, fill=(20, 20, 90), font=font)
        boxes.append(draw.textbbox(origin, text, font=font))
    return np.asarray(image), np.array(boxes, dtype=np.float32)


@pytest.fixture(scope="module", params=["onnxruntime", "openvino"])
def runtime(request: pytest.FixtureRequest) -> str:
    _runtime_or_skip(request.param)
    return str(request.param)


def test_reads_rendered_numbers_and_gives_empty_reads_for_bad_boxes(runtime: str) -> None:
    reader = PPOCRReader(ReadSettings(), runtime=runtime)
    assert reader.runtime == runtime and isinstance(reader, Reader)
    image, boxes = render(["3.14", "7 25"])
    bad = np.array([[0, 0, 0, 0], [900, 10, 990, 40], [10, 10, np.nan, 40]], dtype=np.float32)
    reads = reader.read(image, np.concatenate([boxes, bad]))
    assert [r.text for r in reads] == ["3.14", "7 25", "", "", ""]  # the table's last class is the space
    assert reads[0].score > 0.8 and reads[1].score > 0.5  # the space is the weakest character of "7 25"
    assert reads[2:] == [TextRead("", 0.0)] * 3
    assert reader.read(image, np.zeros((0, 4), dtype=np.float32)) == []


def test_runtimes_agree(runtime: str) -> None:
    _runtime_or_skip("onnxruntime")
    image, boxes = render(["12.", "48)"])
    ort = PPOCRReader(ReadSettings(), runtime="onnxruntime").probabilities(image, boxes)
    other = PPOCRReader(ReadSettings(), runtime=runtime).probabilities(image, boxes)
    for a, b in zip(ort, other, strict=True):
        assert a is not None and b is not None and a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=1e-3)


def test_allow_list_pattern_and_lexicon_choose_the_value() -> None:
    _runtime_or_skip("onnxruntime")
    image, boxes = render(["12)", "3.14"])
    grouped = ReadSettings(allow="0123456789.)", pattern=r"(?P<value>[0-9]+(\.[0-9]+)?)[.)]?")
    assert [r.text for r in PPOCRReader(grouped, runtime="onnxruntime").read(image, boxes)] == ["12", "3.14"]
    lexicon = ReadSettings(lexicon=("12", "3.15", "3.14", "31.4"))
    reads = PPOCRReader(lexicon, runtime="onnxruntime").read(image, boxes)
    assert [r.text for r in reads] == ["12", "3.14"]
    assert reads[1].score > 0.8
    nothing_fits = ReadSettings(pattern="[a-z]+")
    assert PPOCRReader(nothing_fits, runtime="onnxruntime").read(image, boxes[1:]) == [TextRead("", 0.0)]


def test_batching_does_not_change_the_reads() -> None:
    _runtime_or_skip("onnxruntime")
    image, boxes = render(["5", "27.", "104)", "8"])
    one = PPOCRReader(ReadSettings(), runtime="onnxruntime", batch_size=1)
    many = PPOCRReader(ReadSettings(), runtime="onnxruntime", batch_size=8)
    a, b = one.read(image, boxes), many.read(image, boxes)
    assert [r.text for r in a] == [r.text for r in b] == ["5", "27.", "104)", "8"]
    np.testing.assert_allclose([r.score for r in a], [r.score for r in b], atol=1e-3)


def test_short_crops_are_padded_to_the_models_training_width() -> None:
    _runtime_or_skip("onnxruntime")
    image, boxes = render(["5", "27."])
    padded = PPOCRReader(ReadSettings(), runtime="onnxruntime")
    own = PPOCRReader(ReadSettings(), runtime="onnxruntime", min_width=0)
    assert padded.min_width == MIN_WIDTH == 320 and own.min_width == 0
    seen: list[int] = []
    run = padded._session.__call__
    padded._session = lambda batch: (seen.append(batch.shape[3]), run(batch))[1]  # type: ignore[assignment]
    probs = padded.probabilities(image, boxes)
    assert seen == [320]  # one batch, padded on the right to 320 px
    # each crop keeps only the frames of its own width (+-1 from the model's rounding of a batch's width)
    own_frames = [p.shape[0] for p in own.probabilities(image, boxes) if p is not None]
    assert [p.shape[0] for p in probs if p is not None] == pytest.approx(own_frames, abs=1)
    assert all(p is not None and p.shape[0] < 320 // 8 for p in probs)
    assert [r.text for r in padded.read(image, boxes)] == ["5", "27."]


def test_build_reader_gives_the_ppocr_reader() -> None:
    _runtime_or_skip("onnxruntime")
    reader = build_reader(ReadSettings(allow="0123456789"), runtime="onnxruntime")
    assert isinstance(reader, PPOCRReader)
    image, boxes = render(["3.14"])
    assert [r.text for r in reader.read(image, boxes)] == ["314"]


def test_bad_settings_and_inputs_are_refused() -> None:
    _runtime_or_skip("onnxruntime")
    with pytest.raises(ConfigError, match="cannot produce"):
        PPOCRReader(ReadSettings(allow="0123\x07"), runtime="onnxruntime")
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        ReadSettings(pattern="([0-9]")
    with pytest.raises(DetforgeError, match="runtime: expected one of"):
        PPOCRReader(ReadSettings(), runtime="tensorrt")
    reader = PPOCRReader(ReadSettings(), runtime="onnxruntime")
    with pytest.raises(DetforgeError, match="expected a uint8 RGB image"):
        reader.read(np.zeros((10, 10, 3), dtype=np.float32), np.array([[0, 0, 5, 5]], dtype=np.float32))


def test_missing_wheel_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> importlib.metadata.Distribution:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(ppocr.importlib.metadata, "distribution", missing)
    with pytest.raises(DetforgeError, match=r"pip install --no-deps rapidocr==3\.10\.0"):
        PPOCRReader(ReadSettings())
