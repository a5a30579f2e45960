"""`detforge export` and `detforge benchmark`."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parsers"]


def add_parsers(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = commands.add_parser("export", help="export a model to ONNX or TorchScript, with a parity check")
    p.add_argument("model", type=Path)
    p.add_argument("--format", choices=("onnx", "torchscript"), default="onnx")
    p.add_argument("--out", type=Path, default=None, help="output file (default: next to the model)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--images", nargs="*", type=Path, default=None, help="images for the parity check")
    p.set_defaults(handler=_export)

    p = commands.add_parser("benchmark", help="latency and throughput of each backend on this machine")
    p.add_argument("model", type=Path)
    p.add_argument(
        "--backends", nargs="+", default=["eager", "onnx"], choices=("eager", "onnx", "openvino", "torchscript")
    )
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument(
        "--images", nargs="+", type=Path, default=None, help="photos to time on (default: one synthetic image)"
    )
    p.set_defaults(handler=_benchmark)


def _export(args: argparse.Namespace) -> int:
    from detforge.api import export_model

    report = export_model(args.model, format=args.format, out=args.out, opset=args.opset, images=args.images)
    p = report.parity
    print(f"wrote {report.path} ({report.size_bytes / 1e6:.1f} MB, {report.seconds:.1f} s)")
    print(
        f"parity vs PyTorch on {len(p.image_sizes)} images, {p.detections} detections: largest box difference "
        f"{p.max_box_diff_px:.2g} px, score {p.max_score_diff:.2g}, count mismatches {p.count_mismatch}"
    )
    return 0


def _benchmark(args: argparse.Namespace) -> int:
    from detforge.api import benchmark
    from detforge.export import benchmark_table

    rows = benchmark(args.model, backends=args.backends, runs=args.runs, warmup=args.warmup, images=args.images)
    print(benchmark_table(rows))
    return 0
