"""The index output folder: taken when new or empty, continued when it is this index's own (the photo
folder it indexes is recorded with the marker), refused when it holds anything else unless `overwrite`
clears it first (see `detforge.outdir` for the rules every command's output folder follows)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from detforge.fileio import atomic_write_json
from detforge.indexing.record_log import RECORDS_FILE
from detforge.outdir import MARKER, OutputFolderError, check_output_folder, written_by

__all__ = ["COMMAND", "open_index_folder"]

COMMAND = "index"


def _recorded_source(folder: Path) -> str | None:
    try:
        record = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    source = record.get("source") if isinstance(record, dict) else None
    return source if isinstance(source, str) else None


def open_index_folder(out: Path, photos: Path, *, overwrite: bool = False, inputs: tuple[Path, ...] = ()) -> Path:
    """Make `out` ready to index `photos` into and return it.

    New or empty: marked as the index of `photos`. The index of the same photo folder (or an index folder
    from before markers: it holds `records.jsonl` only with index files): continued. The index of another
    photo folder: OutputFolderError naming --overwrite. Anything else non-empty: refused as
    `check_output_folder` does. `overwrite` clears a folder it would refuse (never one holding `inputs`).
    """
    source = os.path.abspath(photos)
    if out.is_dir() and not overwrite:
        owner = written_by(out)
        legacy = owner is None and (out / RECORDS_FILE).is_file()
        if (owner == COMMAND and _recorded_source(out) in (None, source)) or legacy:
            atomic_write_json(out / MARKER, {"command": COMMAND, "source": source})
            return out
        if owner == COMMAND:
            raise OutputFolderError(
                f"{out}: holds the index of another photo folder ({_recorded_source(out)}). Choose another "
                "folder, or pass --overwrite (overwrite=True) to discard it and index this one"
            )
    target = check_output_folder(out, f"{COMMAND}", overwrite=overwrite, inputs=inputs)
    if overwrite and target.is_dir():
        for child in target.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    target.mkdir(parents=True, exist_ok=True)
    atomic_write_json(target / MARKER, {"command": COMMAND, "source": source})
    return out
