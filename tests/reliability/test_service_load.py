"""Load and memory growth of the HTTP service: a real uvicorn server in a subprocess on 127.0.0.1 around a fast
fake predictor, driven by a bounded asyncio load generator (httpx, every request with a timeout).

Over capacity the extra requests are refused at once (503 + Retry-After) while admitted ones keep a bounded
p99; thousands of mixed requests (valid, corrupt, oversized, unauthorised) do not grow the server's RSS.

This file is also the server: `python test_service_load.py serve <fd> <options json>` serves on the
listening socket `fd` until SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

TOKEN = "load-test-token-0123"
AUTH = {"authorization": f"Bearer {TOKEN}"}


# --------------------------------------------------------------------------------------------------- server side


class FastFake:
    """A predictor of one full-image box per image; each batch sleeps `delay_s` (the cost of a forward pass)."""

    class_names: tuple[str, ...] = ("thing", "other")
    score_threshold = 0.0

    def __init__(self, delay_s: float, keep_images: bool = False) -> None:
        self.delay_s = delay_s
        self.kept: list[Any] | None = [] if keep_images else None  # a deliberate leak, to test the memory test

    def predict_tensors(self, images: Sequence[Any]) -> list[Any]:
        import torch

        from detforge.structures.detections import Detections

        time.sleep(self.delay_s)
        if self.kept is not None:
            self.kept.extend(images)
        out = []
        for image in images:
            h, w = int(image.shape[1]), int(image.shape[2])
            box = torch.tensor([[0.0, 0.0, float(w), float(h)]])
            out.append(Detections(box, torch.tensor([0]), torch.tensor([0.9]), (h, w)))
        return out


def _serve_child(fd: int, options: dict[str, Any]) -> None:
    """Serve create_app(FastFake) on the inherited listening socket `fd` until SIGTERM."""
    import ctypes

    import uvicorn

    from detforge.serving import LoadedModel, ServeSettings, create_app

    with contextlib.suppress(OSError, AttributeError):  # Linux: stop with the test process, even if it is killed
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    settings = ServeSettings(**options["settings"])
    fake = FastFake(float(options["delay_s"]), keep_images=bool(options.get("keep_images", False)))
    app = create_app(LoadedModel(fake, name="fake"), settings=settings)
    sock = socket.socket(fileno=fd)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False, timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])


# --------------------------------------------------------------------------------------------------- client side


@dataclass(frozen=True)
class Server:
    """A server subprocess: its base URL and pid (for /proc/<pid>/status)."""

    url: str
    pid: int

    def rss_bytes(self) -> int:
        """Resident set size (VmRSS) of the server process in bytes."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no VmRSS in /proc/{self.pid}/status")


@contextlib.contextmanager
def serve_subprocess(tmp_path: Path, *, delay_s: float, keep_images: bool = False, **settings: Any) -> Iterator[Server]:
    """Start this file as a server (FastFake taking `delay_s` per batch, ServeSettings(**settings)) on a free
    127.0.0.1 port, wait until /readyz is 200, stop it (SIGTERM, then SIGKILL) on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    port = sock.getsockname()[1]
    options = json.dumps({"delay_s": delay_s, "keep_images": keep_images, "settings": settings})
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, __file__, "serve", str(sock.fileno()), options],
        pass_fds=(sock.fileno(),),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    sock.close()  # the child holds the listening socket now
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"server exited ({proc.returncode}): {(tmp_path / 'server.log').read_text()}"
            assert time.monotonic() < deadline, "server not ready within 60 s"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            time.sleep(0.05)
        yield Server(url, proc.pid)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log.close()


@dataclass(frozen=True)
class Req:
    """One request to send and the statuses it may get."""

    method: str
    path: str
    expect: frozenset[int]
    content: bytes | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What came back: status (0 for a transport error), seconds from send to full response, Retry-After,
    the JSON error code (or None), and the transport error's name."""

    req: Req
    status: int
    seconds: float
    retry_after: str | None = None
    error_code: str | None = None
    transport_error: str | None = None


async def _send(client: httpx.AsyncClient, req: Req, timeout_s: float) -> Outcome:
    started = time.perf_counter()
    try:
        response = await client.request(
            req.method, req.path, content=req.content, files=req.files, headers=req.headers, timeout=timeout_s
        )
    except httpx.HTTPError as exc:
        return Outcome(req, 0, time.perf_counter() - started, transport_error=type(exc).__name__)
    seconds = time.perf_counter() - started
    code = None
    if response.status_code >= 400:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            code = str(response.json()["error"]["code"])
    return Outcome(req, response.status_code, seconds, response.headers.get("retry-after"), code)


async def _blast(
    url: str, requests: Sequence[Req], *, concurrency: int, timeout_s: float, rate_per_s: float | None
) -> list[Outcome]:
    results: list[Outcome | None] = [None] * len(requests)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout_s) as client:
        # open every connection first, so that the timings below are of requests, not of TCP handshakes
        opened = await asyncio.gather(*(client.get("/healthz", timeout=timeout_s) for _ in range(concurrency)))
        assert all(r.status_code == 200 for r in opened)

        async def one(i: int) -> None:
            results[i] = await _send(client, requests[i], timeout_s)

        if rate_per_s is None:  # closed loop: `concurrency` clients, each sends its next request on an answer
            cursor = iter(range(len(requests)))

            async def worker() -> None:
                for i in cursor:
                    await one(i)

            await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), timeout_s * len(requests))
        else:  # open loop: request i starts at i / rate_per_s seconds, whatever the answers (at most `concurrency`)
            slots = asyncio.Semaphore(concurrency)
            tasks = []
            started = time.perf_counter()

            async def bounded(i: int) -> None:
                try:
                    await one(i)
                finally:
                    slots.release()

            for i in range(len(requests)):
                await asyncio.sleep(max(0.0, started + i / rate_per_s - time.perf_counter()))
                await asyncio.wait_for(slots.acquire(), timeout_s)
                tasks.append(asyncio.create_task(bounded(i)))
            await asyncio.wait_for(asyncio.gather(*tasks), timeout_s)
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


def blast(
    url: str,
    requests: Sequence[Req],
    *,
    concurrency: int,
    timeout_s: float = 10.0,
    rate_per_s: float | None = None,
) -> list[Outcome]:
    """Send `requests` on `concurrency` already open keep-alive connections, every request with a `timeout_s`
    limit: closed loop (each of `concurrency` clients sends its next request when answered) or, with
    `rate_per_s`, open loop (request i is sent i / rate_per_s s after the first, at most `concurrency` in
    flight). Outcomes in request order."""
    return asyncio.run(_blast(url, requests, concurrency=concurrency, timeout_s=timeout_s, rate_per_s=rate_per_s))


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank."""
    ordered = sorted(values)
    rank = max(1, int(np.ceil(q / 100.0 * len(ordered))))
    return ordered[rank - 1]


# --------------------------------------------------------------------------------------------------- payloads


def png(width: int, height: int, seed: int = 0) -> bytes:
    """A smooth (so small to send, but full size to decode) RGB PNG."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    rgb = np.stack([x + 0 * y, y + 0 * x, (x + y + seed) % 256], axis=-1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def pixel_bomb_png(width: int = 60_000, height: int = 60_000) -> bytes:
    """A tiny PNG whose header claims `width` x `height` pixels."""
    data = bytearray(png(4, 4))
    ihdr = bytes(data[12:16]) + struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr) & 0xFFFFFFFF)
    return bytes(data)


def mixed_requests(n: int, *, max_body_bytes: int, seed: int = 0) -> list[Req]:
    """`n` requests in a seeded random mix: valid images (raw and multipart, several sizes), corrupt and
    unknown bytes, bodies over the limit, pixel bombs, missing/wrong tokens, and the GET endpoints."""
    rng = np.random.default_rng(seed)
    images = [png(w, h, s) for s, (w, h) in enumerate([(64, 48), (320, 240), (200, 300), (33, 17)])]
    truncated = images[1][: len(images[1]) // 2]
    oversized = b"\x89PNG\r\n\x1a\n" + bytes(max_body_bytes + 1000)
    ok, img = frozenset({200}), {"content-type": "image/png"}
    kinds: list[tuple[float, Any]] = [
        (0.40, lambda i: Req("POST", "/v1/detect", ok, images[i % 4], headers={**img, **AUTH})),
        (0.10, lambda i: Req("POST", "/v1/detect", ok, files={"image": ("a.png", images[i % 4], "image/png")},
                             headers=AUTH)),
        (0.06, lambda i: Req("POST", "/v1/detect", frozenset({422}), truncated, headers={**img, **AUTH})),
        (0.06, lambda i: Req("POST", "/v1/detect", frozenset({415}), rng.bytes(2000), headers={**img, **AUTH})),
        (0.04, lambda i: Req("POST", "/v1/detect", frozenset({415}), b"{}", headers={"content-type": "text/json",
                                                                                    **AUTH})),
        (0.06, lambda i: Req("POST", "/v1/detect", frozenset({413}), oversized, headers={**img, **AUTH})),
        (0.06, lambda i: Req("POST", "/v1/detect", frozenset({413}), pixel_bomb_png(), headers={**img, **AUTH})),
        (0.06, lambda i: Req("POST", "/v1/detect", frozenset({401}), images[0], headers=img)),
        (0.04, lambda i: Req("POST", "/v1/detect", frozenset({401}), images[0],
                             headers={**img, "authorization": f"Bearer wrong-{i}"})),
        (0.04, lambda i: Req("GET", "/v1/model", ok, headers=AUTH)),
        (0.03, lambda i: Req("GET", "/healthz", ok)),
        (0.03, lambda i: Req("GET", "/metrics", ok)),
        (0.02, lambda i: Req("GET", f"/no/such/path/{i}", frozenset({404}))),
    ]  # fmt: skip
    weights = np.array([w for w, _ in kinds])
    choice = rng.choice(len(kinds), size=n, p=weights / weights.sum())
    return [kinds[k][1](i) for i, k in enumerate(choice)]


def assert_all_expected(outcomes: Sequence[Outcome]) -> None:
    """Every request got one of its expected statuses, no transport error, and every error body its code."""
    bad = [(o.req.method, o.req.path, o.status, o.transport_error) for o in outcomes if o.status not in o.req.expect]
    assert not bad, f"{len(bad)} unexpected outcomes, e.g. {bad[:5]}"
    assert all(o.error_code for o in outcomes if o.status >= 400)


# --------------------------------------------------------------------------------------------------- tests


@pytest.mark.timeout(90)
def test_over_capacity_requests_are_refused_at_once_and_admitted_ones_keep_a_bounded_p99(tmp_path: Path) -> None:
    """Batches of up to 2 images taking 50 ms (capacity 40 images/s), a queue of 4, and 240 requests arriving at
    100/s (open loop). An admitted request waits at most for the running batch and ceil(4/2) = 2 queued ones,
    i.e. ~3 forward passes (~150 ms) plus HTTP overhead: its p99 must stay under 10x the median latency of a
    lone request (>= 50 ms, so >= 500 ms). Refusals need no forward pass: each must come back within 100 ms."""
    delay_s = 0.05
    detect = Req("POST", "/v1/detect", frozenset({200, 503}), png(64, 48), headers={"content-type": "image/png"})
    with serve_subprocess(tmp_path, delay_s=delay_s, max_batch=2, max_wait_ms=2, queue_size=4, timeout_s=10) as srv:
        lone = blast(srv.url, [detect] * 20, concurrency=1)
        assert [o.status for o in lone] == [200] * 20
        single_s = statistics.median(o.seconds for o in lone)
        assert single_s >= delay_s

        outcomes = blast(srv.url, [detect] * 240, concurrency=64, rate_per_s=100)
        after = blast(srv.url, [detect] * 3, concurrency=1)

    statuses = [o.status for o in outcomes]
    assert set(statuses) <= {200, 503}, sorted(set(statuses))  # no other 5xx, no transport error
    admitted = [o.seconds for o in outcomes if o.status == 200]
    refused = [o for o in outcomes if o.status == 503]
    assert len(refused) >= 40 and len(admitted) >= 40, (len(refused), len(admitted))
    assert all(o.retry_after is not None and int(o.retry_after) >= 1 for o in refused)
    assert {o.error_code for o in refused} == {"queue_full"}
    slowest_refusal = max(o.seconds for o in refused)
    assert slowest_refusal < 0.1, f"a refusal took {slowest_refusal * 1000:.0f} ms"
    p99 = percentile(admitted, 99)
    assert p99 < 10 * single_s, f"admitted p99 {p99 * 1000:.0f} ms vs lone request {single_s * 1000:.0f} ms"
    assert [o.status for o in after] == [200] * 3  # served normally once the burst is over
    print(
        f"\nload: lone median {single_s * 1000:.1f} ms; {len(outcomes)} requests at 100/s: {len(admitted)} admitted "
        f"(p50 {percentile(admitted, 50) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms), {len(refused)} refused with 503 "
        f"(p50 {percentile([o.seconds for o in refused], 50) * 1000:.1f} ms, max {slowest_refusal * 1000:.1f} ms)"
    )


def _memory_growth(
    tmp_path: Path, *, total: int, warm_up: int, keep_images: bool = False
) -> tuple[int, int, list[Outcome]]:
    """Server RSS in bytes after `warm_up` of `total` mixed requests and at the end, and every outcome."""
    max_body = 200_000
    requests = mixed_requests(total, max_body_bytes=max_body, seed=total)
    settings: dict[str, Any] = {"token": TOKEN, "max_body_mb": max_body / 1e6, "max_pixels": 4_000_000}
    with serve_subprocess(tmp_path, delay_s=0.002, keep_images=keep_images, **settings) as srv:
        outcomes = blast(srv.url, requests[:warm_up], concurrency=8)
        before = srv.rss_bytes()
        outcomes += blast(srv.url, requests[warm_up:], concurrency=8)
        after = srv.rss_bytes()
    return before, after, outcomes


def _report(name: str, before: int, after: int, outcomes: Sequence[Outcome], seconds: float) -> None:
    counts: dict[int, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    mib = 1 << 20
    print(
        f"\n{name}: {len(outcomes)} requests in {seconds:.1f} s, statuses {dict(sorted(counts.items()))}; server RSS "
        f"{before / mib:.1f} MiB after warm-up -> {after / mib:.1f} MiB (growth {(after - before) / mib:+.1f} MiB)"
    )


@pytest.mark.timeout(60)
def test_one_thousand_mixed_requests_do_not_grow_server_memory(tmp_path: Path) -> None:
    """1,000 requests, RSS measured after the first 200: growth under 15 MiB. Each valid request decodes 9 kB
    to 230 kB of pixels, so keeping even a tenth of them would add tens of MiB."""
    started = time.monotonic()
    before, after, outcomes = _memory_growth(tmp_path, total=1000, warm_up=200)
    _report("memory (fast)", before, after, outcomes, time.monotonic() - started)
    assert_all_expected(outcomes)
    assert after - before < 15 << 20


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_ten_thousand_mixed_requests_do_not_grow_server_memory(tmp_path: Path) -> None:
    """10,000 requests, RSS measured after a warm-up of 1,000 (allocator arenas, caches and metric label sets
    are then in place): growth under 30 MiB, i.e. under 3.5 kB per request, less than one 40x30 image."""
    started = time.monotonic()
    before, after, outcomes = _memory_growth(tmp_path, total=10_000, warm_up=1000)
    _report("memory (10k)", before, after, outcomes, time.monotonic() - started)
    assert_all_expected(outcomes)
    assert after - before < 30 << 20


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_the_memory_check_catches_a_server_that_keeps_every_image(tmp_path: Path) -> None:
    """The measurement itself: the fast test's 1,000 requests through a server whose model keeps each decoded
    image (~480 images after the warm-up, ~105 kB each) grow its RSS past the fast test's 15 MiB bound."""
    started = time.monotonic()
    before, after, outcomes = _memory_growth(tmp_path, total=1000, warm_up=200, keep_images=True)
    _report("memory (deliberate leak)", before, after, outcomes, time.monotonic() - started)
    assert_all_expected(outcomes)
    assert after - before > 15 << 20


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "serve":
    _serve_child(int(sys.argv[2]), json.loads(sys.argv[3]))
