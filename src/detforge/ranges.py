"""The accepted ranges of the verbs' numeric parameters, one rule each, for the CLI and the Python API alike.

A `Range` says what a parameter accepts ("an integer >= 1", "a number in [0, 1)"). The CLI turns each
into an argparse type (`detforge.cli._checks`); the API verbs call `check_numbers` at their top, so
`detforge.show(ds, n=0)` gets the same one-line ConfigError as `detforge data show --n 0`, naming the
parameter and the range, instead of a traceback deep inside. Importing this module imports no torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from numbers import Integral, Real

from detforge.errors import ConfigError

__all__ = [
    "FRACTION",
    "NON_NEGATIVE_FLOAT",
    "NON_NEGATIVE_INT",
    "OVERLAP",
    "PORT",
    "POSITIVE_FLOAT",
    "POSITIVE_INT",
    "PRECISION",
    "Range",
    "check_each",
    "check_numbers",
    "int_range",
]


@dataclass(frozen=True)
class Range:
    """Numbers from `low` to `high` (None: no upper bound), each end open or closed; `integer` allows only
    integers (bools are never numbers here). Real numbers must be finite (NaN and infinities are refused)."""

    low: float
    high: float | None = None
    integer: bool = False
    low_open: bool = False
    high_open: bool = False

    def __str__(self) -> str:
        if self.integer:
            if self.high is None:
                return f"an integer >= {self.low:g}"
            return f"an integer from {self.low:g} to {self.high:g}"
        if self.high is None:
            return f"a finite number {'>' if self.low_open else '>='} {self.low:g}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"a number in {left}{self.low:g}, {self.high:g}{right}"

    def contains(self, value: float) -> bool:
        """Whether the number `value` lies in the range (finite, and integral for an integer range)."""
        if not math.isfinite(value) or (self.integer and not float(value).is_integer()):
            return False
        below = value <= self.low if self.low_open else value < self.low
        above = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        return not (below or above)

    def parse(self, text: str) -> float | int:
        """The number written in `text` when it lies in the range; ValueError `expected ..., got ...` otherwise."""
        try:
            value: float | int = int(text) if self.integer else float(text)
        except ValueError:
            raise ValueError(f"expected {self}, got {text!r}") from None
        if not self.contains(value):
            raise ValueError(f"expected {self}, got {text if not self.integer else value}")
        return value

    def check(self, name: str, value: object) -> None:
        """ConfigError `name: expected ..., got ...` unless `value` is a number (an integer for an integer
        range; not a bool) in the range."""
        kind = Integral if self.integer else Real
        if isinstance(value, bool) or not isinstance(value, kind) or not self.contains(float(value)):
            raise ConfigError(f"{name}: expected {self}, got {value!r}")


def int_range(minimum: int, maximum: int | None = None) -> Range:
    """Integers from `minimum` to `maximum` (no upper bound when None)."""
    return Range(minimum, maximum, integer=True)


POSITIVE_INT = int_range(1)
NON_NEGATIVE_INT = int_range(0)
PORT = int_range(0, 65535)
"""A TCP port (0: any free port)."""
FRACTION = Range(0.0, 1.0)
"""[0, 1]: score thresholds, split ratios."""
PRECISION = Range(0.0, 1.0, low_open=True)
"""(0, 1]: a precision to reach."""
OVERLAP = Range(0.0, 1.0, high_open=True)
"""[0, 1): tile overlap."""
POSITIVE_FLOAT = Range(0.0, math.inf, low_open=True, high_open=True)
"""A finite number > 0."""
NON_NEGATIVE_FLOAT = Range(0.0, math.inf, high_open=True)
"""A finite number >= 0."""


def check_numbers(**rules: tuple[Range, object]) -> None:
    """Check each `name=(range, value)`; a value of None is not checked (an optional parameter left unset).
    Raises ConfigError naming the first parameter out of its range."""
    for name, (rule, value) in rules.items():
        if value is not None:
            rule.check(name, value)


def check_each(name: str, rule: Range, values: Iterable[object]) -> None:
    """Check every value of a sequence parameter (`ratios`); the error names `name[i]`. A string or a
    non-iterable is refused as a whole."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ConfigError(f"{name}: expected a sequence, each {rule}, got {values!r}")
    for i, value in enumerate(values):
        rule.check(f"{name}[{i}]", value)
