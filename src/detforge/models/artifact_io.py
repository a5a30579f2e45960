"""Reading and writing the bytes of a model artifact, in both of its formats, without unpickling.

Format 2 (what `write_artifact` writes) is a safetensors file: the state dict as named tensors,
and the metadata in the file's JSON header (`__metadata__`, string -> string):
    {"format": "detforge.model", "format_version": "2",
     "spec": JSON of ModelSpec.to_dict(), "setup": JSON, "detection_params": JSON}
Reading it parses JSON and copies raw tensor bytes; nothing in the file can run code. The header can be
read without importing torch (`read_metadata`), so a command can tell a model file from anything else
before paying for torch.

Format 1 (the first releases) is a torch zip archive holding the same sections as plain dicts; it is
still read, through the weights-only loader behind the allow-list scan (safeload.py), never written.

The file name stays `model.pt` (the name users, scripts and docs know); the content, not the suffix,
says which format a file is.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detforge.errors import CheckpointError
from detforge.fileio import atomic_write_bytes

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "ARTIFACT_FORMAT",
    "FORMAT_VERSION",
    "READABLE_VERSIONS",
    "SECTIONS",
    "ArtifactContents",
    "is_safetensors",
    "read_artifact",
    "read_metadata",
    "read_tensors",
    "write_artifact",
]

ARTIFACT_FORMAT = "detforge.model"
FORMAT_VERSION = 2
"""The version `write_artifact` writes (safetensors); 1 is the torch zip of the first releases."""
READABLE_VERSIONS = (1, 2)
SECTIONS = ("spec", "setup", "detection_params")
"""The metadata sections of an artifact, each a JSON object."""

_V1_KEYS = frozenset({"format", "format_version", *SECTIONS, "state_dict"})
_V2_KEYS = frozenset({"format", "format_version", *SECTIONS})
_MAX_HEADER = 100_000_000  # the safetensors library's own limit on the JSON header
_PLAIN_HINT = " (a plain state dict? use build_detector(..., weights=path))"


@dataclass(frozen=True)
class ArtifactContents:
    """What an artifact file holds: its format version, the three metadata sections (JSON-like mappings,
    not yet validated) and the state dict (name -> tensor; a format-1 file may hold other values there,
    which the caller reports)."""

    format_version: int
    spec: Mapping[str, Any]
    setup: Mapping[str, Any]
    detection_params: Mapping[str, Any]
    state_dict: Mapping[str, Any]


def _header_size(path: Path) -> int | None:
    """The JSON header length of a safetensors file, None when the first bytes say it is not one.

    A safetensors file starts with the header length (8 bytes, little-endian) then `{`; a torch zip
    starts with `PK`, a legacy torch file with a pickle opcode, so the two never look alike."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            head = f.read(9)
            size = os.fstat(f.fileno()).st_size
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if len(head) < 9 or head[8:9] != b"{":
        return None
    (length,) = struct.unpack("<Q", head[:8])
    if not 2 <= length <= _MAX_HEADER:
        return None
    if length > size - 8:
        raise CheckpointError(f"{path}: truncated safetensors file (header of {length} bytes, file of {size})")
    return int(length)


def is_safetensors(path: str | Path) -> bool:
    """Whether the file at `path` starts like a safetensors file (format-2 artifacts do). Reads 9 bytes;
    no torch import. CheckpointError when the file is missing, unreadable or visibly truncated."""
    return _header_size(Path(path)) is not None


def read_metadata(path: str | Path) -> dict[str, str]:
    """The `__metadata__` of the safetensors file at `path` ({} when it has none), read without torch.

    Raises CheckpointError naming the file when it is not a safetensors file or its header is corrupt."""
    path = Path(path)
    length = _header_size(path)
    if length is None:
        raise CheckpointError(f"{path}: not a safetensors file")
    try:
        with open(path, "rb") as f:
            f.seek(8)
            header = json.loads(f.read(length).decode("utf-8"))
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise CheckpointError(f"{path}: corrupt safetensors header ({exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors header (a JSON {type(header).__name__}, not an object)")
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise CheckpointError(f"{path}: corrupt safetensors header (__metadata__ must map strings to strings)")
    return meta


def read_tensors(path: str | Path) -> dict[str, Tensor]:
    """The tensors of the safetensors file at `path`, on the CPU. CheckpointError naming the file when
    it is corrupt or the safetensors package is missing."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise CheckpointError(f"{path}: reading safetensors files needs `pip install safetensors`") from None
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises SafetensorError, OSError, ValueError... on bad files
        raise CheckpointError(f"{path}: corrupt safetensors file ({type(exc).__name__}: {exc})") from None


def _plain_tensors(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Detached, contiguous CPU tensors, each owning its storage (safetensors refuses shared memory)."""
    out: dict[str, Tensor] = {}
    seen: set[int] = set()
    for key, value in state.items():
        tensor = value.detach().cpu().contiguous()
        storage = tensor.untyped_storage()
        ptr = storage.data_ptr()
        if tensor.numel() and (ptr in seen or storage.nbytes() != tensor.nbytes):
            tensor = tensor.clone()
            ptr = tensor.untyped_storage().data_ptr()
        seen.add(ptr)
        out[key] = tensor
    return out


def write_artifact(
    path: str | Path, sections: Mapping[str, Mapping[str, Any]], state_dict: Mapping[str, Tensor]
) -> Path:
    """Write a format-2 artifact atomically: `state_dict` as tensors, `sections` (exactly SECTIONS, each
    JSON-able) in the header. Raises ValueError when a section is missing or not JSON-able."""
    from safetensors.torch import save

    if set(sections) != set(SECTIONS):
        raise ValueError(f"artifact sections: expected {list(SECTIONS)}, got {sorted(sections)}")
    meta = {"format": ARTIFACT_FORMAT, "format_version": str(FORMAT_VERSION)}
    for name in SECTIONS:
        try:
            meta[name] = json.dumps(dict(sections[name]), allow_nan=False, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"artifact [{name}]: not JSON-able ({exc})") from None
    return atomic_write_bytes(path, save(_plain_tensors(state_dict), metadata=meta))


def _mapping(obj: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = obj[key]
    if not isinstance(value, Mapping):
        raise CheckpointError(f"{where}: [{key}] should be a mapping, got {type(value).__name__}")
    return value


def _check_keys(keys: set[str], expected: frozenset[str], where: str) -> None:
    missing, unknown = sorted(expected - keys), sorted(keys - expected)
    if missing or unknown:
        raise CheckpointError(f"{where}: wrong top-level keys: missing {missing}, unknown {unknown}")


def _read_v2(path: Path) -> ArtifactContents:
    where = str(path)
    meta = read_metadata(path)
    if meta.get("format") != ARTIFACT_FORMAT:
        raise CheckpointError(f"{where}: not a detforge model file (expected format {ARTIFACT_FORMAT!r}){_PLAIN_HINT}")
    _check_keys(set(meta), _V2_KEYS, where)
    if meta["format_version"] != str(FORMAT_VERSION):
        raise CheckpointError(
            f"{where}: format_version {meta['format_version']!r} in a safetensors file; detforge reads {FORMAT_VERSION}"
        )
    sections: dict[str, Any] = {}
    for name in SECTIONS:
        try:
            sections[name] = json.loads(meta[name])
        except ValueError as exc:
            raise CheckpointError(f"{where}: [{name}] is not valid JSON ({exc})") from None
        _mapping(sections, name, where)
    return ArtifactContents(FORMAT_VERSION, **sections, state_dict=read_tensors(path))


def _read_v1(path: Path) -> ArtifactContents:
    from detforge.models.safeload import safe_torch_load

    where = str(path)
    obj = safe_torch_load(path)
    if not isinstance(obj, Mapping) or obj.get("format") != ARTIFACT_FORMAT:
        hint = _PLAIN_HINT if isinstance(obj, Mapping) else ""
        raise CheckpointError(f"{where}: not a detforge model file (expected format {ARTIFACT_FORMAT!r}){hint}")
    _check_keys({str(k) for k in obj}, _V1_KEYS, where)
    if obj["format_version"] != 1:
        raise CheckpointError(f"{where}: format_version {obj['format_version']!r} in a torch file; detforge reads 1")
    return ArtifactContents(1, *(_mapping(obj, k, where) for k in (*SECTIONS, "state_dict")))


def read_artifact(path: str | Path) -> ArtifactContents:
    """The contents of the model artifact at `path`, format 2 (safetensors) or 1 (weights-only torch zip).

    Never unpickles a format-2 file. Raises CheckpointError naming the file when it is missing, corrupt,
    not a detforge model, of an unknown format version, or missing/adding top-level sections."""
    path = Path(path)
    return _read_v2(path) if is_safetensors(path) else _read_v1(path)
