"""`detforge predict`: run a model on images and write COCO/YOLO/CSV/CVAT/Label Studio results."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from detforge.cli import _checks as checks
from detforge.cli._checks import fraction, overlap, positive_int
from detforge.cli._model_args import RUNTIME_HELP, RUNTIMES, add_read_arguments
from detforge.structures.prediction_formats import PREDICTION_FORMATS

__all__ = ["add_batch_arguments", "add_parsers"]


def add_batch_arguments(p: argparse.ArgumentParser, *, shard_size: bool = True) -> None:
    """--engine, --ray-address, --actors and (with `shard_size`) --shard-size (batch jobs, docs/batch.md)."""
    p.add_argument(
        "--engine",
        default="local",
        choices=("local", "ray"),
        help="local: this machine; ray: a Ray Data pipeline (pip install detforge[ray]; needs --out)",
    )
    p.add_argument(
        "--ray-address",
        dest="ray_address",
        default=None,
        help="the Ray cluster to run on (e.g. ray://head:10001 or auto); default: start a local one",
    )
    p.add_argument(
        "--actors", type=positive_int, default=None, help="model replicas on Ray (default: one per GPU, or per 2 CPUs)"
    )
    if not shard_size:
        return
    p.add_argument(
        "--shard-size",
        dest="shard_size",
        type=positive_int,
        default=100,
        help="images per shard file under --out/shards/ (a killed run redoes at most the shards in flight)",
    )


def add_parsers(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = commands.add_parser("predict", help="run a model on images; write COCO/YOLO/CSV/CVAT/Label Studio results")
    p.add_argument("model", type=Path)
    p.add_argument("source", help="image file, folder, glob, or a .txt file listing image paths (one a line)")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument(
        "--overwrite", action="store_true", help="replace the --out folder as a whole even if detforge did not write it"
    )
    p.add_argument("--format", nargs="+", default=["coco"], choices=PREDICTION_FORMATS)
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
    add_batch_arguments(p)
    p.add_argument("--json", action="store_true", help="print a machine-readable result (docs/cli-json.md)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(handler=_predict)


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
        engine=args.engine,
        ray_address=args.ray_address,
        actors=args.actors,
        shard_size=args.shard_size,
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
