"""The verbs of detforge's Python API. `detforge <verb>` on the command line calls these, with the
same parameter names. This package is the only place where configuration becomes objects."""

from detforge.api.data import check, convert, sample, show, split, stats
from detforge.api.models import models

__all__ = ["check", "convert", "models", "sample", "show", "split", "stats"]
