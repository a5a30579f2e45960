"""The endpoints of the service, auth, error shape and metrics, in process with a fake predictor."""

from __future__ import annotations

import asyncio

import pytest

from detforge.errors import ConfigError
from detforge.serving import LoadedModel, ServeSettings, create_app


def test_detect_multipart_and_raw_body(fake_predictor, image_bytes, serving) -> None:
    app = create_app(LoadedModel(fake_predictor(), name="toy", version="7"), settings=ServeSettings())
    data = image_bytes(40, 30)

    async def main() -> None:
        async with serving(app) as client:
            multipart = await client.post("/v1/detect", files={"image": ("a.png", data, "image/png")})
            raw = await client.post("/v1/detect", content=data, headers={"content-type": "image/png"})
            png = {"content-type": "image/png"}
            low = await client.post("/v1/detect?score_threshold=0.5", content=data, headers=png)
            for response in (multipart, raw):
                assert response.status_code == 200, response.text
                body = response.json()
                assert body["boxes"] == [[1.0, 2.0, 20.0, 15.0], [0.0, 0.0, 40.0, 30.0], [10.0, 7.5, 20.0, 15.0]]
                assert body["labels"] == ["cat", "dog", "cat"]
                assert body["class_ids"] == [0, 1, 0]
                assert body["scores"] == pytest.approx([0.9, 0.6, 0.3])
                assert body["image"] == {"width": 40, "height": 30}
                assert body["model"] == "toy"
                assert set(body["timing_ms"]) == {"queue", "inference", "total"}
                assert body["timing_ms"]["total"] >= body["timing_ms"]["inference"] >= 0
                assert body["texts"] == [None, None, None] and body["text_scores"] == [None, None, None]
            assert low.json()["scores"] == pytest.approx([0.9, 0.6])

    asyncio.run(main())


def test_default_threshold_and_model_info(fake_predictor, image_bytes, serving) -> None:
    model = LoadedModel(fake_predictor(), name="toy", version="3", score_threshold=0.7, input_size=(320, 640))
    app = create_app(model, settings=ServeSettings())

    async def main() -> None:
        async with serving(app) as client:
            info = (await client.get("/v1/model")).json()
            assert info == {
                "name": "toy",
                "classes": ["cat", "dog"],
                "version": "3",
                "score_threshold": 0.7,
                "score_threshold_calibrated": False,
                "input_size": [320, 640],
                "reads": False,
                "read_classes": None,
            }
            response = await client.post("/v1/detect", content=image_bytes(), headers={"content-type": "image/png"})
            assert response.json()["scores"] == pytest.approx([0.9])

    asyncio.run(main())


@pytest.mark.parametrize("value", ["1.5", "-0.1", "abc"])
def test_score_threshold_is_validated(value, fake_predictor, image_bytes, serving) -> None:
    app = create_app(fake_predictor(), settings=ServeSettings())

    async def main() -> None:
        async with serving(app) as client:
            response = await client.post(
                f"/v1/detect?score_threshold={value}", content=image_bytes(), headers={"content-type": "image/png"}
            )
            assert response.status_code == 422
            assert response.json()["error"]["code"] == "invalid_request"
            assert "score_threshold" in response.json()["error"]["message"]

    asyncio.run(main())


def test_health_readiness_waits_for_warm_up(fake_predictor, serving) -> None:
    import threading

    gate = threading.Event()
    predictor = fake_predictor(gate=gate)
    app = create_app(predictor, settings=ServeSettings())

    async def main() -> None:
        async with serving(app, ready=False) as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            not_ready = await client.get("/readyz")
            assert not_ready.status_code == 503
            assert not_ready.json()["error"]["code"] == "not_ready"
            gate.set()
            for _ in range(200):
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.01)
            assert (await client.get("/readyz")).json() == {"status": "ready"}
            assert predictor.batches == [1]  # the warm-up forward pass

    asyncio.run(main())


def test_token_guards_v1_endpoints(fake_predictor, image_bytes, serving) -> None:
    token = "s3cret-token-123"
    app = create_app(fake_predictor(), settings=ServeSettings(token=token))

    async def main() -> None:
        async with serving(app) as client:
            for headers in ({}, {"authorization": "Bearer wrong-token"}, {"authorization": f"Basic {token}"}):
                response = await client.get("/v1/model", headers=headers)
                assert response.status_code == 401
                assert response.headers["www-authenticate"].startswith("Bearer")
                assert response.json()["error"]["code"] == "unauthorized"
                assert token not in response.text
            denied = await client.post("/v1/detect", content=image_bytes(), headers={"content-type": "image/png"})
            assert denied.status_code == 401
            auth = {"authorization": f"Bearer {token}"}
            assert (await client.get("/v1/model", headers=auth)).status_code == 200
            ok = await client.post("/v1/detect", content=image_bytes(), headers={**auth, "content-type": "image/png"})
            assert ok.status_code == 200
            assert (await client.get("/healthz")).status_code == 200  # probes stay open

    asyncio.run(main())


def test_non_loopback_host_needs_token() -> None:
    with pytest.raises(ConfigError, match="without a token"):
        ServeSettings(host="0.0.0.0")
    assert ServeSettings(host="0.0.0.0", token="long-enough-token").host == "0.0.0.0"
    assert ServeSettings(host="::1").token is None
    assert "long-enough-token" not in repr(ServeSettings(token="long-enough-token"))


def test_errors_are_json_without_internals(fake_predictor, image_bytes, serving) -> None:
    secret = "/home/alice/models/private.pt"
    app = create_app(fake_predictor(error=RuntimeError(f"cannot open {secret}")), settings=ServeSettings())

    async def main() -> None:
        async with serving(app, ready=False) as client:
            crash = await client.post("/v1/detect", content=image_bytes(), headers={"content-type": "image/png"})
            assert crash.status_code == 500
            assert crash.json() == {"error": {"code": "internal_error", "message": "internal server error"}}
            missing = await client.get("/nope")
            assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
            wrong = await client.get("/v1/detect")
            assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
            for response in (crash, missing, wrong):
                assert "Traceback" not in response.text and "/home" not in response.text and ".py" not in response.text

    asyncio.run(main())


def test_metrics_count_requests_and_batches(fake_predictor, image_bytes, serving) -> None:
    app = create_app(fake_predictor(), settings=ServeSettings())

    async def main() -> None:
        async with serving(app) as client:
            await client.post("/v1/detect", content=image_bytes(), headers={"content-type": "image/png"})
            await client.post("/v1/detect", content=b"not an image", headers={"content-type": "image/png"})
            text = (await client.get("/metrics")).text
            assert 'detforge_requests_total{endpoint="/v1/detect",status="200"} 1.0' in text
            assert 'detforge_requests_total{endpoint="/v1/detect",status="415"} 1.0' in text
            assert 'detforge_request_seconds_count{endpoint="/v1/detect"} 2.0' in text
            assert "detforge_queue_depth 0.0" in text
            assert "detforge_batch_size_count 1.0" in text  # one request (the warm-up is not a batch)

    asyncio.run(main())


def test_cors_off_by_default_and_on_for_given_origins(fake_predictor, serving) -> None:
    origin = "http://localhost:3000"

    async def main() -> None:
        async with serving(create_app(fake_predictor(), settings=ServeSettings())) as client:
            response = await client.get("/v1/model", headers={"origin": origin})
            assert "access-control-allow-origin" not in response.headers
        app = create_app(fake_predictor(), settings=ServeSettings(cors_origins=(origin,)))
        async with serving(app) as client:
            response = await client.get("/v1/model", headers={"origin": origin})
            assert response.headers["access-control-allow-origin"] == origin

    asyncio.run(main())


def test_page_is_served_with_a_strict_policy(fake_predictor, serving) -> None:
    async def main() -> None:
        async with serving(create_app(fake_predictor(), settings=ServeSettings())) as client:
            page = await client.get("/")
            assert page.status_code == 200 and "<canvas" in page.text
            assert "script-src 'self'" in page.headers["content-security-policy"]
            script = await client.get("/static/app.js")
            assert script.status_code == 200 and "textContent" in script.text and "innerHTML" not in script.text
            assert (await client.get("/static/../server.py")).status_code == 404
            assert (await client.get("/static/index.py")).status_code == 404

    asyncio.run(main())
