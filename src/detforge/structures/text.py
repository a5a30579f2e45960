"""Transcription values: the one normalisation every stage compares texts by (no torch, no detforge imports)."""

from __future__ import annotations

import unicodedata

__all__ = ["edit_distance", "normalize_text"]


def normalize_text(text: str) -> str:
    """The value of a transcription as compared everywhere (evaluation, index, calibration): Unicode NFKC
    (full-width digits become ASCII), surrounding whitespace removed, inner runs of whitespace dropped
    (a handwritten "3. 14" and "3.14" are one value). Case and punctuation are kept: they can matter."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between `a` and `b`: the fewest single-character insertions, deletions and
    substitutions turning one into the other (Unicode code points; no normalisation here)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]
