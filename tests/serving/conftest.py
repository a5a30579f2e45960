"""Fixtures of the serving tests: a fake predictor (no model load), image bytes, an in-process client and
a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import httpx
import numpy as np
import pytest
import torch
import uvicorn
from fastapi import FastAPI
from PIL import Image
from torch import Tensor

from detforge.structures.detections import Detections


class FakePredictor:
    """Returns three boxes per image (scores 0.9, 0.6, 0.3) and records every batch size.

    `gate`: a threading.Event each batch waits on (up to 10 s); `delay`: seconds each batch sleeps;
    `error`: raised by every batch. `texts`: the values read in the three boxes (None: not read), text
    score 0.8 each; without it the detections carry no texts (a predictor that does not read).
    """

    def __init__(
        self,
        class_names: Sequence[str] = ("cat", "dog"),
        *,
        score_threshold: float = 0.0,
        delay: float = 0.0,
        gate: threading.Event | None = None,
        error: Exception | None = None,
        texts: Sequence[str | None] | None = None,
    ) -> None:
        self.class_names = tuple(class_names)
        self.score_threshold = score_threshold
        self.delay = delay
        self.gate = gate
        self.error = error
        self.texts = None if texts is None else tuple(texts)
        self.batches: list[int] = []
        self.started = threading.Event()

    def predict_tensors(self, images: Sequence[Tensor]) -> list[Detections]:
        self.batches.append(len(images))
        self.started.set()
        if self.gate is not None:
            self.gate.wait(10)
        if self.delay:
            time.sleep(self.delay)
        if self.error is not None:
            raise self.error
        out = []
        for image in images:
            assert image.dtype == torch.uint8 and image.shape[0] == 3
            h, w = int(image.shape[1]), int(image.shape[2])
            corners = [[1, 2, w / 2, h / 2], [0, 0, w, h], [w / 4, h / 4, w / 2, h / 2]]
            boxes = torch.tensor(corners, dtype=torch.float32)
            labels = torch.tensor([0, len(self.class_names) - 1, 0], dtype=torch.int64)
            scores = torch.tensor([0.9, 0.6, 0.3], dtype=torch.float32)
            dets = Detections(boxes, labels, scores, (h, w))
            if self.texts is not None:
                dets = dets.with_texts(self.texts, [float("nan") if t is None else 0.8 for t in self.texts])
            out.append(dets.above(self.score_threshold))
        return out


def encode(width: int = 40, height: int = 30, fmt: str = "PNG", seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def fake_predictor() -> type[FakePredictor]:
    return FakePredictor


@pytest.fixture
def image_bytes() -> Callable[..., bytes]:
    """`image_bytes(width=40, height=30, fmt="PNG", seed=0)`: an encoded random image."""
    return encode


@contextlib.asynccontextmanager
async def _serving(app: FastAPI, *, ready: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        if ready:
            for _ in range(200):
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.01)
        yield client


@pytest.fixture
def serving() -> Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]:
    """`async with serving(app) as client:` runs the app's lifespan and waits until /readyz is 200."""
    return _serving


@contextlib.contextmanager
def _live_server(app: Any, config: uvicorn.Config | None = None) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(config or uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            time.sleep(0.01)
        assert server.started, "uvicorn did not start within 5 s"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def live_server() -> Callable[..., contextlib.AbstractContextManager[str]]:
    """`with live_server(app[, config]) as base_url:` serves `app` with uvicorn (its default settings, or the
    `uvicorn.Config` given) on a free 127.0.0.1 port."""
    return _live_server
