"""detforge: from a folder of labelled images to a trained, measured, deployed object detector.

The public API (same verbs and parameter names as the `detforge` command line)::

    import detforge
    ds = detforge.load_dataset("my_export/")        # COCO, YOLO, VOC, CVAT, LabelMe, Label Studio
    report = detforge.check(ds)                     # or detforge.check("my_export/")
    detforge.split(ds, out="split/", ratios=(0.8, 0.1, 0.1))

Importing detforge does not import torch; training and inference import it when used.
"""

from detforge._version import __version__
from detforge.api import (
    benchmark,
    check,
    convert,
    evaluate,
    export_model,
    index,
    list_models,
    predict,
    sample,
    serve,
    show,
    split,
    stats,
    train,
)
from detforge.data.dataset import Dataset
from detforge.data.formats import load_dataset, write_dataset
from detforge.errors import CheckpointError, ConfigError, DatasetError, DetforgeError, InvalidImage

__all__ = [
    "CheckpointError",
    "ConfigError",
    "Dataset",
    "DatasetError",
    "DetforgeError",
    "InvalidImage",
    "__version__",
    "benchmark",
    "check",
    "convert",
    "evaluate",
    "export_model",
    "index",
    "list_models",
    "load_dataset",
    "predict",
    "sample",
    "serve",
    "show",
    "split",
    "stats",
    "train",
    "write_dataset",
]
