"""The automatic choices of the `read` section: reading on when the training boxes have transcriptions, the
classes that have them, the pattern of their values and the allow-list of their characters.

The automatic pattern reads a value written with a delimiter around it ("12.", "12)", "Task 3:") as the value
alone: `[delims]*(?P<value>[chars]{lo,hi}?)[delims]*`, where `chars` are the training values' characters (all
ten digits when any digit occurs), lo..hi their lengths (one more allowed at the top), and the delimiters '.',
')' and ':' on a side where no training value has them (so "3.14" keeps its inner '.', and a value ending in
')' keeps it). The lazy value group with greedy delimiters strips only leading and trailing ones. The
delimiters join the automatic allow-list, so a written '.' is read as '.' instead of as a look-alike digit
(which reads the sample's task numbers markedly better than digits alone: benchmarks/README.md).
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from typing import TYPE_CHECKING

from detforge.data.dataset import Dataset
from detforge.errors import ConfigError
from detforge.structures.text import normalize_text

if TYPE_CHECKING:
    from detforge.config.auto import _Chooser

__all__ = ["DELIMITERS", "allow_list", "auto_pattern", "choose_read", "transcriptions_by_class"]

DELIMITERS = ".):"
"""Characters commonly written right before or after a value ("12.", "12)", "3:"), stripped by the automatic
pattern."""


def transcriptions_by_class(dataset: Dataset) -> dict[str, list[str]]:
    """The normalised transcriptions (`normalize_text`, empty ones left out) of every class that has at least
    one, by class name, in the dataset's category order."""
    names = {c.id: c.name for c in dataset.categories}
    out: dict[str, list[str]] = {}
    for ann in dataset.annotations:
        value = normalize_text(ann.text) if ann.text is not None else ""
        if value and ann.category_id in names:
            out.setdefault(names[ann.category_id], []).append(value)
    return {name: out[name] for name in dataset.categories.names if name in out}


def allow_list(values: Iterable[str]) -> tuple[str, bool]:
    """The sorted characters of `values`, and whether every digit was added: when any digit occurs, all ten are
    allowed, so that a digit missing from a small training set can still be read."""
    chars = set("".join(values))
    completed = bool(chars & set(string.digits)) and not set(string.digits) <= chars
    if completed:
        chars |= set(string.digits)
    return "".join(sorted(chars)), completed


def auto_pattern(values: Iterable[str], delimiters: str = DELIMITERS) -> tuple[str, str] | None:
    """The automatic pattern for the (normalised, non-empty) training `values`, and the delimiters it strips:
    `[lead]*(?P<value>[chars]{lo,hi}?)[trail]*`, `chars` the values' characters (all ten digits when any
    occurs), lo the shortest length and hi the longest plus one, `lead` the `delimiters` no value starts with
    and `trail` those no value ends with (a side without any is left out). The value group is lazy and the
    delimiters greedy, so only leading and trailing delimiters are stripped ("3.14." -> "3.14"). None when
    there is no value."""
    vals = [v for v in values if v]
    if not vals:
        return None
    chars, _ = allow_list(vals)
    lo, hi = min(len(v) for v in vals), max(len(v) for v in vals) + 1
    lead = "".join(d for d in delimiters if not any(v.startswith(d) for v in vals))
    trail = "".join(d for d in delimiters if not any(v.endswith(d) for v in vals))
    body = f"(?P<value>{_char_class(chars)}{{{lo},{hi}}}?)"
    pattern = (f"{_char_class(lead)}*" if lead else "") + body + (f"{_char_class(trail)}*" if trail else "")
    return pattern, "".join(sorted(set(lead + trail)))


def _char_class(chars: str) -> str:
    """A regex character class matching exactly `chars` (each escaped; all ten digits written 0-9)."""
    rest = chars
    digits = set(string.digits) <= set(chars)
    if digits:
        rest = "".join(ch for ch in chars if ch not in string.digits)
    return "[" + ("0-9" if digits else "") + "".join(re.escape(ch) for ch in rest) + "]"


def _shown(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def choose_read(c: _Chooser, train: Dataset, dataset: Dataset) -> None:
    """Resolve `read.enabled: auto`, `read.classes: null`, `read.pattern: auto` and `read.allow: auto` from the
    transcriptions of the training subset `train` (of `dataset`), and turn `data.flip` off when reading, each
    with its reason. A pattern or allow-list the user gave is kept; the automatic allow-list takes the
    automatic pattern's delimiters only when the pattern is automatic too. ConfigError when `read.classes`
    names a class the dataset does not have."""
    known = dataset.categories.names
    classes = c.get("read", "classes")
    if classes is not None:
        unknown = [name for name in classes if name not in known]
        if unknown:
            raise ConfigError(f"read.classes: unknown class names {unknown}; the dataset's classes are {list(known)}")
    texts = transcriptions_by_class(train)
    total = sum(len(v) for v in texts.values())
    if c.get("read", "enabled") == "auto":
        if total:
            why = f"{total} training boxes have transcriptions"
        else:
            why = "no training box has a transcription (set read.enabled=true to read anyway)"
        c.resolve("read", "enabled", total > 0, why)
    if c.get("read", "enabled") is not True:
        return
    if classes is None and total:
        counts = ", ".join(f"{name} ({len(v)})" for name, v in texts.items())
        c.resolve("read", "classes", tuple(texts), f"the classes with transcriptions: {counts}")
    read = c.get("read", "classes")
    values = [v for name, group in texts.items() if read is None or name in read for v in group]
    delimiters = ""
    if c.get("read", "pattern") == "auto":
        auto = auto_pattern(values)
        if c.get("read", "lexicon") is not None:
            c.resolve("read", "pattern", None, "a lexicon gives the valid values")
        elif auto is None:
            c.resolve("read", "pattern", None, "no transcription to take values from: any value")
        else:
            pattern, delimiters = auto
            lengths = sorted({len(v) for v in values})
            c.resolve(
                "read",
                "pattern",
                pattern,
                f"the characters and lengths ({lengths[0]}..{lengths[-1]}, +1) of {len(values)} training "
                f"transcriptions; the value without a leading or trailing {' '.join(delimiters) or 'delimiter'}",
            )
    if c.get("read", "allow") == "auto":
        if values:
            allow, completed = allow_list(values)
            digits = ", and every digit" if completed else ""
            extra = "".join(d for d in delimiters if d not in allow)
            allow = "".join(sorted(allow + extra))
            also = f", and the delimiters {extra!r} the pattern strips" if extra else ""
            c.resolve("read", "allow", allow, f"the characters of {len(values)} training transcriptions{digits}{also}")
        else:
            c.resolve("read", "allow", None, "no transcription to take characters from: any character")
    c.choose("data", "flip", False, "reading text: a mirrored character is another character or none")
