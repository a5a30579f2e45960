"""Bearer-token check for the /v1 endpoints (constant-time compare; the token is never logged)."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import Request

from detforge.serving.http_errors import ApiError

__all__ = ["bearer_guard"]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="detforge"'}


def bearer_guard(token: str | None) -> Callable[[Request], None]:
    """A FastAPI dependency: with a `token`, requests without `Authorization: Bearer <token>` get 401
    (with WWW-Authenticate); without one, every request passes."""
    expected = None if token is None else token.encode("utf-8")

    def check(request: Request) -> None:
        if expected is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise ApiError(401, "unauthorized", "missing bearer token (Authorization: Bearer <token>)", _CHALLENGE)
        if not hmac.compare_digest(given.strip().encode("utf-8"), expected):
            raise ApiError(401, "unauthorized", "invalid bearer token", _CHALLENGE)

    return check
