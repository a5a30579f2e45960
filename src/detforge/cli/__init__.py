"""`detforge` command line: one subcommand per API verb, with the API's parameter names as flags."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from detforge import __version__
from detforge.errors import DetforgeError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from detforge.cli import data, export, index, infer, models, serve, train

    parser = argparse.ArgumentParser(
        prog="detforge",
        description="From a folder of labelled images to a trained, measured, deployed object detector.",
    )
    parser.add_argument("--version", action="version", version=f"detforge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="print debug logs")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    data.add_parser(commands)
    models.add_parsers(commands)
    train.add_parser(commands)
    serve.add_parser(commands)
    export.add_parsers(commands)
    infer.add_parsers(commands)
    index.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 errors found or raised, 2 usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        status: int = args.handler(args)
    except DetforgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
