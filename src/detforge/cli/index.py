"""`detforge index MODEL PHOTOS --out DIR [--sort-into DIR]`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from detforge.cli import _checks as checks
from detforge.cli._checks import fraction, positive_int
from detforge.cli._model_args import RUNTIME_HELP, RUNTIMES
from detforge.cli.predict import add_batch_arguments

__all__ = ["add_parser"]


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = commands.add_parser(
        "index",
        help="read the values on every photo of a folder: index.csv/json in reading order, sort copies by value",
        description=(
            "Detect and read every photo under PHOTOS; write OUT/index.csv and OUT/index.json (values in reading "
            "order, status read/unsure/nothing/error). A second run with the same --out skips what is done. "
            "--sort-into copies (never moves) each photo into DIR/<value>/, unsure ones into DIR/_review/ with "
            "CVAT and Label Studio pre-annotations, photos with nothing found into DIR/_nothing/."
        ),
    )
    p.add_argument("model", type=Path, help="model artifact (.pt) or exported .onnx / .ts file")
    p.add_argument(
        "source",
        metavar="photos",
        help="folder of photos (searched recursively), a glob ('scans/**/*.jpg'), or a .txt file of paths",
    )
    p.add_argument("--out", type=Path, required=True, help="folder for index.csv, index.json and records.jsonl")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="clear the --out folder first, even if it is not this photo folder's index",
    )
    p.add_argument("--sort-into", dest="sort_into", type=Path, default=None, help="copy photos into folders by value")
    p.add_argument("--read", action="store_true", default=None, help="read a model trained without transcriptions")
    p.add_argument("--read-classes", dest="read_classes", nargs="+", default=None, help="classes whose boxes are read")
    p.add_argument("--read-pattern", dest="read_pattern", default=None, help="regular expression a value must match")
    p.add_argument("--read-allow", dest="read_allow", default=None, help="characters a value may contain")
    p.add_argument(
        "--score-threshold",
        dest="score_threshold",
        type=fraction,
        default=None,
        help="override the model's calibrated detection threshold",
    )
    p.add_argument("--batch-size", dest="batch_size", type=positive_int, default=4)
    p.add_argument("--device", default="auto")
    p.add_argument("--runtime", default="auto", choices=RUNTIMES, help=RUNTIME_HELP)
    add_batch_arguments(p, shard_size=False)
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print a machine-readable summary")
    p.set_defaults(handler=_index)


def _index(args: argparse.Namespace) -> int:
    from detforge.api import index

    checks.model_file(args.model)  # before anything imports torch
    checks.image_source(args.source)  # a folder, a glob or a path list
    checks.output_folder(args.out, "--out")
    checks.output_folder(args.sort_into, "--sort-into")
    summary = index(
        args.model,
        args.source,
        out=args.out,
        sort_into=args.sort_into,
        overwrite=args.overwrite,
        read=args.read,
        read_classes=args.read_classes,
        read_pattern=args.read_pattern,
        read_allow=args.read_allow,
        score_threshold=args.score_threshold,
        batch_size=args.batch_size,
        device=args.device,
        runtime=args.runtime,
        engine=args.engine,
        ray_address=args.ray_address,
        actors=args.actors,
        progress=args.progress,
    )
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        c = summary.counts
        print(
            f"{summary.photos} photos ({summary.done_now} done now, {summary.skipped} already indexed): "
            f"{c['read']} read, {c['unsure']} unsure, {c['nothing']} nothing found, {c['error']} errors"
        )
        print(f"index: {summary.index_csv}  {summary.index_json}")
        if summary.sorted is not None:
            s = summary.sorted
            print(
                f"sorted into {args.sort_into}: {s.copied} copies made, {s.kept} already there, {len(s.folders)} values"
            )
    for file, error in summary.errors:
        print(f"could not read {file}: {error}", file=sys.stderr)
    return 1 if summary.errors and len(summary.errors) == summary.photos else 0
