"""`detforge` command line: one subcommand per API verb, with the API's parameter names as flags."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from detforge._version import __version__
from detforge.cli._parser import CliParser, add_verbose_everywhere
from detforge.errors import DetforgeError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from detforge.cli import data, evaluate, export, index, models, predict, serve, train

    parser = CliParser(
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
    evaluate.add_parsers(commands)
    predict.add_parsers(commands)
    index.add_parser(commands)
    add_verbose_everywhere(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 errors found or raised). Usage errors (unknown flag,
    bad number, missing argument) print one line naming the nearest valid spelling and raise SystemExit(2);
    errors detforge raises and file system errors print one line, never a traceback (with -v the traceback
    of a file system error is logged at debug level)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("PIL").setLevel(logging.INFO)  # -v is about detforge, not every PNG chunk PIL reads
    try:
        status: int = args.handler(args)
    except DetforgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0
    except OSError as exc:  # the file system said no (a file where a folder is needed, permissions, disk full)
        logging.getLogger("detforge").debug("file system error", exc_info=True)
        print(f"error: {_os_error_text(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return status


def _os_error_text(exc: OSError) -> str:
    """`PATH: reason` for an OSError, in one line."""
    reason = exc.strerror or str(exc)
    files = [str(f) for f in (exc.filename, exc.filename2) if f is not None]
    return f"{' -> '.join(files)}: {reason}" if files else " ".join(reason.split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
