"""Read the small configuration files of YOLO datasets: data.yaml, obj.data and names files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from detforge.errors import DatasetError
from detforge.structures import Categories, Category, Location, Problem

__all__ = ["names_from_file", "names_from_yaml", "read_obj_data", "read_yaml"]

MAX_CLASSES = 100_000
"""More classes than this in a YOLO dataset is taken as a corrupt file, not a real class list."""


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read as UTF-8 text ({exc})") from None


def read_yaml(path: Path) -> dict[str, Any]:
    """The mapping in a YOLO data.yaml; DatasetError with line and column when it is not valid YAML."""
    text = _read_text(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        if mark is not None:
            raise DatasetError(
                f"{path}:{mark.line + 1}:{mark.column + 1}: invalid YAML at line {mark.line + 1}, "
                f"column {mark.column + 1}: {problem}"
            ) from None
        raise DatasetError(f"{path}: invalid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a mapping with 'path', 'train', 'val' and 'names', got {data!r:.80}")
    return data


def _categories(names: dict[int, str], path: Path) -> Categories:
    try:
        return Categories(tuple(Category(k, names[k]) for k in sorted(names)))
    except ValueError as exc:
        raise DatasetError(f"{path}: {exc}") from None


def _name(value: Any, index: int, path: Path) -> str:
    if value is None or isinstance(value, (dict, list)):
        raise DatasetError(f"{path}: class {index}: a name must be a string, got {value!r}")
    return value if isinstance(value, str) else str(value)


def _index(key: Any, path: Path) -> int:
    if isinstance(key, int) and not isinstance(key, bool) and key >= 0:
        return key
    if isinstance(key, str) and key.strip().isdigit():
        return int(key)
    raise DatasetError(f"{path}: 'names' keys must be class indices (0, 1, ...), got {key!r}")


def names_from_yaml(data: dict[str, Any], path: Path, problems: list[Problem]) -> Categories:
    """Categories (id = YOLO class index) from `names` (list or {index: name}) checked against `nc`."""
    raw, nc = data.get("names"), data.get("nc")
    if nc is not None and (isinstance(nc, bool) or not isinstance(nc, int) or not 0 <= nc <= MAX_CLASSES):
        raise DatasetError(
            f"{path}: 'nc' must be an integer from 0 to {MAX_CLASSES} (the number of classes), got {nc!r}"
        )
    if raw is None:
        if nc is None:
            raise DatasetError(f"{path}: missing 'names' (a list of class names, or a mapping {{index: name}})")
        message = f"no 'names'; classes named class0..class{nc - 1}"
        problems.append(Problem("info", "yolo.names_generated", message, Location(str(path))))
        names = {i: f"class{i}" for i in range(nc)}
    elif isinstance(raw, list):
        names = {i: _name(v, i, path) for i, v in enumerate(raw)}
    elif isinstance(raw, dict):
        names = {}
        for key, value in raw.items():
            index = _index(key, path)
            names[index] = _name(value, index, path)
    else:
        raise DatasetError(f"{path}: 'names' must be a list or a mapping {{index: name}}, got {raw!r:.80}")
    if nc is not None and nc != len(names):
        raise DatasetError(f"{path}: 'nc' is {nc} but 'names' has {len(names)} entries; they must match")
    return _categories(names, path)


def names_from_file(path: Path) -> Categories:
    """Categories 0..K-1 from a names file with one class name per line (blank lines skipped)."""
    names = [line.strip() for line in _read_text(path).splitlines() if line.strip()]
    if not names:
        raise DatasetError(f"{path}: no class names (expected one name per line)")
    return _categories(dict(enumerate(names)), path)


def read_obj_data(path: Path) -> dict[str, tuple[str, int]]:
    """`key = value` entries of a darknet/CVAT obj.data file, with each entry's 1-based line number."""
    entries: dict[str, tuple[str, int]] = {}
    for lineno, line in enumerate(_read_text(path).splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if "=" not in text:
            raise DatasetError(f"{path}:{lineno}: expected 'key = value', got {text!r}")
        key, value = (part.strip() for part in text.split("=", 1))
        entries[key] = (value, lineno)
    return entries
