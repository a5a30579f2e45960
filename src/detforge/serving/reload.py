"""The served model, swappable atomically, and a watcher that reloads a replaced model file.

`ModelHolder.current()` is read once per batch, so a swap takes effect between batches and a batch
in flight finishes on the model it started with.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from detforge.serving.compute import pin_thread
from detforge.structures.detections import Detections

__all__ = ["LoadedModel", "ModelHolder", "ModelWatcher", "ServingPredictor", "warm_up"]

log = logging.getLogger(__name__)


@runtime_checkable
class ServingPredictor(Protocol):
    """What the service needs of a predictor (`detforge.inference.Predictor` has it).

    `predict_tensors` takes uint8 [3, H, W] CPU images and returns one Detections per image: boxes
    XYXY pixels in that image's frame, labels 0..K-1 indexing `class_names`, scores sorted descending
    and already at or above `score_threshold`.
    """

    class_names: tuple[str, ...]
    score_threshold: float

    def predict_tensors(self, images: Sequence[Tensor]) -> list[Detections]: ...


@dataclass(frozen=True)
class LoadedModel:
    """A predictor and what /v1/model says about it.

    score_threshold: the default per-request threshold (>= the predictor's own, which is a floor);
    input_size: (shorter side, longer-side bound) in pixels, when known.
    """

    predictor: ServingPredictor
    name: str
    version: str = "1"
    score_threshold: float | None = None
    input_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.predictor, ServingPredictor):
            raise TypeError(
                f"LoadedModel.predictor: expected an object with predict_tensors, class_names and score_threshold, "
                f"got {type(self.predictor).__name__}"
            )
        if self.score_threshold is not None and not 0.0 <= self.score_threshold <= 1.0:
            raise ValueError(f"LoadedModel.score_threshold: expected a value in [0, 1], got {self.score_threshold}")

    @property
    def default_threshold(self) -> float:
        floor = float(self.predictor.score_threshold)
        return floor if self.score_threshold is None else max(floor, float(self.score_threshold))

    @classmethod
    def of(cls, predictor: ServingPredictor, name: str = "model", version: str = "1") -> LoadedModel:
        """A LoadedModel of a predictor; input size from its model's min_size/max_size when it has them."""
        model = getattr(predictor, "model", None)
        min_size, max_size = getattr(model, "min_size", None), getattr(model, "max_size", None)
        size = (int(min_size), int(max_size)) if isinstance(min_size, int) and isinstance(max_size, int) else None
        return cls(predictor, name=name, version=version, input_size=size)


def warm_up(model: LoadedModel) -> None:
    """One dummy forward pass (a black 64x64 image), and one read of a blank 160x48 crop when the predictor
    reads text (its `reader`), so the first request pays no start-up cost."""
    model.predictor.predict_tensors([torch.zeros((3, 64, 64), dtype=torch.uint8)])
    reader = getattr(model.predictor, "reader", None)
    if reader is not None:
        reader.read(np.zeros((48, 160, 3), dtype=np.uint8), np.array([[0, 0, 160, 48]], dtype=np.float32))


class ModelHolder:
    """The model being served; `swap` replaces it atomically."""

    def __init__(self, model: LoadedModel) -> None:
        self._lock = threading.Lock()
        self._model = model
        self.swaps = 0

    def current(self) -> LoadedModel:
        with self._lock:
            return self._model

    def swap(self, model: LoadedModel) -> LoadedModel:
        """Install `model`; returns the previous one (requests already running keep using it)."""
        with self._lock:
            old, self._model = self._model, model
            self.swaps += 1
        log.info("serving model %s version %s", model.name, model.version)
        return old


Loader = Callable[[Path], LoadedModel]


class ModelWatcher:
    """Polls `path` every `interval_s` seconds; when its (mtime, size) changed and then held still for
    one poll, loads it with `loader`, warms it up in this background thread and swaps it into `holder`.
    A file that fails to load is logged and the old model kept."""

    def __init__(self, path: str | Path, loader: Loader, holder: ModelHolder, *, interval_s: float = 1.0) -> None:
        self.path = Path(path)
        self.loader = loader
        self.holder = holder
        self.interval_s = float(interval_s)
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen = self._stat()

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def poll(self, candidate: tuple[int, int] | None) -> tuple[int, int] | None:
        """One polling step; returns the stat seen now, to pass as `candidate` next time."""
        now = self._stat()
        if now is None or now == self._seen or now != candidate:
            return now  # unchanged, missing, or still changing: wait for it to settle
        self._seen = now
        try:
            model = self.loader(self.path)
            warm_up(model)
        except Exception as exc:  # a bad file never takes the service down
            self.failures += 1
            log.warning("model file %s changed but could not be loaded (%s); keeping the old model", self.path, exc)
            return now
        self.holder.swap(model)
        return now

    def _run(self) -> None:
        pin_thread(1)  # loading and warming a model here must not add an OpenMP team (serving/compute.py)
        candidate = self._seen
        while not self._stop.wait(self.interval_s):
            candidate = self.poll(candidate)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="detforge-model-watcher", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
