"""Exception types, one per area. Messages name the file/line/id/key, the value and what was expected."""

from __future__ import annotations

__all__ = ["CheckpointError", "ConfigError", "DatasetError", "DetforgeError", "InvalidImage"]


class DetforgeError(Exception):
    """Base of every error detforge raises on purpose; the CLI prints these without a traceback."""


class DatasetError(DetforgeError, ValueError):
    """A dataset (annotations, layout or images) cannot be read as the expected format."""


class ConfigError(DetforgeError, ValueError):
    """A configuration key or value is invalid."""


class CheckpointError(DetforgeError, ValueError):
    """A checkpoint or model artifact is missing, corrupt or does not match the model."""


class InvalidImage(DetforgeError, ValueError):
    """An image file or buffer cannot be decoded safely."""
