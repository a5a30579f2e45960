"""The API verbs refuse out-of-range numbers as the CLI does: a ConfigError naming the parameter and the range,
raised before any file is read (the paths below do not exist)."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import detforge
from detforge.errors import ConfigError, DetforgeError

MISSING = Path("/nonexistent/detforge-test")

# (verb, its positional arguments, the bad keyword, its value, the range the error must state)
CASES: list[tuple[str, tuple[Any, ...], str, Any, str]] = [
    ("show", (MISSING,), "n", 0, "an integer >= 1"),
    ("show", (MISSING,), "n", 2.5, "an integer >= 1"),
    ("sample", (MISSING,), "n", -3, "an integer >= 1"),
    ("split", (MISSING,), "ratios", (0.8, 1.2), "a number in [0, 1]"),
    ("split", (MISSING,), "ratios", "0.8", "a sequence, each a number in [0, 1]"),
    ("split", (MISSING,), "folds", 1, "an integer >= 2"),
    ("evaluate", (MISSING, MISSING), "bootstrap", -1, "an integer >= 0"),
    ("evaluate", (MISSING, MISSING), "score_threshold", 1.5, "a number in [0, 1]"),
    ("evaluate", (MISSING, MISSING), "target_precision", 0.0, "a number in (0, 1]"),
    ("evaluate", (MISSING, MISSING), "batch_size", 0, "an integer >= 1"),
    ("predict", (MISSING, MISSING), "tile_overlap", 1.0, "a number in [0, 1)"),
    ("predict", (MISSING, MISSING), "tile", 0, "an integer >= 1"),
    ("predict", (MISSING, MISSING), "score_threshold", math.nan, "a number in [0, 1]"),
    ("predict", (MISSING, MISSING), "batch_size", True, "an integer >= 1"),
    ("index", (MISSING, MISSING), "batch_size", 0, "an integer >= 1"),
    ("index", (MISSING, MISSING), "score_threshold", -0.1, "a number in [0, 1]"),
    ("serve", (MISSING,), "port", 70000, "an integer from 0 to 65535"),
    ("serve", (MISSING,), "max_batch", 0, "an integer >= 1"),
    ("serve", (MISSING,), "max_wait_ms", -1.0, "a number in [0, inf)"),
    ("serve", (MISSING,), "max_body_mb", 0, "a number in (0, inf)"),
    ("serve", (MISSING,), "timeout_s", math.inf, "a number in (0, inf)"),
    ("train", (MISSING,), "epochs", 0, "an integer >= 1"),
    ("train", (MISSING,), "devices", "2", "an integer >= 1"),
    ("export_model", (MISSING,), "opset", 9, "an integer from 11 to 20"),
    ("benchmark", (MISSING,), "runs", 0, "an integer >= 1"),
    ("benchmark", (MISSING,), "warmup", -1, "an integer >= 0"),
]
_NEEDS_OUT = {"show", "split", "index"}


@pytest.mark.parametrize(("verb", "args", "name", "value", "expected"), CASES, ids=lambda v: str(v)[:20])
def test_api_verbs_refuse_out_of_range_numbers_naming_the_parameter(
    verb: str, args: tuple[Any, ...], name: str, value: Any, expected: str
) -> None:
    function: Callable[..., Any] = getattr(detforge, verb)
    extra = {"out": MISSING / "out"} if verb in _NEEDS_OUT else {}
    with pytest.raises(ConfigError) as caught:
        function(*args, **{name: value}, **extra)
    message = str(caught.value)
    shown = value[1] if name == "ratios" and not isinstance(value, str) else value
    named = f"{name}[1]" if name == "ratios" and not isinstance(value, str) else name
    assert message.startswith(f"{named}: expected {expected}"), message
    assert message.endswith(f"got {shown!r}"), message


def test_the_cli_and_the_api_state_the_same_range() -> None:
    """One rule for both: the CLI's usage error and the API's ConfigError quote the same range."""
    result = subprocess.run(
        [sys.executable, "-m", "detforge", "data", "show", str(MISSING), "--out", "g", "--n", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "expected an integer >= 1, got 0" in result.stderr, result.stderr
    with pytest.raises(ConfigError, match=r"^n: expected an integer >= 1, got 0$"):
        detforge.show(MISSING, out=MISSING / "out", n=0)


def test_in_range_values_pass_the_check() -> None:
    """Valid numbers go on to the real work (here: the missing dataset is the error, not the numbers)."""
    with pytest.raises(DetforgeError) as caught:
        detforge.show(MISSING, out=MISSING / "out", n=1)
    assert "expected an integer" not in str(caught.value)
