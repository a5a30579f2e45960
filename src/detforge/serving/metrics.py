"""Prometheus metrics of one app (its own registry, no global state) and the ASGI middleware that counts
requests by endpoint and status."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "MetricsMiddleware", "ServingMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ServingMetrics:
    """detforge_requests_total{endpoint,status}, detforge_request_seconds{endpoint} (histogram),
    detforge_queue_depth (images waiting), detforge_batch_size (histogram of images per forward pass)."""

    def __init__(self, max_batch: int = 8) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "detforge_requests", "HTTP requests by endpoint and status", ["endpoint", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "detforge_request_seconds",
            "HTTP request latency in seconds",
            ["endpoint"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=self.registry,
        )
        self.queue_depth = Gauge("detforge_queue_depth", "images waiting for a batch", registry=self.registry)
        buckets = sorted({1, max_batch} | {b for b in (2, 4, 8, 16, 32, 64, 128) if b < max_batch})
        self.batch_size = Histogram(
            "detforge_batch_size",
            "images per forward pass",
            buckets=[float(b) for b in buckets],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts every HTTP request under its route template (`other` when no route matched)."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}
        started = time.perf_counter()

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            endpoint = str(getattr(route, "path", "other"))
            self.metrics.requests.labels(endpoint, str(status["code"])).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
