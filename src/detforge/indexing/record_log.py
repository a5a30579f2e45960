"""The append-only record file of an index run (`DIR/records.jsonl`): one JSON line per photo done, written
and fsynced as soon as the photo is done, so a killed run loses at most the batch in flight and the next run
skips what is recorded. The index files (CSV, JSON) are rebuilt from it."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from detforge.indexing.records import PageRecord

__all__ = ["RECORDS_FILE", "RecordLog"]

log = logging.getLogger(__name__)

RECORDS_FILE = "records.jsonl"
"""Name of the record file in the index folder."""


class RecordLog:
    """The record file at `path`: `load()` reads what earlier runs recorded (the last record of a file wins;
    a line cut short by a kill or otherwise unreadable is skipped with a warning naming its line), `append`
    adds a record durably. Use as a context manager to keep the file open for a run."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._handle: IO[str] | None = None

    def load(self) -> dict[str, PageRecord]:
        """The latest record of each photo (by relative path), in first-seen order."""
        records: dict[str, PageRecord] = {}
        if not self.path.is_file():
            return records
        with self.path.open("r", encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    record = PageRecord.from_dict(json.loads(line))
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("%s:%d: unreadable record skipped (%s); that photo is redone", self.path, number, exc)
                    continue
                records[record.file] = record
        return records

    def __enter__(self) -> RecordLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()
        self._handle = self.path.open("a", encoding="utf-8")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _repair_tail(self) -> None:
        """End the file with a newline, so a line a kill cut short does not swallow the next record."""
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return
        with self.path.open("rb+") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")

    def append(self, records: Iterable[PageRecord]) -> None:
        """Write `records` (one JSON line each), flush and fsync: on disk when this returns."""
        if self._handle is None:
            raise RuntimeError("RecordLog.append: use the log as a context manager (with RecordLog(path) as log)")
        for record in records:
            self._handle.write(json.dumps(record.to_dict(), ensure_ascii=False, allow_nan=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
