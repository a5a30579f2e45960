"""`detforge export` and `detforge benchmark`."""

from __future__ import annotations

import argparse
from pathlib import Path

from detforge.cli import _checks as checks
from detforge.cli._checks import int_between, non_negative_int, positive_int
from detforge.models.file_kind import BENCHMARK_BACKENDS, EXPORT_SUFFIXES

__all__ = ["add_parsers"]


def add_parsers(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = commands.add_parser("export", help="export a model to ONNX or TorchScript, with a parity check")
    p.add_argument("model", type=Path)
    p.add_argument("--format", choices=tuple(EXPORT_SUFFIXES), default="onnx")
    p.add_argument(
        "--out", type=Path, default=None, help="output file or folder (default: beside the model, MODEL.onnx)"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out file that is not an earlier detforge export",
    )
    p.add_argument("--opset", type=int_between(11, 20), default=17)
    p.add_argument("--images", nargs="*", type=Path, default=None, help="images for the parity check")
    p.add_argument("--json", action="store_true", help="print a machine-readable result (docs/cli-json.md)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(handler=_export)

    p = commands.add_parser("benchmark", help="latency and throughput of each backend on this machine")
    p.add_argument("model", type=Path)
    p.add_argument("--backends", nargs="+", default=["eager", "onnx"], choices=BENCHMARK_BACKENDS)
    p.add_argument("--runs", type=positive_int, default=10)
    p.add_argument("--warmup", type=non_negative_int, default=2)
    p.add_argument(
        "--images",
        nargs="+",
        type=Path,
        default=None,
        help="photos to time on (default: synthetic images of odd portrait and landscape sizes)",
    )
    p.add_argument("--json", action="store_true", help="print a machine-readable result (docs/cli-json.md)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(handler=_benchmark)


def _export(args: argparse.Namespace) -> int:
    from detforge.api import export_model

    checks.model_file(args.model)  # before anything imports torch
    if args.out is not None and not args.out.is_dir():  # a folder gets MODEL_STEM.onnx / .ts
        checks.output_file(args.out, "--out")
    for image in args.images or ():
        checks.existing_path(image, "image for the parity check")
    report = export_model(
        args.model,
        format=args.format,
        out=args.out,
        opset=args.opset,
        images=args.images,
        overwrite=args.overwrite,
        progress=args.progress,
    )
    if args.json:
        from detforge.cli._json import export_json, print_json

        print_json(export_json(report))
        return 0
    p = report.parity
    print(f"wrote {report.path} ({report.size_bytes / 1e6:.1f} MB, {report.seconds:.1f} s)")
    print(
        f"parity vs {p.reference} on {len(p.image_sizes)} images, {p.detections} detections: largest box difference "
        f"{p.max_box_diff_px:.2g} px, score {p.max_score_diff:.2g}, count mismatches {p.count_mismatch}"
    )
    if p.pytorch_box_diff_px is not None:
        print(f"  (PyTorch float32 itself is {p.pytorch_box_diff_px:.2g} px from it: float32 rounding, not the export)")
    return 0


def _benchmark(args: argparse.Namespace) -> int:
    checks.model_file(args.model)  # before anything imports torch
    for image in args.images or ():
        checks.existing_path(image, "photo to time on")
    from detforge.api import benchmark
    from detforge.export import benchmark_table

    rows = benchmark(
        args.model,
        backends=args.backends,
        runs=args.runs,
        warmup=args.warmup,
        images=args.images,
        progress=args.progress,
    )
    if args.json:
        from detforge.cli._json import benchmark_json, print_json

        print_json(benchmark_json(rows))
        return 0
    print(benchmark_table(rows))
    return 0
