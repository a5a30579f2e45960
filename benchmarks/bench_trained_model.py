"""Inference latency of a trained model on real photos: torchvision eager vs its ONNX export.

The synthetic-image numbers of `bench_inference.py` use random heads, which keep 100 boxes per image;
a trained model on real photos keeps a few, so its post-processing costs differ. This script takes a
detforge model artifact, its ONNX export and a folder of photos (e.g. `make demo` then
`make serve-demo`'s export), and times per image, interleaved after warm-up, 2 threads: torchvision
eager (`model([img])` under `torch.inference_mode`), ONNX Runtime and OpenVINO (when installed) on the
export; detections are compared with eager's. Not part of `make bench` (it needs a trained model).

    python benchmarks/bench_trained_model.py demo_out/run/model.pt demo_out/model.onnx \\
        demo_out/data/images/test [--n 8] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _common import SETTLE_S, THREADS, interleaved, latency_rows, machine_info, set_threads, write_result  # noqa: E402
from bench_inference import _from_torchvision  # noqa: E402

from detforge.structures.detections import Detections  # noqa: E402


def main(artifact: Path, onnx_path: Path, photos: Path, *, n: int, out_dir: Path) -> dict[str, Any]:
    from torchvision.transforms.v2 import functional as F

    from detforge.data.images import load_image
    from detforge.export import ExportError, OnnxDetector, OpenVinoDetector
    from detforge.models import load_model

    set_threads(THREADS)
    files = sorted(p for p in photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:n]
    if not files:
        raise SystemExit(f"{photos}: no .jpg/.png photos")
    images = [F.to_dtype(F.pil_to_tensor(load_image(p)), torch.float32, scale=True) for p in files]
    detector, spec = load_model(artifact, device="cpu")
    model = detector.model.eval()
    threshold = detector.detection_params.score_thresh

    def eager() -> list[Detections]:
        with torch.inference_mode():
            return [_from_torchvision(model([image])[0], image).above(threshold) for image in images]

    calls: dict[str, Any] = {"torchvision_eager": eager}
    onnx = OnnxDetector(onnx_path, device="cpu", threads=THREADS)
    calls["detforge_onnxruntime"] = lambda: onnx.predict(images)
    notes: dict[str, str] = {}
    try:
        openvino = OpenVinoDetector(onnx_path, threads=THREADS)
        calls["detforge_openvino"] = lambda: openvino.predict(images)
    except ExportError as exc:
        notes["detforge_openvino"] = f"n/a: {exc}"
    # warm-up 2: OpenVINO compiles for an image size on its second call with it
    samples = interleaved(calls, rounds=3, warmup=2, settle_s=SETTLE_S)
    rows = latency_rows(calls, samples, eager(), "torchvision_eager")
    for row in rows.values():  # per image, not per call of all photos
        for key in ("median_ms", "min_ms", "max_ms"):
            row[key] = round(row[key] / len(images), 1)
    result: dict[str, Any] = {
        "benchmark": "trained_model",
        "model": spec.model_name,
        "artifact": str(artifact),
        "photos": [p.name for p in files],
        "threads": THREADS,
        "backends": {**rows, **notes},
        "machine": machine_info(with_matmul=False),
    }
    write_result(out_dir, "trained_model", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("artifact", type=Path)
    parser.add_argument("onnx", type=Path)
    parser.add_argument("photos", type=Path)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    cli = parser.parse_args()
    res = main(cli.artifact, cli.onnx, cli.photos, n=cli.n, out_dir=cli.out)
    for name, row in res["backends"].items():
        if isinstance(row, dict):
            print(f"{name:22s} {row['median_ms']:7.1f} ms/image  x{row['speedup_vs_torchvision_eager']:.2f}  "
                  f"{row['detections']} detections  box diff {row['max_box_diff_px']:.2g} px")  # fmt: skip
        else:
            print(f"{name:22s} {row}")
