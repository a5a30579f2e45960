"""`detforge.serve(...)`: put a model behind the HTTP API and web page."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from detforge.ranges import NON_NEGATIVE_FLOAT, PORT, POSITIVE_FLOAT, POSITIVE_INT, check_numbers

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
    read: bool | None = None,
    read_classes: Sequence[str] | None = None,
    read_pattern: str | None = None,
    read_allow: str | None = None,
) -> None:
    """Serve `model` (a model artifact or an exported .onnx file, run by `runtime`: "auto", "onnxruntime"
    or "openvino") until SIGTERM/Ctrl-C: POST /v1/detect, the web page at /, health, readiness, model
    info and Prometheus metrics. Binding anything but loopback needs a bearer `token` (default: the
    DETFORGE_TOKEN environment variable). Replacing the model file reloads it. The model's stored read
    settings apply (each box of a read class gets `text` and `text_score`); `read`, `read_classes`,
    `read_pattern`, `read_allow` override them as in `detforge.predict`.
    """
    check_numbers(
        port=(PORT, port),
        max_batch=(POSITIVE_INT, max_batch),
        max_wait_ms=(NON_NEGATIVE_FLOAT, max_wait_ms),
        max_body_mb=(POSITIVE_FLOAT, max_body_mb),
        timeout_s=(POSITIVE_FLOAT, timeout_s),
    )
    from detforge.serving import LoadedModel, ServeSettings, load_served_model
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

    def load(path: Path) -> LoadedModel:
        return load_served_model(
            path,
            batch_size=max_batch,
            runtime=runtime,
            read=read,
            read_classes=read_classes,
            read_pattern=read_pattern,
            read_allow=read_allow,
        )

    run(Path(model), settings, loader=load)
