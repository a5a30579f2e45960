"""Transcription statistics: which boxes carry text, per class; the characters used; value lengths.

A box's text is in one of three states (`text_state`): a value, blank (a non-empty string of only
whitespace: almost always a slip in the labelling tool) or none (`None` or the empty string, the
way tools store a text attribute nobody filled in). Characters and lengths are measured on the
values as every stage compares them, `normalize_text` (NFKC, whitespace removed).
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from detforge.data.dataset import Dataset
from detforge.structures.text import normalize_text

__all__ = ["CharCount", "ClassTextStats", "TextLengths", "TextState", "TextStats", "text_state", "text_stats"]

TextState = Literal["value", "blank", "none"]


def text_state(text: str | None) -> TextState:
    """The state of a box's text: "none" for None or "", "blank" for only whitespace, else "value"."""
    if not text:
        return "none"
    return "value" if normalize_text(text) else "blank"


@dataclass(frozen=True)
class ClassTextStats:
    """One category's boxes by text state: `with_text + blank + without_text` is its number of boxes."""

    name: str
    category_id: int
    with_text: int
    blank: int
    without_text: int

    @property
    def is_read(self) -> bool:
        """A read class: at least one of its boxes has a text value."""
        return self.with_text > 0


@dataclass(frozen=True)
class CharCount:
    """A character of the normalised values, how often it occurs and its Unicode name ("" if it has none)."""

    char: str
    count: int
    name: str


@dataclass(frozen=True)
class TextLengths:
    """Lengths (characters) of the normalised values; `histogram[n]` values have n characters
    (n = 0..max). min, median and max are None when there is no value."""

    min: int | None
    median: float | None
    max: int | None
    histogram: tuple[int, ...]


@dataclass(frozen=True)
class TextStats:
    """What `text_stats` measures. `classes` lists every category (dataset order, then unknown ids);
    `characters` is most frequent first (ties by code point); `num_distinct_values` counts distinct
    normalised values; `attribute` is the attribute the texts were read from (`Dataset.text_attribute`)."""

    num_with_text: int
    num_blank: int
    num_without_text: int
    num_distinct_values: int
    classes: tuple[ClassTextStats, ...]
    characters: tuple[CharCount, ...]
    lengths: TextLengths
    attribute: str | None = None

    @property
    def has_text(self) -> bool:
        """True when at least one box has a text value."""
        return self.num_with_text > 0

    @property
    def read_classes(self) -> tuple[str, ...]:
        """Names of the classes with at least one text value, in `classes` order."""
        return tuple(c.name for c in self.classes if c.is_read)

    @property
    def charset(self) -> str:
        """Every character of the values once, in code point order."""
        return "".join(sorted(c.char for c in self.characters))


def _lengths(values: Iterable[str]) -> TextLengths:
    sizes = np.asarray([len(v) for v in values], dtype=np.int64)
    if sizes.size == 0:
        return TextLengths(None, None, None, ())
    hist = np.bincount(sizes)
    return TextLengths(int(sizes.min()), float(np.median(sizes)), int(sizes.max()), tuple(int(h) for h in hist))


def text_stats(dataset: Dataset) -> TextStats:
    """Count the text states of every annotation of `dataset`, per class, and measure its values."""
    states: dict[int, Counter[TextState]] = {c.id: Counter() for c in dataset.categories}
    values: list[str] = []
    for ann in dataset.annotations:
        state = text_state(ann.text)
        states.setdefault(ann.category_id, Counter())[state] += 1
        if state == "value" and ann.text is not None:
            values.append(normalize_text(ann.text))
    names = {c.id: c.name for c in dataset.categories}
    classes = tuple(
        ClassTextStats(names.get(cid, f"(unknown id {cid})"), cid, n["value"], n["blank"], n["none"])
        for cid, n in states.items()
    )
    chars = Counter(ch for v in values for ch in v)
    ordered = sorted(chars.items(), key=lambda kv: (-kv[1], kv[0]))
    return TextStats(
        num_with_text=sum(c.with_text for c in classes),
        num_blank=sum(c.blank for c in classes),
        num_without_text=sum(c.without_text for c in classes),
        num_distinct_values=len(set(values)),
        classes=classes,
        characters=tuple(CharCount(ch, n, unicodedata.name(ch, "")) for ch, n in ordered),
        lengths=_lengths(values),
        attribute=dataset.text_attribute,
    )
