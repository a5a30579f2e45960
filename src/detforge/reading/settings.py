"""How boxes are read: which classes, the character allow-list, the pattern and lexicon of valid values,
the crop padding and the text-confidence threshold. One validated value stored in the model artifact
and the ONNX metadata (as `to_dict()` JSON), so `predict` and `serve` read without extra flags."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from detforge.errors import ConfigError

__all__ = ["RECOGNIZERS", "ReadSettings", "load_lexicon"]

RECOGNIZERS = ("ppocr", "tesseract")
"""Built-in recognisers: PP-OCRv6 small (the rapidocr wheel's ONNX file; default) and Tesseract (Debian)."""


@dataclass(frozen=True)
class ReadSettings:
    """Reading settings (all optional but `enabled`).

    classes: class names whose boxes are read; None = every class.
    allow: the characters a value may contain, applied to the recogniser's scores before decoding;
      None = the recogniser's whole character table.
    pattern: a regular expression a value must match in full (`re.fullmatch`); the best-scoring string
      that fits is chosen. None = any string. A group named `value` picks the part reported:
      `(?P<value>[0-9]+)[.)]?` (allow "0123456789.)") reads a box showing "12)" as "12".
    lexicon: the valid values (e.g. a problem book's task numbers); the best-scoring one is chosen.
    padding: context added on every side of a box before recognition, as a fraction of the box height.
    min_score: text confidence in [0, 1] below which a read counts as unsure.
    min_score_calibrated: whether `min_score` was calibrated on validation data (False: a default).
    recognizer: which built-in recogniser runs ("ppocr" or "tesseract").
    """

    enabled: bool = True
    classes: tuple[str, ...] | None = None
    allow: str | None = None
    pattern: str | None = None
    lexicon: tuple[str, ...] | None = None
    padding: float = 0.05
    min_score: float = 0.5
    min_score_calibrated: bool = False
    recognizer: str = "ppocr"

    def __post_init__(self) -> None:
        if self.classes is not None:
            object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
            if not self.classes:
                raise ConfigError("read.classes: expected at least one class name, or null for every class")
        if self.lexicon is not None:
            object.__setattr__(self, "lexicon", tuple(str(v) for v in self.lexicon))
            if not self.lexicon:
                raise ConfigError("read.lexicon: the lexicon holds no values; expected at least one valid value")
        if self.allow is not None and (not isinstance(self.allow, str) or not self.allow):
            raise ConfigError(f"read.allow: expected a non-empty string of characters, got {self.allow!r}")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except (re.error, TypeError) as exc:
                raise ConfigError(f"read.pattern: {self.pattern!r} is not a valid regular expression ({exc})") from None
        if isinstance(self.padding, bool) or not isinstance(self.padding, int | float) or not 0 <= self.padding <= 2:
            raise ConfigError(f"read.padding: expected a fraction of the box height in [0, 2], got {self.padding!r}")
        if isinstance(self.min_score, bool) or not isinstance(self.min_score, int | float):
            raise ConfigError(f"read.min_score: expected a number in [0, 1], got {self.min_score!r}")
        if not 0.0 <= float(self.min_score) <= 1.0:
            raise ConfigError(f"read.min_score: expected a number in [0, 1], got {self.min_score!r}")
        if self.recognizer not in RECOGNIZERS:
            raise ConfigError(f"read.recognizer: expected one of {', '.join(RECOGNIZERS)}, got {self.recognizer!r}")

    def reads(self, class_name: str) -> bool:
        """Whether boxes of `class_name` are read."""
        return self.enabled and (self.classes is None or class_name in self.classes)

    def override(self, **changes: Any) -> ReadSettings:
        """A copy with the given fields changed (None values leave a field as it is)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (lists for tuples) that `from_dict` reads back."""
        d = asdict(self)
        for key in ("classes", "lexicon"):
            if d[key] is not None:
                d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReadSettings:
        """Inverse of `to_dict`; ConfigError naming unknown keys and bad values."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"read settings: expected a mapping, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"read settings: unknown keys {unknown}; expected some of {sorted(names)}")
        values = dict(data)
        for key in ("classes", "lexicon"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        return cls(**values)


def load_lexicon(path: str | Path) -> tuple[str, ...]:
    """The valid values in a lexicon file: UTF-8 text, one value per line; blank lines and lines starting
    with '#' are skipped, surrounding whitespace is removed, duplicates are kept once (first order).
    ConfigError naming the file (and line) when it is missing, not UTF-8 text, or holds no value."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"read.lexicon: {p} is not a file; expected a text file with one valid value per line")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"read.lexicon: {p}:{line}: not UTF-8 text ({exc.reason}); expected one value per line"
        ) from None
    values: dict[str, None] = {}
    for number, line_text in enumerate(text.splitlines(), start=1):
        value = line_text.strip()
        if not value or value.startswith("#"):
            continue
        if "\x00" in value:
            raise ConfigError(f"read.lexicon: {p}:{number}: holds a NUL byte; expected one text value per line")
        values.setdefault(value, None)
    if not values:
        raise ConfigError(f"read.lexicon: {p} holds no values; expected one valid value per line")
    return tuple(values)
