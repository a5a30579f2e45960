"""Output folders a command owns: refused when someone else's, replaced as a whole when its own, never merged.

Every command that writes a folder (`data split/convert/show/stats --out`, `eval --out`, `predict --out`)
goes through `output_folder`: the output is written into a fresh folder beside the target, a marker
file naming the command is added, and only then is the target swapped for it. So

- a folder that is not empty and holds no marker of the same command (a user's folder, another
  command's output) is refused unless the caller passes `overwrite=True` (`--overwrite`);
- the command's own earlier output is replaced as a whole: nothing of it survives next to the new
  output (an earlier split's test images cannot leak into the new train set);
- a failed or killed run leaves the earlier output as it was (plus, after a kill, a hidden
  `.<name>.*.partial` folder beside it, removed by the next successful run);
- a folder that holds one of the command's inputs is never replaced, even with `overwrite`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from detforge.errors import DetforgeError
from detforge.fileio import atomic_write_json

__all__ = ["MARKER", "OutputFolderError", "check_output_folder", "output_folder", "written_by"]

MARKER = ".detforge-output"
"""Name of the marker file (JSON: {"command": ...}) in every folder a detforge command wrote. No `.json`
suffix, so that format detection, which looks at `*.json` files, never mistakes it for annotations."""


class OutputFolderError(DetforgeError, ValueError):
    """An output folder cannot be written: someone else's non-empty folder, a file, or a folder holding an input."""


def written_by(folder: str | Path) -> str | None:
    """The command named by `folder`'s marker (e.g. "data split"), or None when there is no readable marker."""
    try:
        record = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    command = record.get("command") if isinstance(record, dict) else None
    return command if isinstance(command, str) else None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_output_folder(
    folder: str | Path, command: str, *, overwrite: bool = False, inputs: Iterable[object] = ()
) -> Path:
    """Raise OutputFolderError unless `command` may write `folder`; returns `folder` made absolute.

    Allowed: a path that does not exist, an empty folder, a folder whose marker names `command`, and
    with `overwrite` any folder. Never allowed: a file, a folder that is or holds one of `inputs`, the
    current folder or one above it, and the home folder.
    """
    target = Path(os.path.abspath(folder))
    if target.exists() and not target.is_dir():
        raise OutputFolderError(f"{folder}: is a file; expected an output folder (a new or empty one)")
    for given in inputs:
        if not isinstance(given, (str, os.PathLike)):
            continue  # an in-memory image or the like: nothing on disk to protect
        source = Path(os.path.abspath(given))
        if _inside(source, target):
            raise OutputFolderError(
                f"{folder}: holds the input {given}; writing there would replace it. Choose another output folder"
            )
    cwd = Path.cwd()
    if target.is_dir() and (_inside(cwd, target) or target == Path.home().absolute()):
        raise OutputFolderError(
            f"{folder}: is the current folder, one above it or the home folder; it is never replaced. "
            "Choose a folder of its own for the output"
        )
    if overwrite or not target.is_dir() or not any(target.iterdir()):
        return target
    owner = written_by(target)
    if owner == command:
        return target
    whose = f"written by `detforge {owner}`" if owner else "not written by detforge"
    raise OutputFolderError(
        f"{folder}: the folder is not empty and was {whose}; `detforge {command}` writes only a new or empty "
        "folder or its own earlier output (which it replaces as a whole). Choose another folder, or pass "
        "--overwrite (overwrite=True) to replace this one"
    )


def _default_dir_mode() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o777 & ~mask


def _swap(new: Path, target: Path) -> None:
    """Put the folder `new` at `target`, replacing what is there; on failure `target` keeps its old content."""
    if not target.is_dir():
        os.replace(new, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.replace(target, old / "content")
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(old / "content", target)
        shutil.rmtree(old, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _remove_leftovers(target: Path) -> None:
    """Delete the `.partial` / `.old` folders that killed runs left beside `target`."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{8}}\.(?:partial|old)")
    for leftover in target.parent.glob(f".{target.name}.*"):
        if pattern.fullmatch(leftover.name) and leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)


@contextmanager
def output_folder(
    folder: str | Path, command: str, *, overwrite: bool = False, inputs: Iterable[object] = ()
) -> Iterator[Path]:
    """Yield an empty folder to write `command`'s output into; when the block ends without error it
    replaces `folder` as a whole (with a marker naming `command`). On error the new files are removed and
    `folder` is left as it was. Checks first, with `check_output_folder`, that `command` may write `folder`.
    """
    target = check_output_folder(folder, command, overwrite=overwrite, inputs=inputs)
    target.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        os.chmod(new, _default_dir_mode())
        yield new
        atomic_write_json(new / MARKER, {"command": command})
        _swap(new, target)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    _remove_leftovers(target)
