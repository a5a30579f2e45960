"""ServeSettings: the validated knobs of the HTTP service, with safe defaults."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from detforge.errors import ConfigError

__all__ = ["DEFAULT_MAX_PIXELS", "ServeSettings", "is_loopback"]

DEFAULT_MAX_PIXELS = 50_000_000
"""Largest upload (width * height) the service decodes: a 50 MP phone photo fits, a decompression bomb does not."""


def is_loopback(host: str) -> bool:
    """True for "localhost" and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServeSettings:
    """How the service listens and what it accepts.

    host/port: where uvicorn binds; a host other than loopback needs a `token` (ConfigError otherwise).
    token: bearer token every /v1 endpoint requires when set. max_body_mb: largest request body (MB,
    10^6 bytes); max_pixels: largest image (width * height) decoded. max_batch / max_wait_ms: a batch
    is run when it holds max_batch images or its first image has waited max_wait_ms; the default 0 runs
    what is waiting at once, so batches grow by themselves while the model is busy and a lone request is
    never held back (a fixed wait costs a lone request that wait on every call). queue_size:
    images waiting for a batch before requests get 503. timeout_s: a detect request that takes longer
    gets 504. cors_origins: browser origins allowed to call the API (none: CORS off). reload_interval_s:
    how often the model file is polled for a replacement (server.py).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    max_body_mb: float = 20.0
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_batch: int = 8
    max_wait_ms: float = 0.0
    queue_size: int = 64
    timeout_s: float = 30.0
    cors_origins: tuple[str, ...] = ()
    reload_interval_s: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "cors_origins", tuple(self.cors_origins))
        if not isinstance(self.host, str) or not self.host:
            raise ConfigError(f"serve.host: expected a host name or address, got {self.host!r}")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ConfigError(f"serve.port: expected an integer in 0..65535, got {self.port!r}")
        if self.token is not None and (not isinstance(self.token, str) or len(self.token) < 8):
            raise ConfigError("serve.token: expected a string of at least 8 characters (value not shown)")
        if self.token is None and not is_loopback(self.host):
            raise ConfigError(
                f"serve.host: refusing to bind {self.host!r} without a token; set a token "
                "(every /v1 request then needs 'Authorization: Bearer <token>') or bind 127.0.0.1"
            )
        positive = {
            "max_body_mb": self.max_body_mb,
            "max_pixels": self.max_pixels,
            "max_batch": self.max_batch,
            "queue_size": self.queue_size,
            "timeout_s": self.timeout_s,
            "reload_interval_s": self.reload_interval_s,
        }
        for key, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigError(f"serve.{key}: expected a positive number, got {value!r}")
        for key in ("max_pixels", "max_batch", "queue_size"):
            if not isinstance(getattr(self, key), int):
                raise ConfigError(f"serve.{key}: expected an integer, got {getattr(self, key)!r}")
        if isinstance(self.max_wait_ms, bool) or not isinstance(self.max_wait_ms, int | float) or self.max_wait_ms < 0:
            raise ConfigError(f"serve.max_wait_ms: expected a number >= 0, got {self.max_wait_ms!r}")
        for origin in self.cors_origins:
            if not isinstance(origin, str) or not (origin == "*" or origin.startswith(("http://", "https://"))):
                raise ConfigError(f"serve.cors_origins: expected http(s)://host[:port] origins, got {origin!r}")

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1_000_000)

    def __repr__(self) -> str:  # never show the token
        token = None if self.token is None else "***"
        return (
            f"ServeSettings(host={self.host!r}, port={self.port}, token={token}, max_body_mb={self.max_body_mb}, "
            f"max_pixels={self.max_pixels}, max_batch={self.max_batch}, max_wait_ms={self.max_wait_ms}, "
            f"queue_size={self.queue_size}, timeout_s={self.timeout_s}, cors_origins={self.cors_origins})"
        )
