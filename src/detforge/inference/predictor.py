"""Predictor: a trained detector applied to files, folders, globs, bytes, arrays and PIL images.

Images are decoded under detforge's EXIF policy (`inference.sources`), so every box is in the frame
of the image as displayed. Folder runs stream: images are decoded lazily, predicted `batch_size` at a
time, and a file that cannot be read becomes a `PredictionResult` with an error instead of stopping
the run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, get_args, runtime_checkable

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from detforge.errors import CheckpointError, ConfigError, InvalidImage
from detforge.inference.read import read_or_keep
from detforge.inference.sources import Channels, ImageSource, SourceLike, decode, iter_sources
from detforge.inference.tiling import TileConfig, needs_tiling, predict_tiled
from detforge.inference.tta import predict_flip_tta
from detforge.models.detector import Detector
from detforge.reading import Reader, ReadSettings
from detforge.structures.detections import Detections
from detforge.thresholds import DEFAULT_SCORE_THRESHOLD

__all__ = ["OnError", "PredictionResult", "Predictor", "SupportsPredict"]

log = logging.getLogger(__name__)

OnError = Literal["report", "raise", "skip"]
ThresholdSource = Literal["explicit", "calibrated", "default"]


@runtime_checkable
class SupportsPredict(Protocol):
    """What the predictor needs of a model (`detforge.models.Detector` has it).

    `predict` takes float32 [3, H, W] images in [0, 1] and returns one Detections per image, boxes
    XYXY in that image's pixel frame, labels 0..num_classes-1, scores sorted descending.
    """

    num_classes: int

    def predict(self, images: Sequence[Tensor]) -> list[Detections]: ...


@dataclass(frozen=True)
class PredictionResult:
    """The outcome for one source: `detections` (score-thresholded, on the CPU) or an `error` message.

    `source`: the source's name (relative path in folder runs); `image_size`: (height, width) of the
    image as displayed, None when it could not be decoded; `path`: the file, when the source is one.
    """

    source: str
    image_size: tuple[int, int] | None
    detections: Detections | None
    error: str | None = None
    path: Path | None = None

    def __post_init__(self) -> None:
        if (self.detections is None) == (self.error is None):
            raise ValueError(f"PredictionResult {self.source!r}: expected exactly one of detections and error")
        if self.detections is not None and self.image_size != self.detections.image_size:
            raise ValueError(
                f"PredictionResult {self.source!r}: image_size {self.image_size} differs from the detections' "
                f"{self.detections.image_size}"
            )

    @property
    def ok(self) -> bool:
        return self.detections is not None

    def clipped(self) -> list[tuple[int, float, tuple[float, float, float, float]]]:
        """(label, score, XYXY box clipped to the image) per detection, in score order; boxes that are empty
        after clipping are left out; [] for a failed result."""
        return [(label, score, box) for _, label, score, box in self.clipped_indexed()]

    def clipped_indexed(self) -> list[tuple[int, int, float, tuple[float, float, float, float]]]:
        """As `clipped`, with each detection's index in `detections` first (for `text(index)`)."""
        if self.detections is None or self.image_size is None:
            return []
        height, width = self.image_size
        dets, out = self.detections, []
        rows = zip(dets.boxes.tolist(), dets.labels.tolist(), dets.scores.tolist(), strict=True)
        for i, (box, label, score) in enumerate(rows):
            x0, x1 = min(max(box[0], 0.0), width), min(max(box[2], 0.0), width)
            y0, y1 = min(max(box[1], 0.0), height), min(max(box[3], 0.0), height)
            if x1 > x0 and y1 > y0:
                out.append((i, int(label), float(score), (x0, y0, x1, y1)))
        return out

    def text(self, index: int) -> tuple[str, float] | None:
        """(value read, text score in [0, 1]) of detection `index`, or None when that box was not read."""
        dets = self.detections
        if dets is None or dets.texts is None or dets.text_scores is None or dets.texts[index] is None:
            return None
        return str(dets.texts[index]), float(dets.text_scores[index])


def _load_model(path: Path, device: str) -> tuple[Any, Any]:
    """(Detector, ModelSpec) of a detforge model artifact (`detforge.models.artifact.load_model`)."""
    try:
        from detforge.models.artifact import load_model
    except ImportError as exc:  # pragma: no cover - only while the models stage lacks artifacts
        raise CheckpointError(f"{path}: cannot load model artifacts ({exc})") from None
    return load_model(path, device=device)


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(
            f"device: {device!r} is not a device ({exc}); expected 'auto', 'cpu', 'cuda' or 'cuda:N'"
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {device!r} requested but CUDA is not available; use 'auto' or 'cpu'")
    return resolved


def _sorted(detections: Detections) -> Detections:
    order = torch.argsort(detections.scores, descending=True, stable=True)
    return detections.filter(order)


def _to_tensor(image: Image.Image) -> Tensor:
    """uint8 [3, H, W] CPU tensor of an RGB PIL image."""
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).contiguous()


class Predictor:
    """Runs a detector on images and returns score-thresholded Detections in each image's displayed frame.

    `model`: a detforge model artifact path (loaded with `load_model`; its spec gives class names,
    category ids and the score threshold) or a model object with `predict` and
    `num_classes` (a `Detector`; moved to `device` and put in eval mode). `class_names` override the
    spec's (one per class). `score_threshold`: None uses the spec's (calibrated or, until then,
    `DEFAULT_SCORE_THRESHOLD`; `threshold_source` says which) or without a spec the default,
    a number in [0, 1] overrides it, 0 keeps every detection the model returns; when it is below a
    `Detector`'s own post-processing `score_thresh`, that is lowered to it. `device`: "auto" (CUDA
    when available), "cpu", "cuda[:N]". `batch_size`: images per forward pass. `tile`: predict large
    images tile by tile (see `TileConfig`). `flip_tta`: also predict the mirror image and merge.
    `half`: fp16 autocast on CUDA (ignored on CPU).

    Reading: with a `reader`, each image's boxes of the classes `read_settings` reads (default: the
    model artifact's stored settings, else every class) get their text after thresholding (see
    `inference.read.read_detections`); boxes scoring below `read_min_box_score` (None: no floor) are not
    read. Without a reader nothing is read; `read_settings` then only records the model's settings.
    A reader that fails on an image leaves that image's texts None (logged), never its detections.
    """

    def __init__(
        self,
        model: str | Path | SupportsPredict,
        *,
        class_names: Sequence[str] | None = None,
        device: str = "auto",
        batch_size: int = 4,
        score_threshold: float | None = None,
        tile: TileConfig | None = None,
        flip_tta: bool = False,
        half: bool = False,
        reader: Reader | None = None,
        read_settings: ReadSettings | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size: expected an int >= 1, got {batch_size!r}")
        if score_threshold is not None and not 0.0 <= float(score_threshold) <= 1.0:
            raise ConfigError(f"score_threshold: expected a value in [0, 1] or None, got {score_threshold}")
        if tile is not None and not isinstance(tile, TileConfig):
            raise ConfigError(f"tile: expected a TileConfig or None, got {type(tile).__name__}")
        self.device = _resolve_device(device)
        spec: Any = None
        if isinstance(model, str | Path):
            loaded, spec = _load_model(Path(model), str(self.device))
            model = loaded
        if not isinstance(model, SupportsPredict):
            raise ConfigError(
                "model: expected a model artifact path or an object with predict and num_classes, "
                f"got {type(model).__name__}"
            )
        if isinstance(model, torch.nn.Module):
            model.to(self.device).eval()
        self.model: SupportsPredict = model
        self.num_classes = int(model.num_classes)
        self.class_names = self._class_names(class_names, spec)
        spec_ids = getattr(spec, "category_ids", None)
        self.category_ids: tuple[int, ...] | None = (
            tuple(int(i) for i in spec_ids) if spec_ids is not None and len(spec_ids) == self.num_classes else None
        )
        self.score_threshold, self.threshold_source = self._threshold(score_threshold, spec)
        self.batch_size = batch_size
        self.tile = tile
        self.flip_tta = bool(flip_tta)
        self.half = bool(half) and self.device.type == "cuda"
        if half and not self.half:
            log.info("half=True ignored: fp16 autocast is used on CUDA only (device %s)", self.device)
        self._lower_model_threshold()
        self.reader: Reader | None = None
        self.read_settings: ReadSettings | None = read_settings or getattr(spec, "read", None)
        self.read_min_box_score: float | None = None
        if reader is not None:
            self.use_reader(reader, (self.read_settings or ReadSettings()).override(enabled=True))
        log.debug(
            "Predictor on %s: %d classes, score threshold %.3f (%s)",
            self.device,
            self.num_classes,
            self.score_threshold,
            self.threshold_source,
        )

    @classmethod
    def from_checkpoint(cls, path: str | Path, **kwargs: Any) -> Predictor:
        """A Predictor of the model artifact at `path` (keywords as in `Predictor`)."""
        return cls(Path(path), **kwargs)

    # -- set-up ---------------------------------------------------------------------------------
    def _class_names(self, class_names: Sequence[str] | None, spec: Any) -> tuple[str, ...]:
        if class_names is not None and not isinstance(class_names, str):
            names = tuple(str(n) for n in class_names)
            if len(names) != self.num_classes:
                raise ConfigError(
                    f"class_names: got {len(names)} names {list(names)[:10]}, the model has {self.num_classes} classes"
                )
            return names
        if class_names is not None:
            raise ConfigError(f"class_names: expected a sequence of names, got the string {class_names!r}")
        spec_names = getattr(spec, "class_names", None)
        if spec_names is not None and len(spec_names) == self.num_classes:
            return tuple(str(n) for n in spec_names)
        return tuple(f"class_{i}" for i in range(self.num_classes))

    @staticmethod
    def _threshold(explicit: float | None, spec: Any) -> tuple[float, ThresholdSource]:
        if explicit is not None:
            return float(explicit), "explicit"
        stored = getattr(spec, "score_threshold", None)
        if stored is None:
            return DEFAULT_SCORE_THRESHOLD, "default"
        return float(stored), "calibrated" if getattr(spec, "score_threshold_calibrated", False) else "default"

    def _lower_model_threshold(self) -> None:
        """Let the model return boxes down to this predictor's threshold; a Detector passed in by the caller
        keeps its own threshold (the predictor runs a view of it sharing the weights)."""
        if isinstance(self.model, Detector):
            params = self.model.detection_params
            if self.score_threshold < params.score_thresh:
                lowered = dataclasses.replace(params, score_thresh=self.score_threshold)
                self.model = self.model.with_detection_params(lowered)

    def use_reader(self, reader: Reader | None, settings: ReadSettings | None = None) -> None:
        """Read with `reader` under `settings` (default: the current `read_settings`, else every class);
        None stops reading (the settings stay as a record)."""
        if (reader is not None and not isinstance(reader, Reader)) or not isinstance(settings, ReadSettings | None):
            raise ConfigError(f"reader / read_settings: expected a Reader and ReadSettings, got {reader!r}")
        self.reader = reader
        self.read_settings = settings or self.read_settings or (ReadSettings() if reader is not None else None)

    # -- prediction -----------------------------------------------------------------------------
    def _run(self, images: list[Tensor]) -> list[Detections]:
        """Model (+ flip TTA) on float images already on the device."""
        if self.flip_tta:
            return predict_flip_tta(self.model.predict, images)
        return list(self.model.predict(images))

    def _to_device(self, image: Tensor) -> Tensor:
        # uint8 goes over the bus (4x fewer bytes than float); no per-call pinning: page-locking a fresh
        # buffer for every image costs more than the pageable copy it would speed up. The float copy is
        # channels-first contiguous: a decoded image is a [3, H, W] view of an H x W x 3 array, and kept in
        # that layout it cost a second copy before an exported graph (0.4 ms per 800 x 600 photo) and a
        # channels-last resize in eager models.
        return image.to(self.device).to(torch.float32, memory_format=torch.contiguous_format).div_(255.0)

    def predict_tensors(self, images: Sequence[Tensor]) -> list[Detections]:
        """Detections of uint8 [3, H, W] CPU images (RGB, displayed frame): thresholded, sorted, on the CPU."""
        for i, t in enumerate(images):
            if t.dtype != torch.uint8 or t.ndim != 3 or t.shape[0] != 3:
                raise ValueError(f"predict_tensors: images[{i}] must be uint8 [3, H, W], got {t.dtype} {list(t.shape)}")
        autocast = torch.autocast("cuda", dtype=torch.float16) if self.half else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            batch = [self._to_device(t) for t in images]
            out: list[Detections | None] = [None] * len(batch)
            tiled = [self.tile is not None and needs_tiling(t.shape[2], t.shape[1], self.tile) for t in batch]
            whole = [i for i in range(len(batch)) if not tiled[i]]
            for i, dets in zip(whole, self._run([batch[i] for i in whole]) if whole else [], strict=True):
                out[i] = dets
            if self.tile is not None:
                for i in (i for i in range(len(batch)) if tiled[i]):
                    out[i] = predict_tiled(self._run, batch[i], self.tile, batch_size=self.batch_size)
        found = [_sorted(d.cpu()).above(self.score_threshold) for d in out if d is not None]
        if self.reader is None or self.read_settings is None:
            return found
        reading = (self.reader, self.read_settings, self.class_names, self.read_min_box_score)
        return [read_or_keep(image, dets, *reading) for image, dets in zip(images, found, strict=True)]

    def __call__(self, image: SourceLike, *, channels: Channels = "RGB") -> Detections:
        """Detections of one image: a file path, bytes, PIL image or uint8 array [H, W] / [H, W, 3] in
        `channels` order. InvalidImage when it cannot be decoded."""
        many = isinstance(image, list | tuple) or (isinstance(image, str | Path) and Path(image).is_dir())
        sources = [] if many else list(iter_sources([image], channels=channels))
        if len(sources) != 1:
            raise ValueError(f"Predictor(...) takes one image; use predict_many for {type(image).__name__} sources")
        (result,) = self.predict_many(sources, on_error="raise")
        assert result.detections is not None
        return result.detections

    def predict_many(
        self,
        sources: SourceLike | Iterable[SourceLike],
        *,
        on_error: OnError = "report",
        channels: Channels = "RGB",
    ) -> Iterator[PredictionResult]:
        """One PredictionResult per image of `sources` (a folder, glob, file, list, ... see `iter_sources`),
        in source order, lazily, `batch_size` images per forward pass.

        on_error: "report" yields a result with the error for an image that cannot be decoded or
        predicted and goes on; "skip" leaves it out; "raise" raises (InvalidImage for unreadable images).
        """
        if on_error not in get_args(OnError):
            raise ConfigError(f"on_error: expected one of {get_args(OnError)}, got {on_error!r}")
        pending: list[tuple[ImageSource, Tensor | str]] = []
        decoded = 0
        for source in iter_sources(sources, channels=channels):
            try:
                pending.append((source, _to_tensor(decode(source))))
                decoded += 1
            except Exception as exc:  # one unreadable image never stops a run
                if on_error == "raise":
                    raise
                if on_error == "report":
                    text = str(exc) if isinstance(exc, InvalidImage) else f"{source.name}: {type(exc).__name__}: {exc}"
                    log.warning("skipped %s", text)
                    pending.append((source, text))
            if decoded >= self.batch_size:
                yield from self._flush(pending, on_error)
                pending, decoded = [], 0
        if pending:
            yield from self._flush(pending, on_error)

    def _flush(self, pending: list[tuple[ImageSource, Tensor | str]], on_error: OnError) -> Iterator[PredictionResult]:
        images = [item for _, item in pending if isinstance(item, Tensor)]
        outcomes: list[Detections | str]
        try:
            outcomes = list(self.predict_tensors(images)) if images else []
        except Exception as exc:
            if on_error == "raise":
                raise
            # retry one by one so that the image that breaks the model spares the rest of its batch
            outcomes = [self._failure(exc)] if len(images) == 1 else [self._predict_one(image) for image in images]
        found = iter(outcomes)
        for source, item in pending:
            if isinstance(item, str):
                yield PredictionResult(source.name, None, None, item, source.path)
                continue
            size = (int(item.shape[1]), int(item.shape[2]))
            outcome = next(found)
            if isinstance(outcome, str):
                if on_error == "report":
                    log.warning("%s: %s", source.name, outcome)
                    yield PredictionResult(source.name, size, None, f"{source.name}: {outcome}", source.path)
                continue
            yield PredictionResult(source.name, size, outcome, None, source.path)

    def _predict_one(self, image: Tensor) -> Detections | str:
        try:
            return self.predict_tensors([image])[0]
        except Exception as exc:  # reported per image by predict_many
            return self._failure(exc)

    def _failure(self, exc: Exception) -> str:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return f"prediction failed ({type(exc).__name__}: {exc})"

    def __repr__(self) -> str:
        return (
            f"Predictor(classes={self.num_classes}, device={self.device}, batch_size={self.batch_size}, "
            f"score_threshold={self.score_threshold} ({self.threshold_source}), tile={self.tile}, "
            f"flip_tta={self.flip_tta}, half={self.half}, reads={self.reader is not None})"
        )
