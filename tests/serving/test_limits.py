"""Request limits: body size while reading, pixels before decoding, formats, timeout and a full queue."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import zlib
from typing import Any
from urllib.parse import urlparse

import pytest

from detforge.serving import ServeSettings, create_app
from detforge.serving.limits import BodyLimitMiddleware


def _png_header(width: int, height: int) -> bytes:
    """A PNG that only declares its size (no pixel data): what a decompression bomb's header looks like."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


async def _through_middleware(headers: list[tuple[bytes, bytes]], chunks: list[bytes], limit: int) -> dict[str, Any]:
    """Send `chunks` through BodyLimitMiddleware around an app that reads the whole body."""
    read: dict[str, int] = {"chunks": 0, "app_body": -1}
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RuntimeError("client disconnected")
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        read["app_body"] = len(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive() -> dict[str, Any]:
        i = read["chunks"]
        read["chunks"] += 1
        return {"type": "http.request", "body": chunks[i], "more_body": i + 1 < len(chunks)}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/detect", "headers": headers}
    await BodyLimitMiddleware(app, max_bytes=limit)(scope, receive, send)
    return {"status": sent[0]["status"], "chunks_read": read["chunks"], "app_body": read["app_body"], "sent": sent}


@pytest.mark.parametrize(
    "headers",
    [[(b"content-length", b"10")], [(b"transfer-encoding", b"chunked")]],
    ids=["lying-content-length", "chunked"],
)
def test_body_limit_counts_bytes_while_reading(headers) -> None:
    chunks = [b"x" * 1000] * 100  # 100 kB against a 2.5 kB limit
    result = asyncio.run(_through_middleware(headers, chunks, limit=2500))
    assert result["status"] == 413
    assert result["app_body"] == -1  # the app never saw a complete body
    assert len([m for m in result["sent"] if m["type"] == "http.response.start"]) == 1
    assert result["chunks_read"] == 100  # the rest was read and dropped after the 413 (see the drain tests)
    assert result["sent"][-1] == {"type": "http.response.body", "body": b"", "more_body": False}


def test_drain_after_a_413_is_bounded_in_bytes_and_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from detforge.serving import limits

    monkeypatch.setattr(limits, "DRAIN_BYTES", 10_000)
    endless = [b"x" * 1000] * 1000  # 1 MB still coming
    result = asyncio.run(_through_middleware([(b"content-length", b"1000000")], endless, limit=2500))
    assert result["status"] == 413 and result["chunks_read"] == 11  # just past DRAIN_BYTES, then closed

    monkeypatch.setattr(limits, "DRAIN_S", 0.05)

    async def stalled() -> float:
        sent: list[Any] = []

        async def receive() -> dict[str, Any]:
            await asyncio.sleep(3600)  # a client that announced a body and sends nothing
            raise AssertionError("unreachable")

        async def send(message: Any) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/", "headers": [(b"content-length", b"999999")]}
        loop = asyncio.get_running_loop()
        started = loop.time()
        await BodyLimitMiddleware(lambda *a: None, max_bytes=10)(scope, receive, send)  # type: ignore[arg-type,return-value]
        assert sent[0]["status"] == 413 and sent[-1]["more_body"] is False
        return loop.time() - started

    assert asyncio.run(stalled()) < 1.0

    async def waiting_for_continue() -> list[Any]:
        sent: list[Any] = []

        async def receive() -> dict[str, Any]:
            raise AssertionError("a client waiting for 100-continue has sent no body to read")

        async def send(message: Any) -> None:
            sent.append(message)

        headers = [(b"content-length", b"999999"), (b"expect", b"100-continue")]
        scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
        await BodyLimitMiddleware(lambda *a: None, max_bytes=10)(scope, receive, send)  # type: ignore[arg-type,return-value]
        return sent

    sent = asyncio.run(waiting_for_continue())
    assert sent[0]["status"] == 413 and sent[-1].get("more_body", False) is False


def test_a_client_still_sending_a_big_body_reads_the_413(fake_predictor, live_server) -> None:
    """Without the drain the server closed the socket with the body unread, TCP reset the connection
    and the client got a reset (on its write or its read) instead of the 413."""
    import httpx

    app = create_app(fake_predictor(), settings=ServeSettings(max_body_mb=0.064))
    body = b"\x89PNG" + b"x" * 4_000_000  # larger than the socket buffers: the client is still sending
    with live_server(app) as base:
        for _ in range(3):
            response = httpx.post(f"{base}/v1/detect", content=body, headers={"content-type": "image/png"}, timeout=10)
            assert response.status_code == 413
            assert response.json()["error"]["code"] == "payload_too_large"
        url = urlparse(base)
        for _ in range(3):  # a plain client: send the whole request, then read the answer
            with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
                head = f"POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
                sock.sendall(head.encode() + body)
                reply = _read_reply(sock)
            assert reply.startswith("HTTP/1.1 413") and '"payload_too_large"' in reply


def test_body_limit_passes_bodies_within_the_limit() -> None:
    result = asyncio.run(_through_middleware([(b"content-length", b"2000")], [b"x" * 1000] * 2, limit=2500))
    assert result["status"] == 200 and result["app_body"] == 2000


def _read_reply(sock: socket.socket, limit: int = 65536) -> str:
    """The server's whole reply (headers and body may arrive in separate packets); bounded in size and time."""
    data = b""
    while len(data) < limit:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        lengths = [
            int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        ]
        if sep and lengths and len(body) >= lengths[0]:
            break
    return data.decode("latin-1")


def test_honest_content_length_is_refused_before_the_body_is_sent(fake_predictor, live_server) -> None:
    app = create_app(fake_predictor(), settings=ServeSettings(max_body_mb=1))
    with live_server(app) as base:
        url = urlparse(base)
        with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
            head = (
                "POST /v1/detect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                "Content-Length: 500000000\r\n\r\n"
            )
            sock.sendall(head.encode() + b"\x89PNG")  # 500 MB announced, 4 bytes sent
            reply = _read_reply(sock)
    assert reply.startswith("HTTP/1.1 413")
    assert '"payload_too_large"' in reply


def _post(client: Any, data: bytes, content_type: str = "image/png") -> Any:
    return client.post("/v1/detect", content=data, headers={"content-type": content_type})


def test_pixel_format_and_decoding_limits(fake_predictor, image_bytes, serving) -> None:
    app = create_app(fake_predictor(), settings=ServeSettings(max_pixels=10_000))

    async def main() -> None:
        async with serving(app) as client:
            cases = {
                "large": (await _post(client, image_bytes(200, 100)), 413, "too_many_pixels"),
                "bomb": (await _post(client, _png_header(100_000, 100_000)), 413, "too_many_pixels"),
                "gif": (await _post(client, image_bytes(20, 20, fmt="GIF")), 415, "unsupported_image_format"),
                "text": (await _post(client, b"hello world"), 415, "unsupported_image_format"),
                "type": (await _post(client, image_bytes(), "text/plain"), 415, "unsupported_media_type"),
                "truncated": (await _post(client, image_bytes(60, 60)[:200]), 422, "invalid_image"),
                "empty": (await _post(client, b""), 422, "invalid_image"),
                "no-field": (
                    await client.post("/v1/detect", files={"image": (None, "a text field, no file")}),
                    422,
                    "missing_image",
                ),
            }
            for name, (response, status, code) in cases.items():
                assert (name, response.status_code) == (name, status), response.text
                assert response.json()["error"]["code"] == code
            for fmt in ("JPEG", "PNG", "WEBP", "BMP", "TIFF"):
                assert (await _post(client, image_bytes(50, 40, fmt=fmt))).status_code == 200, fmt

    asyncio.run(main())


def test_slow_prediction_times_out_with_504(fake_predictor, image_bytes, serving) -> None:
    app = create_app(fake_predictor(delay=0.5), settings=ServeSettings(timeout_s=0.2))

    async def main() -> None:
        async with serving(app) as client:
            response = await _post(client, image_bytes())
            assert response.status_code == 504
            assert response.json()["error"]["code"] == "timeout"

    asyncio.run(main())


def test_full_queue_answers_503_with_retry_after(fake_predictor, image_bytes, serving) -> None:
    gate = threading.Event()
    predictor = fake_predictor()
    app = create_app(predictor, settings=ServeSettings(queue_size=1, max_batch=1, max_wait_ms=0))

    async def main() -> None:
        async with serving(app) as client:
            predictor.gate = gate  # after warm-up: every batch now blocks until the gate opens
            predictor.started.clear()
            first = asyncio.create_task(_post(client, image_bytes()))
            await asyncio.to_thread(predictor.started.wait, 5)  # first image is in the forward pass
            second = asyncio.create_task(_post(client, image_bytes()))  # waits in the queue
            for _ in range(200):
                if app.state.batcher.depth == 1:
                    break
                await asyncio.sleep(0.01)
            third = await _post(client, image_bytes())
            gate.set()
            assert third.status_code == 503
            assert third.headers["retry-after"] == "1"
            assert third.json()["error"]["code"] == "queue_full"
            assert (await first).status_code == 200 and (await second).status_code == 200

    asyncio.run(main())
