"""`detforge.serve(...)`: put a model behind the HTTP API and web page."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["serve"]


def serve(
    model: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    max_batch: int = 8,
    max_wait_ms: float = 0.0,
    max_body_mb: float = 20.0,
    timeout_s: float = 30.0,
    runtime: str = "auto",
) -> None:
    """Serve `model` (a model artifact or an exported .onnx file, run by `runtime`: "auto", "onnxruntime"
    or "openvino") until SIGTERM/Ctrl-C: POST /v1/detect, the web page at /, health, readiness, model
    info and Prometheus metrics. Binding anything but loopback needs a bearer `token` (default: the
    DETFORGE_TOKEN environment variable). Replacing the model file reloads it.
    """
    from detforge.serving import ServeSettings, load_served_model
    from detforge.serving import serve as run

    settings = ServeSettings(
        host=host,
        port=port,
        token=token or os.environ.get("DETFORGE_TOKEN") or None,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        max_body_mb=max_body_mb,
        timeout_s=timeout_s,
    )
    run(Path(model), settings, loader=lambda p: load_served_model(p, batch_size=max_batch, runtime=runtime))
