"""CUDA: detforge's trainer vs a plain torchvision AMP loop, and inference fp32 vs fp16 on one GPU.

Needs a CUDA device (the project's CI machines have none; the committed numbers came from a lent
H100/H200). Training: `fasterrcnn_mobilenet_v2_fpn` (ImageNet backbone) at 512 px, batch 8, on the
bundled sample images; detforge's `train_from_config` (defaults on CUDA: bf16 autocast, pinned
memory, non_blocking copies) vs the torchvision tutorial loop with bf16 autocast, with cuDNN
benchmark mode off (torch's default) and on. Each run is its own process; runs alternate.
Inference: per image, torchvision eager fp32 vs detforge `Predictor` fp32 and fp16 (`half=True`),
for the MobileNetV2-FPN and R50-FPN (random weights, BatchNorm statistics set) detectors, with the
largest box/score differences against torchvision eager.

    python benchmarks/bench_gpu.py [--quick] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _common import interleaved, latency_rows, machine_info, write_result  # noqa: E402

GPU_BATCH = 8


def _training(data: Path, tmp: Path, *, quick: bool) -> dict[str, Any]:
    from bench_training import _run_worker, _summary

    warmup, timed, rounds = (5, 15, 1) if quick else (10, 40, 2)
    iters = warmup + timed + 1
    kinds = {  # name: (worker, cuDNN benchmark mode)
        "detforge": ("detforge", False),
        "plain": ("plain", False),
        "plain_cudnn_benchmark": ("plain", True),
    }
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for r in range(rounds):
        for name in list(kinds) if r % 2 == 0 else list(reversed(kinds)):
            worker, benchmark = kinds[name]
            runs[name].append(
                _run_worker(
                    worker, data, tmp, iters, f"{name}{r}", device="cuda", batch=GPU_BATCH, cudnn_benchmark=benchmark
                )
            )
    rows = {name: _summary(runs[name], warmup, GPU_BATCH) for name in kinds}
    base = rows["plain"]["images_per_s_mean"]
    for row in rows.values():
        row["images_per_s_over_plain"] = round(row["images_per_s_mean"] / base, 3)
    return {"batch": GPU_BATCH, "warmup_steps": warmup, "timed_steps_per_round": timed, "rounds": rounds, **rows}


def _inference(image: torch.Tensor, tmp: Path, *, quick: bool) -> list[dict[str, Any]]:
    from bench_inference import _build, _from_torchvision

    from detforge.inference import Predictor

    out = []
    uint8 = (image * 255).round().to(torch.uint8)
    for name in ["fasterrcnn_mobilenet_v2_fpn", "fasterrcnn_resnet50_fpn"]:
        detector, _ = _build(name, tmp)
        detector.cuda().eval()
        tv = detector.model

        def torchvision_eager(tv: Any = tv) -> list[Any]:
            with torch.inference_mode():
                result = tv([image.to("cuda")])[0]
            torch.cuda.synchronize()
            return [_from_torchvision({k: v.cpu() for k, v in result.items()}, image)]

        fp32 = Predictor(detector, class_names=["object"], device="cuda", score_threshold=0.05)
        reference = torchvision_eager()
        fp16 = Predictor(detector, class_names=["object"], device="cuda", score_threshold=0.05, half=True)
        backends = {
            "torchvision_eager_fp32": torchvision_eager,
            "detforge_fp32": lambda p=fp32: p.predict_tensors([uint8]),
            "detforge_fp16": lambda p=fp16: p.predict_tensors([uint8]),
        }
        samples = interleaved(backends, rounds=5 if quick else 20, warmup=3)
        rows = latency_rows(backends, samples, reference, "torchvision_eager_fp32")
        out.append({"model": name, "input": f"{image.shape[1]}x{image.shape[2]}", "backends": rows})
        del detector, fp32, fp16
        torch.cuda.empty_cache()
    return out


def main(out_dir: Path, *, quick: bool) -> dict[str, Any]:
    """Run the benchmark on the first CUDA device, write `out_dir/bench_gpu[_quick].json`, return it."""
    from torchvision.transforms.v2 import functional as F

    from detforge.data.images import load_image
    from detforge.data.sample import make_sample

    if not torch.cuda.is_available():
        raise SystemExit("bench_gpu needs a CUDA device; none is visible")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp_name:
        tmp = Path(tmp_name)
        data = make_sample(tmp / "data", n=80)
        photo = sorted((data / "images" / "train").glob("*.jpg"))[0]
        image = F.to_dtype(F.pil_to_tensor(load_image(photo)), torch.float32, scale=True)
        inference = _inference(image, tmp, quick=quick)
        training = _training(data, tmp, quick=quick)
    result: dict[str, Any] = {
        "benchmark": "gpu",
        "quick": quick,
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "training": training,
        "inference": inference,
        "machine": machine_info(),
        "wall_s": round(time.perf_counter() - started, 1),
    }
    write_result(out_dir, "bench_gpu_quick" if quick else "bench_gpu", result)
    return result


def _print(result: dict[str, Any]) -> None:
    print(f"{result['gpu']}, torch {result['torch']}")
    t = result["training"]
    for name in ("detforge", "plain", "plain_cudnn_benchmark"):
        r = t[name]
        print(f"train {name:22s} {r['images_per_s_mean']:7.1f} img/s (x{r['images_per_s_over_plain']:.3f} plain)  "
              f"step median {1000 * r['step_s']['median']:.1f} ms  data wait {100 * r['data_wait_share']:.1f}%  "
              f"peak GPU {r['peak_cuda_mib']:.0f} MiB")  # fmt: skip
    for m in result["inference"]:
        for backend, row in m["backends"].items():
            print(f"infer {m['model']:28s} {backend:24s} {row['median_ms']:7.2f} ms "
                  f"x{row['speedup_vs_torchvision_eager']:.2f}  box diff {row['max_box_diff_px']:.3g} px  "
                  f"score diff {row['max_score_diff']:.3g}  count diff {row['count_mismatch']}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    cli = parser.parse_args()
    _print(main(cli.out, quick=cli.quick))
