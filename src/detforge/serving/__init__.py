"""The HTTP service: detection API with dynamic batching, limits, auth, metrics, hot reload and a web page."""

from detforge.serving.app import create_app
from detforge.serving.batching import Batcher, BatchResult, QueueFull, ShuttingDown
from detforge.serving.http_errors import ApiError
from detforge.serving.reload import LoadedModel, ModelHolder, ModelWatcher, ServingPredictor, warm_up
from detforge.serving.server import load_served_model, serve
from detforge.serving.settings import DEFAULT_MAX_PIXELS, ServeSettings

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ApiError",
    "BatchResult",
    "Batcher",
    "LoadedModel",
    "ModelHolder",
    "ModelWatcher",
    "QueueFull",
    "ServeSettings",
    "ServingPredictor",
    "ShuttingDown",
    "create_app",
    "load_served_model",
    "serve",
    "warm_up",
]
