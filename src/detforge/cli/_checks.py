"""Input checks the CLI makes before it imports torch: numbers in range, paths that exist and are the right kind.

Argument types (`positive_int`, `fraction`, ...) turn a bad number into a one-line usage error; their rules
are `detforge.ranges`, which the API verbs check too. The path
checks raise DetforgeError subclasses, which `detforge.cli.main` prints as one line; they run at the top of
a handler, so a typo costs a fraction of a second instead of the seconds torch takes to import.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from detforge.errors import CheckpointError, ConfigError, DatasetError
from detforge.models.file_kind import MODELS_ARE, model_file_problem
from detforge.ranges import (
    FRACTION,
    NON_NEGATIVE_FLOAT,
    NON_NEGATIVE_INT,
    OVERLAP,
    PORT,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    PRECISION,
    Range,
    int_range,
)

__all__ = [
    "MODEL_SUFFIXES",
    "at_least",
    "check_config",
    "existing_path",
    "fraction",
    "image_source",
    "int_between",
    "model_file",
    "non_negative_float",
    "non_negative_int",
    "output_file",
    "output_folder",
    "overlap",
    "port",
    "positive_float",
    "positive_int",
    "precision",
]

MODEL_SUFFIXES = (".pt", ".pth", ".onnx", ".ts")
"""What detforge runs as a model: a model artifact (a run's `model.pt`) or an exported .onnx / .ts file."""


def _argtype(rule: Range) -> Callable[[str], Any]:
    """argparse type accepting the numbers of `rule` (detforge.ranges: the API checks the same rules)."""

    def parse(text: str) -> Any:
        try:
            return rule.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def int_between(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """argparse type: an integer from `minimum` to `maximum` (no upper bound when None)."""
    return _argtype(int_range(minimum, maximum))


def at_least(minimum: int) -> Callable[[str], int]:
    """argparse type: an integer >= `minimum`."""
    return int_between(minimum)


positive_int = _argtype(POSITIVE_INT)
non_negative_int = _argtype(NON_NEGATIVE_INT)
port = _argtype(PORT)
"""argparse type: a TCP port (0: any free port)."""
fraction = _argtype(FRACTION)
"""argparse type: a number in [0, 1] (score thresholds, split ratios)."""
precision = _argtype(PRECISION)
"""argparse type: a number in (0, 1] (a precision to reach)."""
overlap = _argtype(OVERLAP)
"""argparse type: a number in [0, 1) (tile overlap)."""
positive_float = _argtype(POSITIVE_FLOAT)
"""argparse type: a finite number > 0."""
non_negative_float = _argtype(NON_NEGATIVE_FLOAT)
"""argparse type: a finite number >= 0."""


def model_file(path: Path) -> Path:
    """`path` when it can be a model; CheckpointError saying which files are models otherwise.

    A folder holding `model.pt` (a run folder) is answered with that file's path as the suggestion; a
    training checkpoint with the run's `model.pt`; a plain torch.save file (a state dict, a pickled module)
    or safetensors weights with what it is. Only file headers are read (no torch, nothing unpickled).
    """
    if not path.exists():
        raise CheckpointError(f"{path}: no such file; {MODELS_ARE}")
    if path.is_dir():
        inside = path / "model.pt"
        hint = f"; did you mean {inside}?" if inside.is_file() else f"; {MODELS_ARE}"
        raise CheckpointError(f"{path} is a folder, not a model file{hint}")
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise CheckpointError(f"{path} is not a model file; {MODELS_ARE}")
    problem = model_file_problem(path)
    if problem is not None:
        raise CheckpointError(problem)
    return path


def existing_path(path: Path, what: str = "dataset") -> Path:
    """`path` when it exists (a dataset folder or annotation file, an image, ...); DatasetError naming `what`
    otherwise."""
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder (expected the {what})")
    return path


def image_source(source: str) -> str:
    """`source` (an image file, folder or glob) unless it is neither a glob nor an existing path."""
    if not any(c in source for c in "*?[") and not Path(source).exists():
        raise DatasetError(f"{source}: no such file or folder (and not a glob pattern)")
    return source


def output_folder(path: Path | None, flag: str) -> Path | None:
    """`path` unless it exists and is not a folder, or a parent of it is a file (ConfigError naming `flag`)."""
    if path is None:
        return None
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path}: is a file; expected a folder (new, or one detforge wrote)")
    _no_file_above(path, flag)
    return path


def _no_file_above(path: Path, flag: str) -> None:
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{flag} {path}: {parent} is a file, so it cannot hold {path.name}")
            return


def output_file(path: Path | None, flag: str) -> Path | None:
    """`path` unless it is an existing folder or its parent is a file (ConfigError naming `flag`)."""
    if path is None:
        return None
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder; expected a file name")
    _no_file_above(path, flag)
    return path


def check_config(path: Path | None, overrides: Sequence[str], *, time: str | None = None) -> None:
    """Validate `detforge train`'s config file or dataset path and `key=value` overrides without torch.

    Raises what `detforge.config.load_config` raises (ConfigError naming the key and the nearest valid
    one) and DatasetError for a dataset path that does not exist.
    """
    from detforge.api.train import _is_config_file  # the same test `train` makes: config or dataset
    from detforge.config import load_config

    extra = list(overrides) + ([f"train.time={time}"] if time else [])
    if path is not None and _is_config_file(path):
        load_config(path, extra)
        return
    if path is not None:
        existing_path(path, "dataset or detforge YAML config")
    load_config(None, extra)
