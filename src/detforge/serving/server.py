"""Run the service: build a predictor from a model file, watch the file for replacements, serve with uvicorn."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from detforge.export.open_model import open_predictor
from detforge.reading import Reader
from detforge.serving.app import create_app
from detforge.serving.compute import ComputePlan, pin_thread, reserve_main_thread, usable_cores
from detforge.serving.protocol import json_error_protocol
from detforge.serving.reload import LoadedModel, Loader, ModelHolder, ModelWatcher, warm_up
from detforge.serving.settings import ServeSettings

__all__ = ["load_served_model", "serve", "uvicorn_config"]

log = logging.getLogger(__name__)


def _version(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def load_served_model(
    path: str | Path,
    *,
    batch_size: int = 8,
    device: str = "auto",
    runtime: str = "auto",
    read: bool | None = None,
    read_classes: Sequence[str] | None = None,
    read_pattern: str | None = None,
    read_allow: str | None = None,
    reader: Reader | None = None,
    read_threads: int | None = None,
) -> LoadedModel:
    """A LoadedModel of a model file, opened as `detforge predict` opens it
    (`detforge.export.open_model.open_predictor`): a model artifact, an `.onnx` file run by `runtime`
    ("auto", "onnxruntime" or "openvino"; ConfigError for another runtime with any other file) or a
    TorchScript `.ts` file. CheckpointError when `path` is not a file or not a model file.

    The default score threshold is the artifact's calibrated one; the predictor itself keeps detections
    down to its model's post-processing threshold so that requests may ask for a lower one. The version
    is the first 12 hex digits of the file's SHA-256.

    Reading is set up as for `detforge predict` (`inference.read.configure_reading`): the model's stored
    read settings apply without flags, `read` / `read_classes` / `read_pattern` / `read_allow` override
    them, `reader` replaces the built-in recogniser. The recogniser runs inside `predict_tensors`, so on the
    service's batch worker like the detector, with `read_threads` intra-op threads (default: the usable
    cores, the worker's share; see serving/compute.py). Only boxes at or above the calibrated threshold
    are read: a request asking for a lower threshold gets those extra boxes with text null.
    """
    path = Path(path)
    predictor = open_predictor(
        path,
        batch_size=batch_size,
        device=device,
        runtime=runtime,
        read=read,
        read_classes=read_classes,
        read_pattern=read_pattern,
        read_allow=read_allow,
        reader=reader,
        read_threads=read_threads if read_threads is not None else usable_cores(),
    )
    calibrated = float(predictor.score_threshold)
    params = getattr(predictor.model, "detection_params", None)
    floor = float(getattr(params, "score_thresh", calibrated))
    predictor.score_threshold = min(calibrated, floor)
    predictor.read_min_box_score = calibrated if predictor.reader is not None else None
    min_size, max_size = getattr(predictor.model, "min_size", None), getattr(predictor.model, "max_size", None)
    input_size = (min_size, max_size) if isinstance(min_size, int) and isinstance(max_size, int) else None
    return LoadedModel(
        predictor, name=path.stem, version=_version(path), score_threshold=calibrated, input_size=input_size
    )


def serve(model_path: str | Path, settings: ServeSettings | None = None, *, loader: Loader | None = None) -> None:
    """Serve `model_path` until SIGTERM/SIGINT: uvicorn stops accepting connections, requests in flight
    and queued images finish (up to settings.timeout_s), then the process returns. A replaced model file
    is loaded in the background and swapped in between batches. ConfigError for bad settings or model.
    While serving, this thread runs torch single-threaded (serving/compute.py); its setting is restored after."""
    settings = settings or ServeSettings()
    load = loader or (lambda p: load_served_model(p, batch_size=settings.max_batch))
    plan = reserve_main_thread()  # before loading: the model must not make an OpenMP team on this thread
    try:
        _serve(Path(model_path), settings, plan, load)
    finally:
        pin_thread(plan.threads)  # the caller's thread gets its torch threads back


def uvicorn_config(app: Any, settings: ServeSettings) -> Any:
    """The `uvicorn.Config` that `serve` runs `app` with (host, port and shutdown grace from `settings`; no
    Server header or proxy headers; uvicorn's own log setup off; JSON 400s for unparsable requests)."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        timeout_graceful_shutdown=int(settings.timeout_s) + 1,
        server_header=False,
        proxy_headers=False,
        log_config=None,
        http=json_error_protocol(),
    )


def _serve(path: Path, settings: ServeSettings, plan: ComputePlan, load: Loader) -> None:
    import uvicorn

    model = load(path)
    warm_up(model)
    holder = ModelHolder(model)
    app = create_app(holder, settings=settings, plan=plan)
    watcher = ModelWatcher(path, load, holder, interval_s=settings.reload_interval_s)
    config = uvicorn_config(app, settings)
    log.info("serving %s (version %s) on http://%s:%d", model.name, model.version, settings.host, settings.port)
    watcher.start()
    try:
        uvicorn.Server(config).run()
    finally:
        watcher.stop()
