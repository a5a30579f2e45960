"""Transcription values: the one normalisation every stage compares texts by (no torch, no detforge imports)."""

from __future__ import annotations

import unicodedata

__all__ = ["normalize_text"]


def normalize_text(text: str) -> str:
    """The value of a transcription as compared everywhere (evaluation, index, calibration): Unicode NFKC
    (full-width digits become ASCII), surrounding whitespace removed, inner runs of whitespace dropped
    (a handwritten "3. 14" and "3.14" are one value). Case and punctuation are kept: they can matter."""
    return "".join(unicodedata.normalize("NFKC", text).split())
