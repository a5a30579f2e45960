"""The service returns the values read per box (texts, text_scores), documents them in the OpenAPI schema,
loads the model's read settings like predict, and reads on the batch worker."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from detforge.reading import ReadSettings
from detforge.serving import LoadedModel, ServeSettings, create_app, load_served_model
from read_fakes import FakeReader, constant_onnx


def test_detect_returns_texts_aligned_with_boxes(fake_predictor, image_bytes, serving) -> None:  # type: ignore[no-untyped-def]
    predictor = fake_predictor(texts=("3.14", None, ""))
    app = create_app(LoadedModel(predictor, name="toy"), settings=ServeSettings())

    async def main() -> None:
        async with serving(app) as client:
            png = {"content-type": "image/png"}
            body = (await client.post("/v1/detect?score_threshold=0", content=image_bytes(), headers=png)).json()
            assert body["labels"] == ["cat", "dog", "cat"]
            assert body["texts"] == ["3.14", None, ""]
            assert body["text_scores"] == [pytest.approx(0.8), None, pytest.approx(0.8)]
            high = (await client.post("/v1/detect?score_threshold=0.5", content=image_bytes(), headers=png)).json()
            assert high["texts"] == ["3.14", None] and len(high["text_scores"]) == 2  # filtered with their boxes

            schema = (await client.get("/openapi.json")).json()["components"]["schemas"]["DetectResponse"]
            assert {"texts", "text_scores"} <= set(schema["required"])
            assert (
                "null" in str(schema["properties"]["texts"])
                and "not read" in schema["properties"]["texts"]["description"]
            )

    asyncio.run(main())


def test_onnx_model_reads_without_flags_on_the_batch_worker(tmp_path: Path, image_bytes, serving) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("onnxruntime")
    path = constant_onnx(tmp_path / "reads.onnx", ReadSettings(classes=("number",)))
    reader = FakeReader(["3.14"])
    served = load_served_model(path, runtime="onnxruntime", reader=reader)
    predictor = served.predictor
    assert getattr(predictor, "read_min_box_score", None) == 0.5  # only boxes at the calibrated threshold
    app = create_app(served, settings=ServeSettings())

    async def main() -> None:
        async with serving(app) as client:
            info = (await client.get("/v1/model")).json()
            assert info["reads"] is True and info["read_classes"] == ["number"]
            png = {"content-type": "image/png"}
            body = (await client.post("/v1/detect?score_threshold=0", content=image_bytes(), headers=png)).json()
            assert body["labels"] == ["number", "figure"]  # an ONNX file's floor is its calibrated threshold
            assert body["texts"] == ["3.14", None]  # "figure" is not a read class
            assert body["text_scores"][0] == pytest.approx(0.9) and body["text_scores"][1] is None

    asyncio.run(main())
    assert reader.threads and all(name.startswith("detforge-batch") for name in reader.threads)
    # warm-up: the black image's boxes (this graph finds them anywhere) and a blank crop; then the request
    assert [len(boxes) for _, boxes in reader.calls] == [1, 1, 1] and reader.calls[-1][0] == (30, 40, 3)

    off = load_served_model(path, runtime="onnxruntime", read=False)
    assert getattr(off.predictor, "reader", "missing") is None
    plain = load_served_model(constant_onnx(tmp_path / "plain.onnx", None), runtime="onnxruntime")
    assert getattr(plain.predictor, "reader", "missing") is None
    forced = load_served_model(tmp_path / "plain.onnx", runtime="onnxruntime", read=True, reader=FakeReader())
    assert forced.predictor.predict_tensors([_blank()])[0].texts == ("12", "13")
    assert math.isclose(float(forced.score_threshold or 0), 0.5)


def _blank():  # type: ignore[no-untyped-def]
    import torch

    return torch.zeros((3, 40, 64), dtype=torch.uint8)
