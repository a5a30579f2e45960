"""An alternative recogniser: the `tesseract` command (Debian package `tesseract-ocr`) run on each crop.

Not the default: Tesseract is built for printed text and its maintainers say it does not handle handwriting;
on the bundled sample of handwritten task numbers it reads far fewer values than PP-OCR (see docs/reading.md).
It runs one process per crop (`--psm 7`, one text line), with the allow-list as `tessedit_char_whitelist`.
Tesseract gives no per-character scores, so a pattern and a lexicon apply to its one answer: a value that
does not fit the pattern becomes "" (score 0), and a value outside the lexicon becomes the nearest entry by
edit distance with its score scaled by how much had to change.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from collections.abc import Sequence

import numpy as np
from PIL import Image

from detforge.errors import DetforgeError
from detforge.reading.base import TextRead
from detforge.reading.crops import crop_regions
from detforge.reading.settings import ReadSettings
from detforge.structures.text import edit_distance

__all__ = ["TesseractReader", "edit_distance"]

INSTALL_HINT = "apt-get install tesseract-ocr"
TIMEOUT_S = 30.0
"""Seconds one crop may take before tesseract is stopped (the box then reads as "")."""


class TesseractReader:
    """Reads the text of boxes with the `tesseract` binary (implements `Reader`). `settings` give the padding,
    allow-list, pattern and lexicon; `binary` the command (default: `tesseract` on PATH); `lang` its language.
    DetforgeError with the install command when the binary is missing."""

    def __init__(self, settings: ReadSettings, *, binary: str = "tesseract", lang: str = "eng") -> None:
        found = shutil.which(binary)
        if found is None:
            raise DetforgeError(
                f"reading with Tesseract needs the `{binary}` command; install it with `{INSTALL_HINT}`"
            )
        self.binary = found
        self.settings = settings
        self.lang = lang
        self._regex = re.compile(settings.pattern) if settings.pattern is not None else None

    def _command(self) -> list[str]:
        cmd = [self.binary, "stdin", "stdout", "-l", self.lang, "--psm", "7"]
        if self.settings.allow is not None:
            cmd += ["-c", f"tessedit_char_whitelist={self.settings.allow}"]
        return [*cmd, "tsv"]

    def read_crop(self, crop: np.ndarray) -> TextRead:
        """The text of one uint8 RGB crop [h, w, 3] and Tesseract's word confidence (the lowest of its words,
        0-100 scaled to [0, 1]), before pattern and lexicon."""
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(crop)).save(buffer, format="PNG")
        try:
            done = subprocess.run(
                self._command(), input=buffer.getvalue(), capture_output=True, timeout=TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            return TextRead("", 0.0)
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise DetforgeError(
                f"tesseract failed (exit {done.returncode}): {message[-1] if message else 'no message'}"
            )
        words: list[str] = []
        confidences: list[float] = []
        for line in done.stdout.decode("utf-8", "replace").splitlines()[1:]:
            cols = line.split("\t")
            if len(cols) >= 12 and cols[0] == "5" and cols[11].strip():
                words.append(cols[11].strip())
                confidences.append(max(0.0, min(100.0, float(cols[10]))) / 100.0)
        if not words:
            return TextRead("", 0.0)
        return TextRead(" ".join(words), min(confidences))

    def _constrain(self, read: TextRead) -> TextRead:
        """`read` with the pattern and lexicon of the settings applied."""
        lexicon = self.settings.lexicon
        if lexicon is not None:
            if read.text in lexicon:
                return read
            best = min(lexicon, key=lambda value: edit_distance(read.text, value))
            change = edit_distance(read.text, best) / max(len(best), len(read.text), 1)
            return TextRead(best, read.score * max(0.0, 1.0 - change))
        if self._regex is not None:
            match = self._regex.fullmatch(read.text)
            if match is None:
                return TextRead("", 0.0)
            if "value" in self._regex.groupindex:
                return TextRead(match.group("value") or "", read.score)
        return read

    def read(self, image: np.ndarray, boxes: np.ndarray) -> Sequence[TextRead]:
        """One TextRead per box of `boxes` [N, 4] (XYXY pixels of the uint8 RGB `image` [H, W, 3]), in box
        order; TextRead("", 0.0) for a box that is empty or outside the image."""
        crops = crop_regions(np.asarray(image), boxes, self.settings.padding)
        return [TextRead("", 0.0) if c is None else self._constrain(self.read_crop(c)) for c in crops]

    def __repr__(self) -> str:
        return f"TesseractReader(binary={self.binary!r}, lang={self.lang!r})"
