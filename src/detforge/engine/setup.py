"""Turn a Config into the objects of a run: device, data loaders, detector, optimizer, precision."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from detforge.config import Config
from detforge.data.dataset import Dataset
from detforge.engine.distributed import DistInfo
from detforge.engine.loop import AmpSettings
from detforge.errors import ConfigError
from detforge.structures import Categories

__all__ = [
    "DataSplits",
    "amp_settings",
    "build_train_loader",
    "build_val_loader",
    "deterministic_mode",
    "load_splits",
    "resolve_device",
]

logger = logging.getLogger("detforge.train")


def resolve_device(name: str, info: DistInfo) -> torch.device:
    """The torch device of this rank: "auto" = CUDA when available; distributed CUDA runs use cuda:local_rank."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device={name!r} but CUDA is not available here; use train.device=cpu or auto")
        index = info.local_rank if info.distributed else (int(name.split(":")[1]) if ":" in name else 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(f"train.device: CUDA device {index} does not exist ({torch.cuda.device_count()} visible)")
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device("cpu")


def amp_settings(config: Config, device: torch.device) -> AmpSettings:
    """Mixed precision from train.amp / train.amp_dtype: on CUDA only; bf16 where supported unless fp16 is asked."""
    amp = config.train.amp
    if amp == "on" and device.type != "cuda":
        raise ConfigError(f"train.amp=on needs a CUDA device; this run uses {device}. Use train.amp=auto or off")
    if amp == "off" or device.type != "cuda":
        return AmpSettings(False, torch.float32)
    want = config.train.amp_dtype
    bf16_ok = torch.cuda.is_bf16_supported()
    if want == "bf16" and not bf16_ok:
        raise ConfigError("train.amp_dtype=bf16 but this GPU does not support bfloat16; use fp16 or auto")
    dtype = torch.bfloat16 if want == "bf16" or (want == "auto" and bf16_ok) else torch.float16
    return AmpSettings(True, dtype)


@contextmanager
def deterministic_mode(setting: bool | str, device: torch.device) -> Iterator[None]:
    """Deterministic kernels (warn-only where torch has none) and no cuDNN autotuning while inside
    `setting` "auto" = on for CPU, off for CUDA. cuDNN benchmark mode is never switched on: detection
    batches change shape from step to step and each new shape would be autotuned again, which makes
    training slower, not faster.
    Restores the previous global settings on exit."""
    previous = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    enabled = device.type != "cuda" if setting == "auto" else bool(setting)
    try:
        if enabled:
            if device.type == "cuda":
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.backends.cudnn.benchmark = previous[1]


@dataclass(frozen=True)
class DataSplits:
    """The training subset, the validation subset (None: no evaluation) and the categories (K classes)."""

    train: Dataset
    val: Dataset | None
    categories: Categories


def load_splits(config: Config) -> DataSplits:
    """Read `data.path` and pick the train/val subsets; ConfigError naming the subsets that exist."""
    from detforge.data.formats import load_dataset

    if config.data.path is None:
        raise ConfigError("data.path is not set: give the dataset folder or file, e.g. data.path=my_data/")
    dataset = load_dataset(config.data.path, config.data.format)
    subsets = dataset.subsets
    if config.data.train not in subsets:
        hint = (
            "the dataset has no subsets; split it with `detforge data split`"
            if not subsets
            else f"subsets: {list(subsets)}"
        )
        raise ConfigError(f"data.train={config.data.train!r}: no such subset in {config.data.path} ({hint})")
    train = dataset.subset(config.data.train)
    if len(train) == 0:
        raise ConfigError(f"data.train={config.data.train!r}: the subset has no images")
    val = None
    if config.data.val is not None:
        if config.data.val in subsets:
            val = dataset.subset(config.data.val)
        else:
            logger.warning(
                "data.val=%r: no such subset in %s (subsets: %s); training without evaluation, best.pt is not "
                "written and model.pt is made from the last weights",
                config.data.val,
                config.data.path,
                list(subsets),
            )
    if len(dataset.categories) == 0:
        raise ConfigError(f"{config.data.path}: the dataset defines no categories")
    return DataSplits(train, val, dataset.categories)


def _workers(config: Config, gpu: bool) -> int:
    from detforge.data.loader import default_num_workers

    n = config.data.num_workers
    return default_num_workers(gpu=gpu) if n == "auto" else int(n)


def per_rank_batch(config: Config, info: DistInfo) -> int:
    """Images per process per iteration (train.batch_size is the total over all processes)."""
    batch = config.train.batch_size
    if batch % info.world_size:
        raise ConfigError(
            f"train.batch_size={batch} cannot be split evenly over {info.world_size} processes; "
            f"use a multiple of {info.world_size}"
        )
    return batch // info.world_size


def build_train_loader(
    config: Config, train: Dataset, info: DistInfo, *, max_size: int, pin_memory: bool
) -> tuple[Any, Any]:
    """(TrainingSampler, DataLoader) for this rank: augmentation preset, repeat-factor sampling, seeding."""
    from detforge.data.loader import DetectionDataset, build_loader
    from detforge.data.sampler import TrainingSampler, repeat_factors
    from detforge.data.transforms import build_transforms

    transforms = build_transforms(config.data.augment, train=True, max_size=max_size, flip=config.data.flip)
    dataset = DetectionDataset(train, transforms)
    threshold = config.data.repeat_factor_threshold
    factors = repeat_factors(dataset.dataset, threshold) if threshold > 0 else None
    sampler = TrainingSampler(
        len(dataset),
        shuffle=True,
        seed=config.train.seed,
        repeat_factors=factors,
        rank=info.rank,
        world_size=info.world_size,
    )
    loader = build_loader(
        dataset,
        batch_size=per_rank_batch(config, info),
        sampler=sampler,
        num_workers=_workers(config, gpu=pin_memory),
        pin_memory=pin_memory,
        seed=config.train.seed,
        repeat=True,
    )
    return sampler, loader


def build_val_loader(config: Config, val: Dataset, *, batch_size: int, pin_memory: bool) -> tuple[Any, Any]:
    """(DataLoader over the val subset in its original pixel frame, CocoEvaluator on the same boxes)."""
    from detforge.data.loader import DetectionDataset, build_loader
    from detforge.data.transforms import build_transforms
    from detforge.evaluation import CocoEvaluator

    dataset = DetectionDataset(val, build_transforms("none", train=False, max_size=None))
    loader = build_loader(
        dataset,
        batch_size=batch_size,
        sampler=None,
        num_workers=_workers(config, gpu=pin_memory),
        pin_memory=pin_memory,
    )
    cleaned = dataset.dataset
    return loader, CocoEvaluator(cleaned.images, cleaned.annotations, cleaned.categories)
