"""The verbs of detforge's Python API. `detforge <verb>` on the command line calls these, with the
same parameter names. This package is the only place where configuration becomes objects."""

from detforge.api.data import check, convert, sample, show, split, stats
from detforge.api.evaluate import evaluate
from detforge.api.export import benchmark, export_model
from detforge.api.index import index
from detforge.api.models import list_models
from detforge.api.predict import predict
from detforge.api.serve import serve
from detforge.api.train import train

__all__ = [
    "benchmark",
    "check",
    "convert",
    "evaluate",
    "export_model",
    "index",
    "list_models",
    "predict",
    "sample",
    "serve",
    "show",
    "split",
    "stats",
    "train",
]
