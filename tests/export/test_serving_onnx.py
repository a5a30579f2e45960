"""An exported ONNX file is served by `detforge serve` exactly like the model artifact it came from."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from detforge.serving import ServeSettings, create_app, load_served_model


def _png(width: int = 96, height: int = 72) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_onnx_file_is_served_like_the_artifact(tiny_onnx, tiny_artifact) -> None:  # type: ignore[no-untyped-def]
    bodies = []
    for path in (tiny_artifact, tiny_onnx.path):
        served = load_served_model(path, batch_size=2, device="cpu")
        with TestClient(create_app(served, settings=ServeSettings())) as client:
            info = client.get("/v1/model").json()
            response = client.post(
                "/v1/detect?score_threshold=0", content=_png(), headers={"content-type": "image/png"}
            )
        assert response.status_code == 200, response.text
        bodies.append((info, response.json()))
    (info_pt, pt), (info_onnx, onnx) = bodies
    assert info_onnx["classes"] == info_pt["classes"]
    assert info_onnx["input_size"] == info_pt["input_size"] is not None  # was null for ONNX files
    assert len(onnx["boxes"]) == len(pt["boxes"])
    if pt["boxes"]:
        assert np.abs(np.array(onnx["boxes"]) - np.array(pt["boxes"])).max() < 0.05
