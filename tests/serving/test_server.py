"""serve(): a real process that answers requests and, on SIGTERM, finishes the request in flight."""

from __future__ import annotations

import io
import json
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from detforge.errors import CheckpointError, ConfigError
from detforge.serving import ServeSettings, load_served_model

SCRIPT = textwrap.dedent(
    """
    import sys, time, torch
    from detforge.serving import LoadedModel, ServeSettings, serve
    from detforge.structures.detections import Detections

    class Slow:
        class_names = ("thing",)
        score_threshold = 0.0
        def predict_tensors(self, images):
            if images[0].shape[1] != 64:  # not the warm-up image
                time.sleep(1.0)
            return [Detections(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([0]), torch.tensor([0.8]),
                               (int(im.shape[1]), int(im.shape[2]))) for im in images]

    serve(sys.argv[1], ServeSettings(port=int(sys.argv[2])), loader=lambda p: LoadedModel(Slow(), name=p.stem))
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_sigterm_lets_the_request_in_flight_finish(tmp_path: Path, image_bytes) -> None:
    model = tmp_path / "toy-model.pt"
    model.write_bytes(b"fake")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(model), str(port)], stderr=subprocess.PIPE)
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=1) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
        result: dict[str, object] = {}

        def post() -> None:
            request = urllib.request.Request(
                base + "/v1/detect", data=image_bytes(20, 10), headers={"Content-Type": "image/png"}
            )
            with urllib.request.urlopen(request, timeout=10) as reply:
                result["status"] = reply.status
                result["body"] = json.load(io.TextIOWrapper(reply, encoding="utf-8"))

        client = threading.Thread(target=post)
        client.start()
        time.sleep(0.4)  # the request is in its 1 s forward pass
        proc.send_signal(signal.SIGTERM)
        client.join(15)
        # uvicorn re-raises the captured SIGTERM once its graceful shutdown is done
        assert proc.wait(15) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert result["status"] == 200
    body = result["body"]
    assert isinstance(body, dict) and body["model"] == "toy-model" and body["image"] == {"width": 20, "height": 10}


def test_load_served_model_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="is not a file"):
        load_served_model(tmp_path / "absent.pt")


def test_settings_reject_bad_values() -> None:
    for bad in ({"max_batch": 0}, {"port": 70000}, {"token": "short"}, {"cors_origins": ("evil",)}, {"timeout_s": -1}):
        with pytest.raises(ConfigError):
            ServeSettings(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 TLS to a plain-HTTP port\r\n\r\n",
    ],
    ids=["negative-length", "header-without-colon", "tls-hello"],
)
def test_requests_uvicorn_cannot_parse_get_the_json_error_shape(
    request_bytes: bytes, fake_predictor, live_server
) -> None:
    from detforge.serving import create_app
    from detforge.serving.server import uvicorn_config

    settings = ServeSettings()
    app = create_app(fake_predictor(), settings=settings)
    with live_server(app, uvicorn_config(app, settings)) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(request_bytes)
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:  # and the server goes on
            assert response.status == 200
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), reply
    assert b"content-type: application/json" in head.lower()
    error = json.loads(body)["error"]
    assert error["code"] == "bad_request" and error["message"].startswith("the request is not valid HTTP/1.1")
