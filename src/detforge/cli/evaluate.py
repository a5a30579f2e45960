"""`detforge eval`: COCO AP of a model (or of a results JSON) on a dataset split, with the report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from detforge.cli import _checks as checks
from detforge.cli._checks import fraction, non_negative_int, positive_int, precision
from detforge.cli._model_args import RUNTIME_HELP, RUNTIMES, add_read_arguments

__all__ = ["add_parsers"]


def add_parsers(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = commands.add_parser(
        "eval",
        help="COCO AP with error bars, per-class table, PR curves, confusion matrix, error breakdown",
        description="detforge eval MODEL DATA [--split test]   or   detforge eval --detections RESULTS.json DATA",
    )
    p.add_argument(
        "paths", nargs="+", type=Path, metavar="MODEL DATA", help="model artifact (unless --detections) and dataset"
    )
    p.add_argument("--split", default="test", help="subset to evaluate (default test)")
    p.add_argument("--out", type=Path, default=None, help="write report.html, plots and metrics.json here")
    p.add_argument(
        "--overwrite", action="store_true", help="replace the --out folder as a whole even if detforge did not write it"
    )
    p.add_argument("--detections", type=Path, default=None, help="evaluate a COCO results JSON instead of a model")
    p.add_argument("--score-threshold", dest="score_threshold", type=fraction, default=None)
    p.add_argument(
        "--bootstrap", type=non_negative_int, default=200, help="bootstrap resamples for AP intervals (0: off)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--runtime", default="auto", choices=RUNTIMES, help=RUNTIME_HELP)
    p.add_argument("--batch-size", dest="batch_size", type=positive_int, default=4)
    p.add_argument("--format", default=None, help="force the dataset format")
    p.add_argument(
        "--text-attribute",
        dest="text_attribute",
        metavar="NAME",
        default=None,
        help="the box attribute holding its transcription (default: detected when unambiguous)",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="store a score threshold found on this split in the model (use --split val)",
    )
    p.add_argument(
        "--target-precision",
        dest="target_precision",
        type=precision,
        default=None,
        help="with --calibrate: the lowest threshold reaching this precision instead of best F1",
    )
    add_read_arguments(p)
    p.set_defaults(handler=_eval)


def _eval(args: argparse.Namespace) -> int:
    from detforge.api import evaluate
    from detforge.errors import ConfigError

    if args.detections is not None:
        if len(args.paths) != 1:
            raise ConfigError("with --detections give only the dataset: detforge eval --detections RESULTS.json DATA")
        model, data = None, args.paths[0]
    else:
        if len(args.paths) != 2:
            raise ConfigError("expected MODEL and DATA: detforge eval MODEL DATA (or --detections RESULTS.json DATA)")
        model, data = args.paths
    checks.existing_path(data)  # before anything imports torch: a typo costs a fraction of a second
    if model is not None:
        checks.model_file(model)
    if args.detections is not None:
        checks.existing_path(args.detections, "COCO results JSON")
    checks.output_folder(args.out, "--out")
    result = evaluate(
        model,
        data,
        split=args.split,
        out=args.out,
        overwrite=args.overwrite,
        detections=args.detections,
        score_threshold=args.score_threshold,
        bootstrap=args.bootstrap,
        seed=args.seed,
        device=args.device,
        runtime=args.runtime,
        batch_size=args.batch_size,
        format=args.format,
        calibrate=args.calibrate,
        target_precision=args.target_precision,
        read=args.read,
        read_classes=args.read_classes,
        read_pattern=args.read_pattern,
        read_allow=args.read_allow,
        progress=args.progress,
        text_attribute=args.text_attribute,
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    m = result.metrics
    ci = result.bootstrap
    ap_ci = f" (95% CI {ci.ap_low:.3f}-{ci.ap_high:.3f}, {ci.num_images} images)" if ci is not None else ""
    print(
        f"AP {m.ap:.3f}{ap_ci}  AP50 {m.ap50:.3f}  AP75 {m.ap75:.3f}  "
        f"APs {m.ap_small:.3f}  APm {m.ap_medium:.3f}  APl {m.ap_large:.3f}  AR100 {m.ar100:.3f}"
    )
    print(result.table.to_text())
    if result.calibration is not None:
        c = result.calibration
        print(f"best-F1 score threshold {c.threshold:.3f} (precision {c.precision:.3f}, recall {c.recall:.3f})")
    if result.read is not None:
        print(result.read.summary())
    if result.report is not None:
        print(f"report: {result.report}")
    return 0
