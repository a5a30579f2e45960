"""Arguments shared by the verbs that run a model: --runtime choices and the --read group."""

from __future__ import annotations

import argparse

__all__ = ["RUNTIMES", "RUNTIME_HELP", "add_read_arguments"]

RUNTIMES = ("auto", "onnxruntime", "openvino")
RUNTIME_HELP = "library that runs an .onnx model (auto: OpenVINO on CPU when installed, else ONNX Runtime)"


def add_read_arguments(p: argparse.ArgumentParser) -> None:
    """--read / --no-read, --read-classes, --read-pattern, --read-allow (dests as the API's parameters)."""
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--read",
        dest="read",
        action="store_const",
        const=True,
        default=None,
        help="read the text in the boxes even if the model was trained without transcriptions (default: read "
        "when the model has read settings)",
    )
    group.add_argument("--no-read", dest="read", action="store_const", const=False, help="do not read text")
    p.add_argument(
        "--read-classes",
        dest="read_classes",
        nargs="+",
        default=None,
        metavar="CLASS",
        help="classes whose boxes are read (default: the model's, else all)",
    )
    p.add_argument(
        "--read-pattern",
        dest="read_pattern",
        default=None,
        metavar="REGEX",
        help="a value read must match this regular expression in full (overrides the model's)",
    )
    p.add_argument(
        "--read-allow",
        dest="read_allow",
        default=None,
        metavar="CHARS",
        help="the characters a value may contain, e.g. 0123456789. (overrides the model's)",
    )
