"""Loading torch files without running code from them.

`safe_torch_load` first reads the file's pickle opcodes (zip archives and torch's legacy format) and
refuses any import outside a small allow-list of what plain tensors and dicts need; only then does it
call `torch.load(weights_only=True)`, torch's own restricted unpickler. The scan is a second wall:
torch lets the TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD environment variable turn a weights-only load into a
full unpickle when the call site does not pass weights_only (torch 2.14 keeps an explicit True), and
other torch versions may differ. Every failure is a CheckpointError naming the file.
"""

from __future__ import annotations

import pickletools
import zipfile
from pathlib import Path
from typing import IO, Any

import torch

from detforge.errors import CheckpointError

__all__ = ["ALLOWED_GLOBALS", "safe_torch_load", "scan_torch_file"]

ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("collections", "OrderedDict"),
        ("torch._utils", "_rebuild_tensor"),
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_parameter"),
        ("torch._utils", "_rebuild_parameter_with_state"),
        ("torch", "Size"),
        ("torch", "device"),
        ("torch.storage", "UntypedStorage"),
        ("torch", "UntypedStorage"),
    }
)
"""(module, name) pairs a tensor file may import; plus `torch.<Type>Storage` and `torch.<dtype>`."""

_DTYPE_NAMES = frozenset(str(dt).removeprefix("torch.") for dt in vars(torch).values() if isinstance(dt, torch.dtype))
_STRING_OPS = frozenset(
    {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING", "SHORT_BINSTRING"}
)
_PUT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_REFUSED_OPS = frozenset({"EXT1", "EXT2", "EXT4"})
_ONLY_TENSORS = "a weights file may hold only tensors and plain values"
_LEGACY_PICKLES = 5  # magic number, protocol, system info, the object, storage keys


def _allowed(module: str, name: str) -> bool:
    if (module, name) in ALLOWED_GLOBALS:
        return True
    return module == "torch" and (name.endswith("Storage") or name in _DTYPE_NAMES)


def _scan_pickle(stream: IO[bytes], where: str) -> None:
    """Read one pickle (up to STOP) and raise CheckpointError at the first import outside the allow-list."""
    memo: dict[Any, str | None] = {}
    pushed: list[str | None] = []  # values of the latest pushes, strings only (None = something else)
    for op, arg, _pos in pickletools.genops(stream):
        name = op.name
        if name in _REFUSED_OPS:
            raise CheckpointError(f"{where}: refused: the file uses the pickle extension registry ({name})")
        if name in ("GLOBAL", "INST"):
            module, _, attr = str(arg).partition(" ")
            if not _allowed(module, attr):
                raise CheckpointError(f"{where}: refused: the file would import {module}.{attr}; {_ONLY_TENSORS}")
            pushed.append(None)
        elif name == "STACK_GLOBAL":
            operands = pushed[-2:] if len(pushed) >= 2 else [None, None]
            if operands[0] is None or operands[1] is None or not _allowed(operands[0], operands[1]):
                what = f"{operands[0] or '?'}.{operands[1] or '?'}"
                raise CheckpointError(f"{where}: refused: the file would import {what}; {_ONLY_TENSORS}")
            pushed.append(None)
        elif name in _STRING_OPS:
            pushed.append(arg if isinstance(arg, str) else None)
        elif name == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif name in _PUT_OPS:
            memo[arg] = pushed[-1] if pushed else None
        elif name in _GET_OPS:
            pushed.append(memo.get(arg))
        else:
            pushed.append(None)
        del pushed[:-2]


def scan_torch_file(path: Path) -> None:
    """Raise CheckpointError if the torch file at `path` would import anything outside ALLOWED_GLOBALS.

    Handles torch's zip format (every `.pkl` member) and its legacy format (the leading pickles);
    a file that is neither, or whose pickle stream is malformed, is refused as corrupt.
    """
    where = str(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                members = [n for n in archive.namelist() if n.endswith(".pkl")]
                if not members:
                    raise CheckpointError(f"{where}: not a torch file (zip archive without a data.pkl)")
                for member in members:
                    with archive.open(member) as stream:
                        _scan_pickle(stream, f"{where}:{member}")
        else:
            with open(path, "rb") as stream:
                for _ in range(_LEGACY_PICKLES):
                    _scan_pickle(stream, where)
    except CheckpointError:
        raise
    except OSError as exc:
        raise CheckpointError(f"{where}: cannot read the file ({exc.strerror or exc})") from None
    except Exception as exc:  # malformed pickle data: ValueError, EOFError, zipfile errors...
        raise CheckpointError(f"{where}: corrupt or not a torch file ({type(exc).__name__}: {exc})") from None


def safe_torch_load(path: str | Path) -> Any:
    """The object stored in the torch file at `path`, on CPU, loaded with `weights_only=True` after a scan.

    Raises CheckpointError when the file is missing, corrupt, or would import anything but tensor types.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    scan_torch_file(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError... on bad files
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        reason = f"{type(exc).__name__}: {message}"
        raise CheckpointError(f"{path}: cannot load as a weights-only torch file ({reason})") from None
