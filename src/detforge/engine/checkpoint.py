"""Training checkpoints: atomic writes, safe loads, and a fallback when the newest file is damaged.

A checkpoint is a dict of tensors and plain Python values only (loadable with `weights_only=True`).
`last.pt` is the newest state; before it is replaced, the previous one is kept as `last.prev.pt`, so a
kill at any moment leaves at least one complete file that `load_resume_checkpoint` can use. A save first
completes `.last.pt.new` (via a temp file, fsync and rename), then renames it to `last.pt`; a kill
between those renames leaves the newest state in `.last.pt.new`, and a kill while writing leaves a partial
temp file `.<name>.<pid>.tmp`, which the next resume removes.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from detforge.errors import CheckpointError
from detforge.fileio import remove_partial_writes
from detforge.models.safeload import scan_torch_file

__all__ = [
    "CHECKPOINT_FORMAT",
    "LAST",
    "LAST_NEW",
    "LAST_PREV",
    "atomic_torch_save",
    "load_checkpoint",
    "load_resume_checkpoint",
    "non_finite_tensors",
    "remove_partial_files",
    "save_last",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "detforge-train-checkpoint"
CHECKPOINT_VERSION = 1
LAST = "last.pt"
LAST_PREV = "last.prev.pt"
LAST_NEW = f".{LAST}.new"


def non_finite_tensors(state: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of floating-point tensors in a (nested) state dict that hold NaN or Inf."""
    bad: list[str] = []
    for key, value in state.items():
        name = f"{prefix}{key}"
        if isinstance(value, torch.Tensor):
            if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                bad.append(name)
        elif isinstance(value, Mapping):
            bad.extend(non_finite_tensors(value, name + "."))
    return bad


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_torch_save(obj: Any, path: Path, *, check_keys: Iterable[str] = ("model",)) -> Path:
    """`torch.save` to a temp file next to `path`, fsync, rename; refuses non-finite weights.

    `check_keys` names the entries of `obj` (state dicts) that must hold only finite values; if any
    tensor there is NaN/Inf, CheckpointError is raised and nothing is written.
    """
    for key in check_keys:
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            bad = non_finite_tensors(obj[key])
            if bad:
                raise CheckpointError(
                    f"refusing to write {path}: {len(bad)} tensors of {key!r} are not finite (e.g. {bad[:3]})"
                )
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(buffer.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def save_last(state: Mapping[str, Any], folder: Path) -> Path:
    """Write `state` as `folder/last.pt`, keeping the previous `last.pt` as `last.prev.pt`."""
    full = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}
    last, prev = folder / LAST, folder / LAST_PREV
    # Serialise and check first, so a refused or failed save leaves both files as they were.
    tmp = atomic_torch_save(full, folder / LAST_NEW, check_keys=("model", "ema"))
    if last.exists():
        os.replace(last, prev)
    os.replace(tmp, last)
    _fsync_dir(folder)
    return last


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a file written by `save_last` with `weights_only=True`; CheckpointError if unreadable.

    Before anything is unpickled, the file's pickle opcodes are scanned (`detforge.models.safeload`): a
    file that would import anything but tensor types is refused with an error naming that import.
    """
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        scan_torch_file(path)
    except CheckpointError as exc:  # its message starts with the path (and the archive member)
        detail = str(exc).removeprefix(str(path)).lstrip(":")
        raise CheckpointError(f"{path}: not a readable checkpoint ({detail})") from None
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except Exception as exc:  # torch raises many types for truncated/corrupt zips
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc.__class__.__name__}: {exc})"[:500]) from None
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a detforge training checkpoint (no format={CHECKPOINT_FORMAT!r})")
    if obj.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {obj.get('version')!r}; this detforge reads {CHECKPOINT_VERSION}"
        )
    return obj


def remove_partial_files(folder: Path) -> list[Path]:
    """Delete the temp files that saves killed mid-write left in `folder` (never complete checkpoints);
    returns what was removed. Call only when no save into `folder` is running."""
    return remove_partial_writes(folder)


def load_resume_checkpoint(folder: Path, map_location: str | torch.device = "cpu") -> tuple[dict[str, Any], Path]:
    """The newest valid checkpoint in `folder` and its path: `.last.pt.new` (a save killed between its
    renames, complete but not yet named `last.pt`), else `last.pt`, else `last.prev.pt`.

    A damaged or partial `last.pt` (e.g. from a kill during a save on a filesystem without atomic rename)
    is skipped with a warning naming it. Partial temp files of killed saves are removed first (see
    `remove_partial_files`). CheckpointError when no valid checkpoint exists.
    """
    if folder.is_dir():
        remove_partial_files(folder)
    problems: list[str] = []
    for name in (LAST_NEW, LAST, LAST_PREV):
        path = folder / name
        if not path.exists():
            if name != LAST_NEW:
                problems.append(f"{path}: missing")
            continue
        try:
            state = load_checkpoint(path, map_location)
        except CheckpointError as exc:
            problems.append(str(exc))
            logger.warning("skipping damaged checkpoint: %s; trying the previous one", exc)
            continue
        if name == LAST_NEW:
            logger.warning("resuming from %s (iteration %s): a save was interrupted after this file was complete",
                           path, state.get("iteration"))  # fmt: skip
        elif name != LAST:
            logger.warning("resuming from %s (iteration %s) because %s", path, state.get("iteration"), problems[-1])
        return state, path
    raise CheckpointError(f"no valid checkpoint to resume from in {folder}: " + "; ".join(problems))
