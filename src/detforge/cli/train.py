"""`detforge train`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from detforge.cli import _checks as checks
from detforge.cli._checks import positive_int

__all__ = ["add_parser"]


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = commands.add_parser(
        "train",
        help="fine-tune a detector on a dataset (or a YAML config) with automatic, explained defaults",
        description="detforge train DATA_OR_CONFIG [key=value ...] [--out DIR] [--time 20m] [--epochs N] [--resume]"
        " [--devices N]"
        " [--text-attribute NAME]",
    )
    p.add_argument(
        "data_or_config",
        nargs="?",
        type=Path,
        metavar="DATA_OR_CONFIG",
        help="dataset folder/file with train/val(/test) subsets, or a detforge YAML config",
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.lr=0.01")
    p.add_argument("--out", type=Path, default=None, help="run folder (default runs/trainN)")
    p.add_argument(
        "--time",
        default=None,
        help="time budget, e.g. 20m or 1h30m: the schedule is fitted to it on this machine's measured speed",
    )
    p.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help="passes over the training images (train.epochs): sets the number of iterations",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    p.add_argument("--devices", type=positive_int, default=1, help="data-parallel processes on this machine")
    p.add_argument(
        "--no-calibrate",
        dest="calibrate",
        action="store_false",
        help="do not calibrate on the validation subset (the best-F1 score threshold, the text threshold)",
    )
    p.add_argument(
        "--text-attribute",
        default=None,
        metavar="NAME",
        help="box attribute holding each transcription (data.text_attribute); default: detected when unambiguous",
    )
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    from detforge.api import train

    overrides = list(args.overrides)
    # argparse gives a lone `key=value` to DATA_OR_CONFIG when no path is given (e.g. with --resume)
    if args.data_or_config is not None and "=" in str(args.data_or_config) and not args.data_or_config.exists():
        overrides.insert(0, str(args.data_or_config))
        args.data_or_config = None
    checks.output_folder(args.out, "--out")
    if not args.resume:  # config keys and the data path, before anything imports torch
        text = [] if args.text_attribute is None else [f"data.text_attribute={json.dumps(args.text_attribute)}"]
        epochs = [] if args.epochs is None else [f"train.epochs={args.epochs}"]
        checks.check_config(args.data_or_config, [*overrides, *text, *epochs], time=args.time)
    result = train(
        args.data_or_config,
        overrides,
        out=args.out,
        time=args.time,
        epochs=args.epochs,
        resume=args.resume,
        devices=args.devices,
        calibrate=args.calibrate,
        progress=args.progress,
        text_attribute=args.text_attribute,
    )
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
        return 0
    final = result.final_metrics
    if final is not None:
        m = final.metrics
        print(
            f"validation AP {m['ap']:.3f}  AP50 {m['ap50']:.3f}  val loss {final.val_loss:.4f} "
            f"(best {result.metric} {result.best_metric:.4f} at iteration {result.best_iteration})"
        )
    if result.read is not None:
        print(result.read.summary())
    print(f"stopped: {result.stop_reason} after {result.iterations} iterations")
    print(f"model: {result.model_path}")
    print(f"logs: tensorboard --logdir {result.out_dir / 'tb'}   metrics: {result.out_dir / 'metrics.jsonl'}")
    return 0
