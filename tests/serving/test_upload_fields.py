"""The service takes the one uploaded file of a multipart body under any field name (`file` is what most
clients and FastAPI examples send; only `image` was accepted, 422); OpenAPI still documents `image`."""

from __future__ import annotations

import asyncio

import pytest

from detforge.serving import LoadedModel, ServeSettings, create_app


@pytest.mark.parametrize("field", ["file", "image", "upload"])
def test_one_file_under_any_field_name(field: str, fake_predictor, image_bytes, serving) -> None:
    app = create_app(LoadedModel(fake_predictor(), name="toy", version="7"), settings=ServeSettings())
    data = image_bytes(40, 30)

    async def main() -> None:
        async with serving(app) as client:
            response = await client.post("/v1/detect", files={field: ("a.png", data, "image/png")}, data={"x": "1"})
            assert response.status_code == 200, response.text
            assert response.json()["image"] == {"width": 40, "height": 30}

    asyncio.run(main())


def test_two_files_or_none_are_a_clear_422(fake_predictor, image_bytes, serving) -> None:
    app = create_app(LoadedModel(fake_predictor(), name="toy", version="7"), settings=ServeSettings())
    data = image_bytes(40, 30)

    async def main() -> None:
        async with serving(app) as client:
            files = [("image", ("a.png", data, "image/png")), ("file", ("b.png", data, "image/png"))]
            two = await client.post("/v1/detect", files=files)
            assert two.status_code == 422
            assert two.json()["error"]["code"] == "too_many_files"
            message = "expected one image file in the multipart body, got 2: 'image', 'file'"
            assert two.json()["error"]["message"] == message
            boundary = "xyz"
            body = f'--{boundary}\r\nContent-Disposition: form-data; name="image"\r\n\r\nabc\r\n--{boundary}--\r\n'
            headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
            text_only = await client.post("/v1/detect", content=body.encode(), headers=headers)
            assert text_only.status_code == 422
            assert text_only.json()["error"]["message"] == (
                "expected one image file in the multipart body, got none (fields: 'image')"
            )

    asyncio.run(main())


def test_openapi_still_documents_the_image_field(fake_predictor, serving) -> None:
    app = create_app(LoadedModel(fake_predictor(), name="toy", version="7"), settings=ServeSettings())
    schema = app.openapi()["paths"]["/v1/detect"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["image"] and schema["properties"]["image"]["format"] == "binary"
    assert "any field name" in schema["properties"]["image"]["description"]
