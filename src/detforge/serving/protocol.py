"""The HTTP/1.1 protocol `detforge serve` runs under uvicorn: uvicorn's own (httptools when installed, else
h11, as uvicorn chooses), except that a request uvicorn cannot parse (e.g. `Content-Length: -5`) is answered
400 in the service's JSON error shape instead of uvicorn's plain text."""

from __future__ import annotations

import asyncio

from detforge.serving.http_errors import error_json

__all__ = ["bad_request_reply", "json_error_protocol"]


def bad_request_reply(detail: str) -> bytes:
    """A complete HTTP/1.1 400 response (JSON body {"error": {"code", "message"}}, connection closed)."""
    message = f"the request is not valid HTTP/1.1 ({detail.strip().rstrip('.') or 'unparsable'})"
    body = error_json("bad_request", message)
    head = (
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def json_error_protocol() -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class with JSON 400s for unparsable requests (pass as `uvicorn.Config(http=...)`)."""
    base: type[asyncio.Protocol]
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # needs the httptools package

        base = HttpToolsProtocol
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol

        base = H11Protocol

    class JsonErrorProtocol(base):  # type: ignore[valid-type,misc]
        def send_400_response(self, msg: str) -> None:
            self.transport.write(bad_request_reply(msg))
            self.transport.close()

    return JsonErrorProtocol
