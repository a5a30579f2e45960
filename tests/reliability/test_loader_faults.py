"""Data loading under faults: a bad sample, a killed worker, a stalled worker. Each ends within a bounded
time with a detforge error that names the sample (or the worker) and what to do; nothing hangs.

Loader-level tests use `build_loader` directly; trainer-level tests run a tiny in-process training
(`train_from_config` with a one-layer Faster R-CNN instead of a zoo model) and inject the fault there.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from detforge.config import Config, load_config
from detforge.data import loader as loader_module
from detforge.data.formats import load_dataset
from detforge.data.loader import DetectionDataset, build_loader
from detforge.data.transforms import build_transforms
from detforge.engine import train_from_config
from detforge.errors import DatasetError, DetforgeError
from tiny_fixtures import build_tiny_detector

SIZE = 48


def _write_coco(root: Path, n: int = 6) -> Path:
    """A COCO "train" subset of `n` noise images named 000.png... (image ids 1..n), one box each."""
    rng = np.random.default_rng(0)
    (root / "images" / "train").mkdir(parents=True)
    (root / "annotations").mkdir()
    images, anns = [], []
    for i in range(n):
        name = f"{i:03d}.png"
        Image.fromarray(rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)).save(root / "images" / "train" / name)
        images.append({"id": i + 1, "file_name": name, "width": SIZE, "height": SIZE})
        box = [4 + i, 6, 20, 18]
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1 + i % 2, "bbox": box, "area": 360, "iscrowd": 0})
    cats = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    doc = {"images": images, "annotations": anns, "categories": cats}
    (root / "annotations" / "instances_train.json").write_text(json.dumps(doc), encoding="utf-8")
    return root


@pytest.fixture
def coco(tmp_path: Path) -> Path:
    return _write_coco(tmp_path / "data")


def _config(data: Path, *overrides: str) -> Config:
    return load_config(
        None,
        [
            "model.name=fasterrcnn_mobilenet_v3_large_320_fpn",
            "model.weights=none",
            "model.min_size=48",
            "model.max_size=48",
            "train.device=cpu",
            "train.batch_size=2",
            "train.max_iter=6",
            "train.warmup_iters=1",
            "train.log_period=1",
            "data.val=null",
            "data.test=null",
            "data.augment=none",
            f"data.path={data}",
            *overrides,
        ],
    )


def _tiny_detector(name: str, *, num_classes: int, **kwargs: object) -> tuple[object, object]:
    """A one-layer Faster R-CNN in detforge's Detector at this file's image size (tests of the loop)."""
    return build_tiny_detector(name, num_classes=num_classes, size=SIZE)


@pytest.fixture
def tiny_training(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr("detforge.models.build.build_detector", _tiny_detector)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _shut_down(batches: object) -> None:
    """Stop a loader iterator's workers now (left to the garbage collector, torch waits 5 s per worker)."""
    shutdown = getattr(batches, "_shutdown_workers", None)
    if callable(shutdown):
        shutdown()


def _collect_quickly() -> None:
    """The garbage collector finds no loader whose workers were left running (each would cost 5 s)."""
    started = time.monotonic()
    gc.collect()
    assert time.monotonic() - started < 3


def _in_worker() -> bool:
    return torch.utils.data.get_worker_info() is not None


def _sabotage_item(monkeypatch: pytest.MonkeyPatch, index: int, fault: Callable[[], None]) -> None:
    """Run `fault()` when a loader worker process loads dataset item `index` (the main process is spared)."""
    real = DetectionDataset._load

    def load(self: DetectionDataset, i: int) -> Any:
        if i == index and _in_worker():
            fault()
        return real(self, i)

    monkeypatch.setattr(DetectionDataset, "_load", load)


# ---------------------------------------------------------------- loader level


@pytest.mark.timeout(60)
@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("damage", ["removed", "truncated"])
def test_an_image_damaged_after_loading_is_named(coco: Path, workers: int, damage: str) -> None:
    dataset = DetectionDataset(load_dataset(coco).subset("train"), build_transforms("light", train=True, max_size=None))
    victim = coco / "images" / "train" / "003.png"
    if damage == "removed":
        victim.unlink()
    else:
        victim.write_bytes(victim.read_bytes()[:60])
    batches = iter(build_loader(dataset, batch_size=2, sampler=None, num_workers=workers))
    started = time.monotonic()
    try:
        with pytest.raises(DatasetError) as caught:
            list(batches)
    finally:
        _shut_down(batches)
    assert time.monotonic() - started < 30
    message = str(caught.value)
    assert f"image {victim} (dataset index 3, image id 4)" in message
    assert ("file not found" if damage == "removed" else "cannot") in message


@pytest.mark.timeout(60)
def test_a_killed_worker_ends_iteration_with_an_error_naming_it(coco: Path) -> None:
    dataset = DetectionDataset(load_dataset(coco).subset("train"), None)
    slow = DetectionDataset._load

    def load(self: DetectionDataset, i: int) -> Any:
        time.sleep(0.05)
        return slow(self, i)

    dataset._load = load.__get__(dataset)  # type: ignore[method-assign]
    loader = build_loader(dataset, batch_size=1, sampler=None, num_workers=2)
    batches = iter(loader)
    next(batches)
    victim = batches._workers[0].pid  # type: ignore[attr-defined]
    os.kill(victim, signal.SIGKILL)
    started = time.monotonic()
    try:
        with pytest.raises(RuntimeError, match=rf"DataLoader worker \(pid\(s\) {victim}\) exited unexpectedly"):
            for _ in range(len(dataset)):
                next(batches)
    finally:
        _shut_down(batches)
    assert time.monotonic() - started < 10


@pytest.mark.timeout(60)
def test_a_stalled_worker_times_out_instead_of_hanging(coco: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader_module, "WORKER_TIMEOUT_S", 1.0)
    _sabotage_item(monkeypatch, 2, lambda: time.sleep(2.5))
    dataset = DetectionDataset(load_dataset(coco).subset("train"), None)
    batches = iter(build_loader(dataset, batch_size=1, sampler=None, num_workers=2))
    started = time.monotonic()
    try:
        with pytest.raises(RuntimeError, match=r"DataLoader timed out after 1\.0 seconds"):
            list(batches)
        assert time.monotonic() - started < 2.4  # raised before the stalled item would have arrived
    finally:
        _shut_down(batches)


# ---------------------------------------------------------------- trainer level


@pytest.mark.timeout(90)
@pytest.mark.usefixtures("tiny_training")
@pytest.mark.parametrize("workers", [0, 2])
def test_training_names_an_image_removed_after_the_dataset_was_read(
    coco: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    from detforge.engine import train_job as trainer

    victim = coco / "images" / "train" / "004.png"
    real_splits = trainer.load_splits

    def splits_then_remove(config: Config) -> Any:
        splits = real_splits(config)
        victim.unlink()  # the file goes away after the dataset was read and checked
        return splits

    monkeypatch.setattr(trainer, "load_splits", splits_then_remove)
    started = time.monotonic()
    with pytest.raises(DatasetError) as caught:
        train_from_config(_config(coco, f"data.num_workers={workers}"), out_dir=tmp_path / "run", progress=False)
    assert time.monotonic() - started < 60
    message = str(caught.value)
    assert f"image {victim} (dataset index 4, image id 5) cannot be decoded" in message
    assert "file not found" in message
    if workers:  # the worker's traceback is not pasted into the message the CLI prints
        assert "Traceback" not in message and "worker process" in message
    del caught
    _collect_quickly()


@pytest.mark.timeout(90)
@pytest.mark.usefixtures("tiny_training")
def test_training_with_a_killed_loader_worker_stops_with_a_clear_error(
    coco: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sabotage_item(monkeypatch, 3, lambda: os.kill(os.getpid(), signal.SIGKILL))
    started = time.monotonic()
    with pytest.raises(DetforgeError) as caught:
        train_from_config(_config(coco, "data.num_workers=2"), out_dir=tmp_path / "run", progress=False)
    assert time.monotonic() - started < 60
    message = str(caught.value)
    assert isinstance(caught.value, DatasetError)
    assert "data loader worker" in message and "pid" in message and "exited unexpectedly" in message
    assert "data.num_workers=0" in message  # what to try
    del caught
    _collect_quickly()


@pytest.mark.timeout(90)
@pytest.mark.usefixtures("tiny_training")
def test_training_with_a_stalled_loader_worker_stops_with_a_clear_error(
    coco: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loader_module, "WORKER_TIMEOUT_S", 1.0)
    _sabotage_item(monkeypatch, 1, lambda: time.sleep(2.5))
    started = time.monotonic()
    with pytest.raises(DatasetError) as caught:
        train_from_config(_config(coco, "data.num_workers=2"), out_dir=tmp_path / "run", progress=False)
    assert time.monotonic() - started < 60
    message = str(caught.value)
    assert "no batch" in message and "1 s" in message and "data.num_workers=0" in message
    del caught
    _collect_quickly()
