"""The FastAPI app factory: detection API, health/readiness, model info, metrics and the web page.

`create_app` takes a ready predictor, so building the app loads nothing; no endpoint loads a model or
a file named by a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.datastructures import Headers, UploadFile

from detforge.serving.auth import bearer_guard
from detforge.serving.batching import Batcher, BatchResult, QueueFull, ShuttingDown
from detforge.serving.compute import ComputePlan, plan_threads
from detforge.serving.http_errors import ApiError, error_response, install_error_handlers
from detforge.serving.limits import BodyLimitMiddleware, decode_upload
from detforge.serving.metrics import CONTENT_TYPE, MetricsMiddleware, ServingMetrics
from detforge.serving.reload import LoadedModel, ModelHolder, ServingPredictor, warm_up
from detforge.serving.schemas import DetectResponse, ErrorResponse, ImageSize, ModelResponse, Timing
from detforge.serving.settings import ServeSettings

__all__ = ["create_app"]

log = logging.getLogger(__name__)

_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
_STATIC = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}

# What the OpenAPI document says about errors and the detect body (the handlers read the body themselves).
_ERROR_DOCS = {
    400: "malformed multipart body",
    401: "missing or wrong bearer token (when the server has one)",
    413: "body over max_body_mb, or image over max_pixels",
    415: "body neither multipart/form-data nor an image, or an image format not accepted",
    422: "invalid query parameter, a multipart body without exactly one file, or empty/corrupt image data",
    503: "queue full, shutting down, or not ready (with Retry-After)",
    504: "the request took longer than timeout_s",
}
_BINARY: dict[str, Any] = {"schema": {"type": "string", "format": "binary"}}
_DETECT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {
                            "type": "string",
                            "format": "binary",
                            "description": "the image; a body holding exactly one file may use any field name",
                        }
                    },
                }
            },
            **{media: _BINARY for media in ("image/jpeg", "image/png", "image/webp", "image/bmp", "image/tiff")},
            "application/octet-stream": _BINARY,
        },
    }
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries: each error status in the ErrorResponse shape."""
    return {code: {"model": ErrorResponse, "description": _ERROR_DOCS[code]} for code in codes}


class _JsonCorsMiddleware(CORSMiddleware):
    """CORSMiddleware whose refused preflights (400) carry the API's JSON error body, code "cors_rejected"."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        headers = {k: v for k, v in response.headers.items() if k not in ("content-type", "content-length")}
        return error_response(400, "cors_rejected", bytes(response.body).decode("utf-8", "replace"), headers)


def _holder(predictor: ServingPredictor | LoadedModel | ModelHolder) -> ModelHolder:
    if isinstance(predictor, ModelHolder):
        return predictor
    if isinstance(predictor, LoadedModel):
        return ModelHolder(predictor)
    return ModelHolder(LoadedModel.of(predictor))


_MAX_FILES = 8
"""Files a multipart body may hold before the parser refuses it (400); from 2 to this many get a 422 naming them."""


def _static(name: str) -> bytes:
    return (resources.files("detforge.serving") / "static" / name).read_bytes()


async def _read_image(request: Request) -> bytes:
    """The uploaded image: the one file of a multipart body, under any field name (`image` is documented,
    `file` is what most clients send), or the raw body of an image/* request. 422 naming the fields when a
    multipart body holds no file or more than one."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        async with request.form(max_files=_MAX_FILES, max_fields=8) as form:
            files = [(name, value) for name, value in form.multi_items() if isinstance(value, UploadFile)]
            if not files:
                fields = f" (fields: {', '.join(repr(k) for k in form)})" if len(form) else ""
                raise ApiError(422, "missing_image", f"expected one image file in the multipart body, got none{fields}")
            if len(files) > 1:
                names = ", ".join(repr(name) for name, _ in files)
                raise ApiError(
                    422, "too_many_files", f"expected one image file in the multipart body, got {len(files)}: {names}"
                )
            return await files[0][1].read()
    if content_type.startswith("image/") or content_type == "application/octet-stream":
        return await request.body()
    raise ApiError(
        415, "unsupported_media_type", "send the image as a multipart/form-data file (field 'image') or an image/* body"
    )


def _response(result: BatchResult, threshold: float, total_ms: float) -> DetectResponse:
    dets = result.detections.above(threshold)
    names = result.model.predictor.class_names
    ids = [int(i) for i in dets.labels.tolist()]
    height, width = dets.image_size
    texts: list[str | None] = list(dets.texts) if dets.texts is not None else [None] * len(ids)
    raw = dets.text_scores.tolist() if dets.text_scores is not None else [math.nan] * len(ids)
    text_scores = [None if t is None or not math.isfinite(s) else round(s, 5) for t, s in zip(texts, raw, strict=True)]
    return DetectResponse(
        boxes=[[round(float(v), 2) for v in box] for box in dets.boxes.tolist()],
        labels=[names[i] if 0 <= i < len(names) else f"class_{i}" for i in ids],
        class_ids=ids,
        scores=[round(float(s), 5) for s in dets.scores.tolist()],
        texts=texts,
        text_scores=text_scores,
        image=ImageSize(width=int(width), height=int(height)),
        timing_ms=Timing(queue=round(result.queue_ms, 3), inference=round(result.inference_ms, 3), total=total_ms),
        model=result.model.name,
    )


def create_app(
    predictor: ServingPredictor | LoadedModel | ModelHolder, *, settings: ServeSettings, plan: ComputePlan | None = None
) -> FastAPI:
    """The service around a ready predictor (or a LoadedModel, or a ModelHolder a watcher swaps models in).

    plan: CPU threads of the forward passes (default: torch's thread count in this thread, and large
    batches of a CPU torch model split over that many single-threaded workers; see serving/compute.py).
    Load the model after `reserve_main_thread()` (as `serve` does) to keep CPU inference at full speed.

    Endpoints: POST /v1/detect, GET /v1/model (bearer token when settings.token is set), GET /healthz,
    GET /readyz (200 once the model has run one warm-up forward pass), GET /metrics, GET / (web page).
    The batcher starts with the app's lifespan and drains queued requests when it shuts down.
    """
    holder = _holder(predictor)
    metrics = ServingMetrics(settings.max_batch)
    batcher = Batcher(
        holder,
        max_batch=settings.max_batch,
        max_wait_ms=settings.max_wait_ms,
        queue_size=settings.queue_size,
        on_batch=metrics.batch_size.observe,
        on_depth=metrics.queue_depth.set,
        plan=plan or plan_threads(),
    )
    ready = asyncio.Event()

    async def warm() -> None:
        try:
            await batcher.run_in_worker(lambda: warm_up(holder.current()))
        except Exception as exc:
            log.error("warm-up forward pass failed (%s: %s); /readyz stays 503", type(exc).__name__, exc)
            return
        ready.set()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        warming = asyncio.get_running_loop().create_task(warm())
        try:
            yield
        finally:
            warming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await warming
            await batcher.drain(settings.timeout_s)

    app = FastAPI(title="detforge", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.batcher = batcher
    app.state.holder = holder
    app.state.metrics = metrics
    install_error_handlers(app)

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(bearer_guard(settings.token))])

    @v1.post(
        "/detect",
        response_model=DetectResponse,
        responses=_errors(400, 401, 413, 415, 422, 503, 504),
        openapi_extra=_DETECT_BODY,
    )
    async def detect(request: Request, score_threshold: float | None = Query(None, ge=0.0, le=1.0)) -> DetectResponse:
        started = time.perf_counter()

        async def run() -> BatchResult:
            data = await _read_image(request)
            image = await asyncio.to_thread(decode_upload, data, settings.max_pixels)
            return await batcher.submit(image)

        try:
            result = await asyncio.wait_for(run(), settings.timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(504, "timeout", f"the request took longer than {settings.timeout_s} s") from None
        except QueueFull:
            message = "too many requests are waiting; retry shortly"
            raise ApiError(503, "queue_full", message, {"Retry-After": "1"}) from None
        except ShuttingDown:
            raise ApiError(503, "shutting_down", "the server is shutting down", {"Retry-After": "5"}) from None
        threshold = result.model.default_threshold if score_threshold is None else score_threshold
        return _response(result, threshold, round((time.perf_counter() - started) * 1000.0, 3))

    @v1.get("/model", response_model=ModelResponse, responses=_errors(401))
    async def model_info() -> ModelResponse:
        model = holder.current()
        predictor: Any = model.predictor
        read_settings = getattr(predictor, "read_settings", None) if getattr(predictor, "reader", None) else None
        reads = read_settings is not None and bool(read_settings.enabled)
        classes = read_settings.classes if read_settings is not None and reads else None
        return ModelResponse(
            name=model.name,
            classes=list(model.predictor.class_names),
            version=model.version,
            score_threshold=model.default_threshold,
            score_threshold_calibrated=getattr(model.predictor, "threshold_source", None) == "calibrated",
            input_size=None if model.input_size is None else list(model.input_size),
            reads=reads,
            read_classes=None if classes is None else list(classes),
        )

    app.include_router(v1)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", response_model=None, responses=_errors(503))
    async def readyz() -> JSONResponse:
        if not ready.is_set():
            return error_response(503, "not_ready", "the model is loading or warming up", {"Retry-After": "1"})
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus() -> Response:
        metrics.queue_depth.set(batcher.depth)
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    page = _static("index.html")
    assets = {name: _static(name) for name in _STATIC}

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        headers = {"Content-Security-Policy": _PAGE_CSP, "X-Content-Type-Options": "nosniff"}
        return Response(page, media_type="text/html; charset=utf-8", headers=headers)

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in assets:
            raise ApiError(404, "not_found", "no such file")
        return Response(assets[name], media_type=_STATIC[name], headers={"X-Content-Type-Options": "nosniff"})

    if settings.cors_origins:
        app.add_middleware(
            _JsonCorsMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
