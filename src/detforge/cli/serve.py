"""`detforge serve`."""

from __future__ import annotations

import argparse
from pathlib import Path

from detforge.cli import _checks as checks
from detforge.cli._checks import non_negative_float, port, positive_float, positive_int
from detforge.cli._model_args import RUNTIME_HELP, RUNTIMES, add_read_arguments

__all__ = ["add_parser"]


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = commands.add_parser("serve", help="HTTP API + web page for a model (127.0.0.1:8000 by default)")
    p.add_argument("model", type=Path)
    p.add_argument("--host", default="127.0.0.1", help="address to bind; non-loopback requires a token")
    p.add_argument("--port", type=port, default=8000)
    p.add_argument("--token", default=None, help="bearer token required by /v1 (default: $DETFORGE_TOKEN)")
    p.add_argument("--max-batch", dest="max_batch", type=positive_int, default=8)
    p.add_argument(
        "--max-wait-ms",
        dest="max_wait_ms",
        type=non_negative_float,
        default=0.0,
        help="extra wait for a batch to fill (default 0: batch what is queued; batches grow under load)",
    )
    p.add_argument("--max-body-mb", dest="max_body_mb", type=positive_float, default=20.0)
    p.add_argument("--timeout-s", dest="timeout_s", type=positive_float, default=30.0)
    p.add_argument("--runtime", default="auto", choices=RUNTIMES, help=RUNTIME_HELP)
    add_read_arguments(p)
    p.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from detforge.api import serve

    checks.model_file(args.model)  # before anything imports torch
    serve(
        args.model,
        host=args.host,
        port=args.port,
        token=args.token,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_body_mb=args.max_body_mb,
        timeout_s=args.timeout_s,
        runtime=args.runtime,
        read=args.read,
        read_classes=args.read_classes,
        read_pattern=args.read_pattern,
        read_allow=args.read_allow,
    )
    return 0
