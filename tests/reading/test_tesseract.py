"""The Tesseract recogniser (skipped where the `tesseract` binary is absent) and its post-hoc constraints."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from detforge.errors import DetforgeError
from detforge.reading import ReadSettings, TextRead, build_reader
from detforge.reading.tesseract import TesseractReader, edit_distance

needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed")


def printed(text: str) -> tuple[np.ndarray, np.ndarray]:
    font = ImageFont.load_default(size=40)
    image = Image.new("RGB", (300, 110), "white")
    draw = ImageDraw.Draw(image)
    draw.text((40, 30), text, fill="black", font=font)
    return np.asarray(image), np.array([draw.textbbox((40, 30), text, font=font)], dtype=np.float32)


def test_missing_binary_names_the_package() -> None:
    with pytest.raises(DetforgeError, match="apt-get install tesseract-ocr"):
        TesseractReader(ReadSettings(), binary="detforge-no-such-tesseract")


def test_edit_distance() -> None:
    assert edit_distance("", "") == 0
    assert edit_distance("12", "12") == 0
    assert edit_distance("3.14", "314") == 1
    assert edit_distance("kitten", "sitting") == 3


def test_pattern_and_lexicon_constrain_the_answer() -> None:
    reader = TesseractReader(ReadSettings(lexicon=("12", "13", "3.14")), binary="true")  # never run here
    assert reader._constrain(TextRead("12", 0.9)) == TextRead("12", 0.9)
    near = reader._constrain(TextRead("3,14", 0.8))
    assert near.text == "3.14" and near.score == pytest.approx(0.8 * 0.75)
    pattern = TesseractReader(ReadSettings(pattern=r"(?P<value>[0-9]+)[.)]?"), binary="true")
    assert pattern._constrain(TextRead("12)", 0.9)) == TextRead("12", 0.9)
    assert pattern._constrain(TextRead("a2", 0.9)) == TextRead("", 0.0)


@needs_tesseract
def test_reads_printed_digits_with_the_allow_list() -> None:
    image, boxes = printed("3.14")
    reader = build_reader(ReadSettings(recognizer="tesseract", allow="0123456789."))
    assert isinstance(reader, TesseractReader)
    reads = reader.read(image, np.concatenate([boxes, np.array([[0, 0, 0, 0]], dtype=np.float32)]))
    assert reads[0].text == "3.14"
    assert 0.5 < reads[0].score <= 1.0
    assert reads[1] == TextRead("", 0.0)
