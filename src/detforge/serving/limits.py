"""Request limits: body size counted while reading (ASGI middleware), image format and pixel count checked
from the header before any pixel is decoded."""

from __future__ import annotations

import asyncio
import io
import warnings
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from detforge.errors import InvalidImage
from detforge.inference.sources import load_image_bytes
from detforge.serving.http_errors import ApiError, error_json

__all__ = ["ALLOWED_FORMATS", "BodyLimitMiddleware", "decode_upload", "sniff_format"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# After a 413 the server goes on reading (and dropping) the rest of the body for this long / this much, so
# the client, still sending, is not reset before it reads the answer (closing a socket with unread data
# makes TCP reset the connection, and the reset can overtake the 413).
DRAIN_S = 1.0
DRAIN_BYTES = 64 * 1024 * 1024

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF")
"""Image formats /v1/detect accepts (by their leading bytes); anything else is 415."""


def sniff_format(data: bytes) -> str | None:
    """The format named by `data`'s leading bytes (one of ALLOWED_FORMATS), None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data.startswith(b"BM"):
        return "BMP"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    return None


async def _drain(receive: Receive) -> int:
    """Read and drop request body messages until the body ends, the client leaves, `DRAIN_S` seconds pass
    or more than `DRAIN_BYTES` bytes were read; returns the bytes read."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DRAIN_S
    read = 0
    while read <= DRAIN_BYTES:
        try:
            message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.0))
        except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
            break
        if message["type"] != "http.request":
            break
        read += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return read


class BodyLimitMiddleware:
    """Answers 413 once a request body is known to exceed `max_bytes`: at once when Content-Length says
    so, otherwise as soon as the bytes received so far pass the limit (a lying Content-Length or a
    chunked body). The app never sees that body; the rest of it is read and dropped for at most `DRAIN_S`
    seconds and `DRAIN_BYTES` bytes after the 413 is sent (not when the client waits for
    `100-continue`: it has sent nothing), then the connection is closed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, send: Send, receive: Receive, *, drain: bool) -> None:
        body = error_json("payload_too_large", f"request body exceeds the limit of {self.max_bytes} bytes")
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": drain})
        if drain:
            await _drain(receive)
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        expects_continue = False
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
            elif name == b"expect" and value.lower() == b"100-continue":
                expects_continue = True
        if declared is not None and declared > self.max_bytes:
            await self._reject(send, receive, drain=not expects_continue)
            return
        state = {"received": 0, "rejected": False, "started": False}

        async def limited_receive() -> Message:
            if state["rejected"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_bytes:
                    if not state["started"]:
                        state["rejected"] = True
                        await self._reject(send, receive, drain=bool(message.get("more_body")))
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if state["rejected"]:
                return  # the 413 has been sent; the app's own answer is dropped
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not state["rejected"]:
                raise


def decode_upload(data: bytes, max_pixels: int) -> Tensor:
    """uint8 [3, H, W] RGB tensor of an uploaded image in its displayed (EXIF-oriented) frame.

    ApiError 415 for a format outside ALLOWED_FORMATS, 413 for more than `max_pixels` pixels (read from
    the header, before decoding), 422 for empty, corrupt or truncated data.
    """
    if not data:
        raise ApiError(422, "invalid_image", "the request carries no image data")
    fmt = sniff_format(data)
    if fmt is None:
        raise ApiError(415, "unsupported_image_format", f"expected one of {', '.join(ALLOWED_FORMATS)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as im:
                width, height = im.size
    except Image.DecompressionBombError:
        raise ApiError(413, "too_many_pixels", f"the image has more than {max_pixels} pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise ApiError(422, "invalid_image", f"cannot read the {fmt} header") from None
    if width * height > max_pixels:
        raise ApiError(
            413, "too_many_pixels", f"the image is {width}x{height} pixels, more than the limit of {max_pixels}"
        )
    try:
        image = load_image_bytes(data, name="upload", max_pixels=max_pixels)
    except InvalidImage:
        raise ApiError(422, "invalid_image", f"cannot decode the {fmt} image (corrupt or truncated)") from None
    array = np.asarray(image, dtype=np.uint8)
    # HWC -> CHW in numpy: a torch copy here would start an OpenMP team on this thread (serving/compute.py)
    return torch.from_numpy(np.array(array.transpose(2, 0, 1), order="C"))  # a writable copy
