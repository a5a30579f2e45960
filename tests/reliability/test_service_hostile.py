"""Hostile HTTP clients against a real uvicorn on 127.0.0.1: lying and chunked oversized bodies, hostile
multipart, slow clients, a burst over capacity, and the bearer token kept out of the logs."""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import pytest
import torch
import uvicorn
from PIL import Image
from torch import Tensor

from detforge.serving import ServeSettings, create_app
from detforge.structures.detections import Detections

TOKEN = "t0ken-that-must-never-be-logged"


class SlowFake:
    """One full-image box per image; each batch sleeps `delay` seconds."""

    class_names: tuple[str, ...] = ("thing",)
    score_threshold = 0.0

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def predict_tensors(self, images: Sequence[Tensor]) -> list[Detections]:
        time.sleep(self.delay)
        out = []
        for image in images:
            h, w = int(image.shape[1]), int(image.shape[2])
            box = torch.tensor([[0.0, 0.0, float(w), float(h)]])
            out.append(Detections(box, torch.tensor([0]), torch.tensor([0.9]), (h, w)))
        return out


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((12, 16, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@contextlib.contextmanager
def _live(app: Any, **config: Any) -> Iterator[tuple[str, int]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            time.sleep(0.01)
        assert server.started
        for _ in range(200):
            if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                break
            time.sleep(0.02)
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _raw(host: str, port: int, payload: bytes, timeout: float = 5.0) -> str:
    """Send raw bytes on a fresh connection; what the server sends until it closes (at most 64 KB)."""
    reply = b""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(payload)
        with contextlib.suppress(OSError):
            while len(reply) < 65536:
                data = sock.recv(4096)
                if not data:
                    break
                reply += data
    return reply.decode("latin-1")


def _detect_ok(host: str, port: int, headers: dict[str, str] | None = None) -> int:
    url = f"http://{host}:{port}/v1/detect"
    response = httpx.post(url, content=_png(), headers={"content-type": "image/png", **(headers or {})}, timeout=10)
    if response.status_code == 200:
        assert response.json()["boxes"] == [[0.0, 0.0, 16.0, 12.0]]
    return response.status_code


@pytest.mark.timeout(60)
def test_oversized_bodies_get_413_early_and_the_server_goes_on() -> None:
    app = create_app(SlowFake(), settings=ServeSettings(max_body_mb=0.01))  # 10 kB
    big = b"\x89PNG" + b"x" * 200_000
    with _live(app) as (host, port):
        head = "POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
        lying = head + "Connection: close\r\nContent-Length: 100\r\n\r\n"
        chunked = head + "Transfer-Encoding: chunked\r\n\r\n"
        parts = [big[i : i + 4000] for i in range(0, len(big), 4000)]
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts)
        started = time.monotonic()
        honest = _raw(host, port, (head + "Content-Length: 900000000\r\n\r\n").encode() + b"\x89PNG")
        streamed = _raw(host, port, chunked.encode() + chunks + b"0\r\n\r\n")
        assert time.monotonic() - started < 5
        assert honest.startswith("HTTP/1.1 413") and "payload_too_large" in honest
        assert streamed.startswith("HTTP/1.1 413") and "payload_too_large" in streamed
        # a lying Content-Length: the server reads 100 bytes only, so the answer is about those bytes
        liar = _raw(host, port, lying.encode() + big[:100] + big)
        assert liar.startswith("HTTP/1.1 4")
        assert [_detect_ok(host, port) for _ in range(3)] == [200, 200, 200]


@pytest.mark.timeout(60)
def test_hostile_multipart_gets_4xx_quickly() -> None:
    app = create_app(SlowFake(), settings=ServeSettings(max_body_mb=2))
    png = _png()
    many = (
        b"".join(b'--b\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nv\r\n' % i for i in range(5000))
        + b"--b--\r\n"
    )
    huge_header = b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nX-Pad: ' + b"a" * 500_000
    huge_header += b"\r\n\r\n" + png + b"\r\n--b--\r\n"
    cases = {
        "no-boundary": ("multipart/form-data", b"--b\r\n" + png),
        "thousands-of-parts": ("multipart/form-data; boundary=b", many),
        "huge-part-header": ("multipart/form-data; boundary=b", huge_header),
        "never-closed": ("multipart/form-data; boundary=b", b'--b\r\nContent-Disposition: form-data; name="image"\r\n'),
        "garbage": ("multipart/form-data; boundary=b", bytes(range(256)) * 20),
    }
    with _live(app) as (host, port), httpx.Client(base_url=f"http://{host}:{port}", timeout=10) as client:
        for name, (content_type, body) in cases.items():
            started = time.monotonic()
            response = client.post("/v1/detect", content=body, headers={"content-type": content_type})
            assert 400 <= response.status_code < 500, (name, response.status_code, response.text[:200])
            assert response.json()["error"]["code"], name
            assert time.monotonic() - started < 3, name
        assert _detect_ok(host, port) == 200


@pytest.mark.timeout(60)
def test_burst_over_capacity_gets_503_with_retry_after_and_no_5xx_else() -> None:
    settings = ServeSettings(max_batch=1, max_wait_ms=0, queue_size=2, timeout_s=10)
    app = create_app(SlowFake(delay=0.05), settings=settings)
    with _live(app) as (host, port), ThreadPoolExecutor(16) as pool:
        url = f"http://{host}:{port}/v1/detect"

        def one(_: int) -> tuple[int, str | None]:
            r = httpx.post(url, content=_png(), headers={"content-type": "image/png"}, timeout=15)
            return r.status_code, r.headers.get("retry-after")

        results = list(pool.map(one, range(48)))  # 48 requests, 16 at a time
        statuses = [s for s, _ in results]
        assert set(statuses) <= {200, 503}, statuses
        assert statuses.count(200) >= 3 and statuses.count(503) >= 1
        assert all(retry == "1" for s, retry in results if s == 503)
        time.sleep(0.3)
        assert _detect_ok(host, port) == 200  # recovers once the burst is over


@pytest.mark.timeout(60)
def test_slow_client_is_cut_off_without_hurting_others() -> None:
    app = create_app(SlowFake(), settings=ServeSettings(timeout_s=1.0))
    with _live(app, timeout_keep_alive=1) as (host, port):
        slow = socket.create_connection((host, port), timeout=10)
        slow.sendall(b"POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 5000\r\n\r\n")
        slow.sendall(b"\x89PNG")  # then nothing more: a slowloris body
        started = time.monotonic()
        assert [_detect_ok(host, port) for _ in range(3)] == [200, 200, 200]  # others are served meanwhile
        assert time.monotonic() - started < 3
        slow.settimeout(8)
        reply = slow.recv(4096).decode("latin-1")  # the server answers (504) or closes: it does not wait forever
        slow.close()
        assert reply == "" or reply.startswith("HTTP/1.1 504"), reply[:100]
        assert time.monotonic() - started < 8


@pytest.mark.timeout(60)
def test_401_challenges_and_the_token_never_reaches_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = ServeSettings(token=TOKEN)
    assert TOKEN not in repr(settings)
    app = create_app(SlowFake(), settings=settings)
    with _live(app) as (host, port), httpx.Client(base_url=f"http://{host}:{port}", timeout=10) as client:
        for auth in ("", "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x"):
            response = client.get("/v1/model", headers={"authorization": auth} if auth else {})
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert TOKEN not in response.text
        assert _detect_ok(host, port, {"authorization": f"Bearer {TOKEN}"}) == 200
        junk = client.post("/v1/detect", content=b"junk", headers={"authorization": f"Bearer {TOKEN}"})
        assert junk.status_code == 415
    assert caplog.records, "expected some log records at DEBUG"
    for record in caplog.records:
        assert TOKEN not in record.getMessage() and TOKEN not in str(record.args)
    assert TOKEN not in caplog.text
