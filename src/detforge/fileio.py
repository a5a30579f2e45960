"""Atomic file writes: a reader never sees a half-written file, a kill leaves the old one intact."""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["PARTIAL_WRITE", "atomic_write_bytes", "atomic_write_json", "atomic_write_text", "remove_partial_writes"]

log = logging.getLogger(__name__)

PARTIAL_WRITE = re.compile(r"\..+\.(?:\d+|[a-z0-9_]{8})\.tmp")
"""Names of the temp files a killed atomic write leaves: `.<name>.<8 random chars>.tmp` (this module) and
`.<name>.<pid>.tmp` (checkpoint saves)."""


def _file_mode(path: Path) -> int:
    """The mode a plain `open(path, "w")` would give: the existing file's, else 0o666 less the umask."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        mask = os.umask(0o022)
        os.umask(mask)
        return 0o666 & ~mask


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` via a temp file in the same folder, fsync, then rename.

    The file gets the permissions an ordinary write would give (not the temp file's private 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), _file_mode(path))
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 `text` atomically (see `atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    """Write `obj` as UTF-8 JSON atomically; NaN/Infinity are refused (not valid JSON)."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False) + "\n")


def remove_partial_writes(folder: str | Path) -> list[Path]:
    """Delete the temp files that atomic writes killed mid-write left directly in `folder` (files named like
    `PARTIAL_WRITE`; complete files are never touched); returns what was removed. Call only when nothing is
    writing into `folder`."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in sorted(folder.glob(".*.tmp")):
        if PARTIAL_WRITE.fullmatch(path.name) and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    if removed:
        log.warning(
            "removed %d partial file(s) of interrupted writes in %s: %s",
            len(removed),
            folder,
            [p.name for p in removed],
        )
    return removed
