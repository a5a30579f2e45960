"""`detforge eval` and `detforge predict`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from detforge.cli import _checks as checks
from detforge.cli._checks import fraction, non_negative_int, overlap, positive_int, precision

__all__ = ["RUNTIMES", "RUNTIME_HELP", "add_parsers"]

RUNTIMES = ("auto", "onnxruntime", "openvino")
RUNTIME_HELP = "library that runs an .onnx model (auto: OpenVINO on CPU when installed, else ONNX Runtime)"


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

    p = commands.add_parser("predict", help="run a model on images; write COCO/YOLO/CSV/CVAT/Label Studio results")
    p.add_argument("model", type=Path)
    p.add_argument("source", help="image file, folder or glob")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument(
        "--overwrite", action="store_true", help="replace the --out folder as a whole even if detforge did not write it"
    )
    p.add_argument("--format", nargs="+", default=["coco"], choices=("coco", "yolo", "csv", "cvat", "labelstudio"))
    p.add_argument(
        "--score-threshold",
        dest="score_threshold",
        type=fraction,
        default=None,
        help="override the model's calibrated threshold (0 keeps everything)",
    )
    p.add_argument("--save-images", dest="save_images", action="store_true", help="also write drawn images")
    p.add_argument("--tile", type=positive_int, default=None, help="tiled inference with tiles of this many pixels")
    p.add_argument("--tile-overlap", dest="tile_overlap", type=overlap, default=0.2)
    p.add_argument("--tta", action="store_true", help="horizontal-flip test-time augmentation")
    p.add_argument("--batch-size", dest="batch_size", type=positive_int, default=4)
    p.add_argument("--device", default="auto")
    p.add_argument("--runtime", default="auto", choices=RUNTIMES, help=RUNTIME_HELP)
    p.add_argument(
        "--ids-from",
        dest="ids_from",
        type=Path,
        default=None,
        help="dataset whose image/category ids the COCO results use (for eval --detections)",
    )
    add_read_arguments(p)
    p.add_argument("--json", action="store_true", help="print a machine-readable result (docs/cli-json.md)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(handler=_predict)


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


def _predict(args: argparse.Namespace) -> int:
    from detforge.api import predict

    checks.model_file(args.model)  # before anything imports torch
    checks.image_source(args.source)
    if args.ids_from is not None:
        checks.existing_path(args.ids_from, "dataset of --ids-from")
    checks.output_folder(args.out, "--out")
    results = predict(
        args.model,
        args.source,
        out=args.out,
        overwrite=args.overwrite,
        format=args.format,
        score_threshold=args.score_threshold,
        save_images=args.save_images,
        tile=args.tile,
        tile_overlap=args.tile_overlap,
        tta=args.tta,
        batch_size=args.batch_size,
        device=args.device,
        runtime=args.runtime,
        ids_from=args.ids_from,
        read=args.read,
        read_classes=args.read_classes,
        read_pattern=args.read_pattern,
        read_allow=args.read_allow,
        progress=args.progress,
    )
    failed = [r for r in results if not r.ok]
    if args.json:
        from detforge.cli._json import predictions_json, print_json

        print_json(predictions_json(results, args.out))
        return 1 if failed and len(failed) == len(results) else 0
    found = sum(len(r.detections) for r in results if r.detections is not None)
    read = sum(t is not None for r in results if r.detections is not None for t in r.detections.texts or ())
    summary = f"{len(results) - len(failed)} images, {found} detections" + (f", {read} read" if read else "")
    print(summary + (f" -> {args.out}" if args.out else ""))
    for r in failed:
        print(f"skipped {r.source}: {r.error}", file=sys.stderr)
    if args.out is None:
        for r in results:
            if r.detections is not None:
                texts = [t for t in r.detections.texts or () if t is not None]
                values = f"; read {', '.join(repr(t) for t in texts)}" if texts else ""
                print(f"{r.source}: {len(r.detections)} detections{values}")
    return 1 if failed and len(failed) == len(results) else 0
