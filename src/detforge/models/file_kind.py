"""What a model-like file is, told from its first bytes, zip index and pickle opcodes, without torch; and
whether `detforge export` may replace a file.

Commands check a model path with `model_file_problem` before they import torch (seconds), so that a
plain `torch.save` file, a training checkpoint or a file of the wrong kind is answered in a fraction of a
second with what to use instead. Nothing is unpickled: pickles are only scanned (`pickletools.genops`
decodes opcodes, it runs nothing). A file this module cannot classify passes; the loader reports it.
"""

from __future__ import annotations

import os
import pickletools
import zipfile
from pathlib import Path
from typing import BinaryIO, Literal

from detforge.errors import CheckpointError
from detforge.models.artifact_io import ARTIFACT_FORMAT, is_safetensors, read_metadata

__all__ = [
    "BENCHMARK_BACKENDS",
    "CHECKPOINT_FORMATS",
    "EXPORT_SUFFIXES",
    "MODELS_ARE",
    "FileKind",
    "export_target",
    "export_target_problem",
    "file_kind",
    "is_detforge_export",
    "model_file_problem",
]

FileKind = Literal[
    "artifact", "checkpoint", "onnx", "torchscript", "state_dict", "module", "safetensors", "not_model", "unknown"
]
"""artifact: a detforge model file (`model.pt`, either format); checkpoint: a training run's
`checkpoints/best.pt` / `last.pt`; onnx / torchscript: an exported graph; state_dict: a torch.save of
tensors (a state dict or a dict of them); module: a torch.save of a pickled object (an nn.Module, ...);
safetensors: plain safetensors weights; not_model: none of these; unknown: not readable here (the loader
will say)."""

CHECKPOINT_FORMATS = ("detforge-train-checkpoint", "detforge-best-weights")
"""The `format` values of a run's checkpoints (engine.checkpoint's last.pt, engine.callbacks' best.pt)."""

MODELS_ARE = "models are a run's model.pt (from detforge train) or an exported .onnx / .ts file (from detforge export)"

_MAX_PICKLE = 64 * 1024 * 1024
"""Pickles larger than this are not scanned for their classes (only searched for detforge's markers)."""
_NOT_CLASSES = ("collections ", "torch._utils ", "torch ", "__builtin__ ", "builtins ", "_codecs ", "numpy")
"""Globals of a pickled dict of tensors: anything else names a pickled object's class."""


def _pickled(text: str) -> tuple[bytes, bytes]:
    """How a pickle writes the string `text`: BINUNICODE (protocol 2, torch.save's) and SHORT_BINUNICODE
    (protocol 4+), each with its length, so that a longer string holding `text` does not match."""
    raw = text.encode()
    return b"X" + len(raw).to_bytes(4, "little") + raw, b"\x8c" + bytes([len(raw)]) + raw


def _holds_string(data: bytes, text: str) -> bool:
    return any(form in data for form in _pickled(text))


def _pickle_kind(data: bytes) -> tuple[FileKind, str]:
    """(kind, the pickled class as `module.Name` for a module) of a torch.save pickle."""
    if any(_holds_string(data, marker) for marker in CHECKPOINT_FORMATS):
        return "checkpoint", ""
    if _holds_string(data, ARTIFACT_FORMAT):
        return "artifact", ""
    if len(data) > _MAX_PICKLE:
        return "state_dict", ""
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name == "GLOBAL" and isinstance(arg, str) and not arg.startswith(_NOT_CLASSES):
                return "module", arg.replace(" ", ".")
            if opcode.name == "STOP":
                break
    except (ValueError, EOFError):  # genops: a truncated or corrupt pickle (it parses, never runs)
        return "unknown", ""
    return "state_dict", ""


def _zip_kind(path: Path) -> tuple[FileKind, str]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
                return "torchscript", ""
            pickled = next((n for n in names if n.endswith("/data.pkl") or n == "data.pkl"), None)
            if pickled is None:
                return "not_model", ""
            return _pickle_kind(archive.read(pickled))
    except (OSError, zipfile.BadZipFile, RuntimeError, ValueError):
        return "unknown", ""


def file_kind(path: str | Path) -> tuple[FileKind, str]:
    """(kind, detail) of the file at `path` (see `FileKind`); detail names the pickled class of a module.

    Reads at most the zip index and its pickle, a safetensors header, or the first 64 KiB; no torch."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(64 * 1024)
    except OSError:
        return "unknown", ""
    if path.suffix.lower() == ".onnx":
        return ("onnx", "") if head[:1] == b"\x08" else ("not_model", "")  # field 1 (ir_version) comes first
    if head.startswith(b"PK"):
        return _zip_kind(path)
    if head.startswith(b"\x80"):  # torch.save's legacy (non-zip) format
        return _pickle_kind(head)
    try:
        if is_safetensors(path):
            return ("artifact", "") if read_metadata(path).get("format") == ARTIFACT_FORMAT else ("safetensors", "")
    except CheckpointError:
        return "unknown", ""
    return "not_model", ""


_EXPORT_KEY = b"detforge.model_name"
"""A key every detforge export carries (see export.metadata): in an ONNX file's `metadata_props`, and in
the JSON of a TorchScript archive's `extra/detforge.json`."""


def _varint(f: BinaryIO) -> int | None:
    value = shift = 0
    while shift < 70:
        byte = f.read(1)
        if not byte:
            return None
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value
        shift += 7
    return None


def _onnx_metadata_has(path: Path, key: bytes) -> bool:
    """Whether the ONNX file's `metadata_props` (ModelProto field 14) hold `key`. Walks the top-level
    protobuf fields, seeking past the graph, so a large model costs a few reads."""
    with path.open("rb") as f:
        while (tag := _varint(f)) is not None:
            field, wire = tag >> 3, tag & 7
            if wire == 0:
                if _varint(f) is None:
                    return False
            elif wire in (1, 5):
                f.seek(8 if wire == 1 else 4, 1)
            elif wire == 2:
                length = _varint(f)
                if length is None:
                    return False
                if field != 14:
                    f.seek(length, 1)
                    continue
                entry = f.read(length)  # StringStringEntryProto: 1 key, 2 value
                if len(entry) >= 2 + len(key) and entry[0] == 0x0A and entry[2 : 2 + entry[1]] == key:
                    return True
            else:
                return False
    return False


def is_detforge_export(path: str | Path) -> bool:
    """Whether the file at `path` is an ONNX or TorchScript file `detforge export` wrote (its detforge
    metadata is present); False for anything else, unreadable files included. No torch, no onnx."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                meta = next((n for n in archive.namelist() if n.endswith("/extra/detforge.json")), None)
                return meta is not None and _EXPORT_KEY in archive.read(meta)
        with path.open("rb") as f:
            if f.read(1) != b"\x08":
                return False
        return _onnx_metadata_has(path, _EXPORT_KEY)
    except (OSError, zipfile.BadZipFile, RuntimeError, ValueError):
        return False


EXPORT_SUFFIXES: dict[str, str] = {"onnx": ".onnx", "torchscript": ".ts"}
"""`detforge export`'s formats and their file suffixes (the one list: the CLI's choices, checked against
`detforge.export.ExportFormat` by a test)."""
BENCHMARK_BACKENDS: tuple[str, ...] = ("eager", "onnx", "openvino", "torchscript")
"""`detforge benchmark`'s backends (checked against `detforge.export.benchmark.BenchmarkBackend` by a test)."""


def export_target(model_path: str | Path, out: str | Path | None, fmt: str) -> Path:
    """The file an export of `model_path` to `fmt` ("onnx", "torchscript") writes: `out`; `out/<model
    stem>.onnx|.ts` when `out` is a folder (an existing one, or a name ending in `/` or without a file
    suffix, which the export creates); beside the model (`<model stem>.onnx|.ts`) when `out` is None."""
    model_path = Path(model_path)
    suffix = EXPORT_SUFFIXES.get(fmt, ".onnx")
    if out is None:
        return model_path.with_suffix(suffix)
    text = str(out)
    folder = Path(out)
    if folder.is_dir() or text.endswith(("/", os.sep)) or (not folder.exists() and not folder.suffix):
        return folder / (model_path.stem + suffix)
    return folder


def export_target_problem(target: str | Path, *, source: str | Path, overwrite: bool = False) -> str | None:
    """None when `detforge export` of the model file `source` may write the file `target`, else why not.

    Allowed: a new file; an earlier detforge export (ONNX or TorchScript with detforge metadata), which is
    replaced atomically once the new export passes its parity check; with `overwrite`, any file. Never: a
    folder, or the model file being exported."""
    target, source = Path(target), Path(source)
    if target.is_dir():
        return f"{target}: is a folder; expected the export's file name"
    if not target.exists():
        return None
    if source.exists() and target.samefile(source):
        return f"{target}: is the model being exported; choose another output file"
    if overwrite or is_detforge_export(target):
        return None
    return (
        f"{target}: the file exists and is not a detforge export; `detforge export` replaces only its own earlier "
        "exports. Choose another file, or pass --overwrite (overwrite=True) to replace it"
    )


def _checkpoint_advice(path: Path) -> str:
    run = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    artifact = run / "model.pt"
    if artifact.is_file():
        use = f"use the run's model file {artifact}"
    else:
        use = f"the run {run} has no model.pt yet: `detforge train` writes it when the run ends (resume with --resume)"
    return f"{path} is a training checkpoint (to resume training), not a model file; {use}"


def model_file_problem(path: str | Path) -> str | None:
    """None when the existing file at `path` can be a model detforge runs (a model artifact, or an .onnx /
    .ts export; unreadable files pass, the loader reports them), else a one-line message saying what the
    file is and which files are models (for a training checkpoint: the run's `model.pt` to use)."""
    path = Path(path)
    kind, detail = file_kind(path)
    suffix = path.suffix.lower()
    if kind == "unknown" or (kind == "onnx" and suffix == ".onnx") or (kind == "torchscript" and suffix == ".ts"):
        return None
    if kind == "artifact" and suffix != ".ts":
        return None
    if kind == "checkpoint":
        return _checkpoint_advice(path)
    if kind == "state_dict":
        what = "a plain PyTorch file (torch.save of tensors or a state dict), which holds no model description"
    elif kind == "module":
        what = f"a pickled {detail} object (torch.save of a whole module or object), which detforge never unpickles"
    elif kind == "safetensors":
        what = "plain safetensors weights, with no detforge model description"
    elif kind == "torchscript":
        what = "a TorchScript archive; detforge runs TorchScript exports named .ts"
    elif kind == "artifact":
        what = "a detforge model.pt renamed .ts; give it its .pt name"
    else:
        what = "not a model file (its content is no model format)"
    return f"{path} is {what}; {MODELS_ARE}"
