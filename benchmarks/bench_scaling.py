"""Scaling tables: evaluation time vs images; training step time and peak memory vs image size and batch.

1. COCO evaluation of synthetic ground truth (5 boxes per image, 3 classes) and detections (20 per
   image: jittered true boxes plus random ones): `detforge.evaluation.CocoEvaluator` (faster-coco-eval)
   vs pycocotools' COCOeval (the peer) on the same data, at 250/500/1000/2000 images.
2. Training steps of `fasterrcnn_mobilenet_v2_fpn` (ImageNet backbone) through `Detector.forward_loss`
   + SGD on random images with 3 boxes each: image size 256/384/512 at batch 2, batch 1/2/4 at 512.
   Peak RSS is this process's high-water mark during that configuration's steps (reset before each).
Growth: a least-squares fit of log(time) on log(size) (exponent 1 = linear) and the slope of the linear fit.

    python benchmarks/bench_scaling.py [--quick] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _common import (  # noqa: E402
    THREADS,
    current_rss_mib,
    interleaved,
    machine_info,
    peak_rss_mib,
    reset_peak_rss,
    set_threads,
    summarize,
    write_result,
)

MODEL = "fasterrcnn_mobilenet_v2_fpn"
CLASSES = 3
GT_PER_IMAGE = 5
DETS_PER_IMAGE = 20


def fit(xs: Sequence[float], ys: Sequence[float]) -> dict[str, float]:
    """Linear fit y = slope * x + intercept (with R^2) and the log-log exponent (1.0 = linear growth)."""
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    pred = slope * x + intercept
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - pred) ** 2).sum()) / ss_tot if ss_tot > 0 else 1.0
    exponent = float(np.polyfit(np.log(x), np.log(y), 1)[0])
    return {
        "slope": float(slope), "intercept": float(intercept), "r2": round(r2, 4), "loglog_exponent": round(exponent, 3)
    }  # fmt: skip


def _growth(exponent: float) -> str:
    return "linear" if 0.85 <= exponent <= 1.15 else ("sub-linear" if exponent < 0.85 else "super-linear")


# --------------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------------
def _synthetic(n: int, seed: int = 0) -> tuple[Any, Any, Any, list[Any]]:
    from detforge.structures import Annotation, Categories, ImageRecord
    from detforge.structures.detections import Detections

    rng = np.random.default_rng(seed)
    categories = Categories.from_names([f"c{i}" for i in range(CLASSES)])
    images, annotations, detections = [], [], []
    ann_id = 0
    for i in range(1, n + 1):
        images.append(ImageRecord(i, f"{i}.jpg", Path(f"{i}.jpg"), 640, 480))
        xy = rng.uniform(0, 500, (GT_PER_IMAGE, 2))
        wh = rng.uniform(20, 120, (GT_PER_IMAGE, 2))
        gt = np.concatenate([xy, np.minimum(xy + wh, [640, 480])], 1)
        labels = rng.integers(0, CLASSES, GT_PER_IMAGE)
        for box, label in zip(gt, labels, strict=True):
            ann_id += 1
            annotations.append(Annotation(ann_id, i, int(label) + 1, tuple(float(v) for v in box)))  # type: ignore[arg-type]
        extra = DETS_PER_IMAGE - GT_PER_IMAGE
        rxy = rng.uniform(0, 500, (extra, 2))
        noise = np.concatenate([rxy, rxy + rng.uniform(20, 120, (extra, 2))], 1)
        boxes = np.concatenate([gt + rng.normal(0, 6, gt.shape), noise])
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        det_labels = np.concatenate([labels, rng.integers(0, CLASSES, extra)])
        detections.append(
            Detections(
                boxes=torch.from_numpy(boxes).float(),
                labels=torch.from_numpy(det_labels).long(),
                scores=torch.from_numpy(rng.uniform(0.05, 1.0, DETS_PER_IMAGE)).float(),
                image_size=(480, 640),
            )
        )
    return images, annotations, categories, detections


def _detforge_eval(images: Any, annotations: Any, categories: Any, detections: list[Any]) -> Callable[[], object]:
    from detforge.evaluation import CocoEvaluator

    def run() -> object:
        evaluator = CocoEvaluator(images, annotations, categories)
        evaluator.process([im.id for im in images], detections)
        return evaluator.evaluate()

    return run


def _pycocotools_eval(images: Any, annotations: Any, detections: list[Any]) -> Callable[[], object]:
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = {
        "images": [{"id": im.id, "width": im.width, "height": im.height} for im in images],
        "categories": [{"id": c + 1, "name": f"c{c}"} for c in range(CLASSES)],
        "annotations": [
            {"id": a.id, "image_id": a.image_id, "category_id": a.category_id, "iscrowd": 0,
             "bbox": [a.bbox[0], a.bbox[1], a.bbox[2] - a.bbox[0], a.bbox[3] - a.bbox[1]],
             "area": (a.bbox[2] - a.bbox[0]) * (a.bbox[3] - a.bbox[1])}
            for a in annotations
        ],
    }  # fmt: skip
    results = [
        {"image_id": im.id, "category_id": int(label) + 1, "score": float(score),
         "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]}
        for im, det in zip(images, detections, strict=True)
        for b, label, score in zip(det.boxes.tolist(), det.labels.tolist(), det.scores.tolist(), strict=True)
    ]  # fmt: skip

    def run() -> object:
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO()
            coco.dataset = gt
            coco.createIndex()
            e = COCOeval(coco, coco.loadRes(results), "bbox")
            e.evaluate()
            e.accumulate()
            e.summarize()
        return e.stats

    return run


def evaluation_table(counts: Sequence[int], rounds: int) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for n in counts:
        images, annotations, categories, detections = _synthetic(n)
        calls = {
            "detforge": _detforge_eval(images, annotations, categories, detections),
            "pycocotools": _pycocotools_eval(images, annotations, detections),
        }
        samples = interleaved(calls, rounds=rounds, warmup=1 if n <= 500 else 0)
        d, p = summarize(samples["detforge"]), summarize(samples["pycocotools"])
        rows.append({
            "images": n, "detections": n * DETS_PER_IMAGE,
            "detforge_s": {"median": round(d.median_s, 3), "min": round(d.min_s, 3), "max": round(d.max_s, 3)},
            "pycocotools_s": {"median": round(p.median_s, 3), "min": round(p.min_s, 3), "max": round(p.max_s, 3)},
            "speedup_vs_pycocotools": round(p.median_s / d.median_s, 2),
        })  # fmt: skip
    xs = [r["images"] for r in rows]
    f = fit(xs, [r["detforge_s"]["median"] for r in rows])
    fp = fit(xs, [r["pycocotools_s"]["median"] for r in rows])
    return {"rows": rows, "detforge_fit": _per_image(f), "pycocotools_fit": _per_image(fp)}


def _per_image(f: dict[str, float]) -> dict[str, Any]:
    return {**f, "slope_ms_per_image": round(1000 * f["slope"], 3), "growth": _growth(f["loglog_exponent"])}


# --------------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------------
def _training_step(detector: Any, optimizer: torch.optim.Optimizer, size: int, batch: int) -> Callable[[], object]:
    from detforge.structures.detections import Target

    gen = torch.Generator().manual_seed(size * 10 + batch)
    width = round(size * 4 / 3)
    images = [torch.rand(3, size, width, generator=gen) for _ in range(batch)]
    targets = []
    for k in range(batch):
        xy = torch.rand(3, 2, generator=gen) * torch.tensor([width * 0.6, size * 0.6])
        boxes = torch.cat([xy, xy + 20 + torch.rand(3, 2, generator=gen) * size * 0.3], 1)
        targets.append(Target(boxes=boxes, labels=torch.zeros(3, dtype=torch.int64), image_id=k))

    def run() -> object:
        transform: Any = detector.model.get_submodule("transform")
        transform.min_size, transform.max_size = (size,), width
        losses = detector.forward_loss(images, targets)
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
        return None

    return run


def training_table(
    sizes: Sequence[int], batches: Sequence[int], base_size: int, base_batch: int, steps: int
) -> dict[str, Any]:
    from detforge.models import build_detector

    torch.manual_seed(0)
    detector, _ = build_detector(MODEL, num_classes=1, weights="imagenet")
    detector.train()
    optimizer = torch.optim.SGD([p for p in detector.parameters() if p.requires_grad], lr=1e-4, momentum=0.9)
    configs = sorted({(s, base_batch) for s in sizes} | {(base_size, b) for b in batches})
    calls = {f"{s}x{b}": _training_step(detector, optimizer, s, b) for s, b in configs}
    baseline_rss = current_rss_mib()
    times: dict[str, list[float]] = {k: [] for k in calls}
    peaks: dict[str, float] = {k: 0.0 for k in calls}
    for call in calls.values():  # warm-up, one step each
        call()
    can_reset = reset_peak_rss()
    for round_ in range(steps):
        for key in list(calls) if round_ % 2 == 0 else list(reversed(calls)):
            reset_peak_rss()
            start = time.perf_counter()
            calls[key]()
            times[key].append(time.perf_counter() - start)
            peaks[key] = max(peaks[key], peak_rss_mib())
    rows: list[dict[str, Any]] = []
    for s, b in configs:
        t = summarize(times[f"{s}x{b}"])
        rows.append({
            "image_size": s, "batch": b, "input": f"{s}x{round(s * 4 / 3)}",
            "step_s": {"median": round(t.median_s, 3), "min": round(t.min_s, 3), "max": round(t.max_s, 3), "n": t.n},
            "peak_rss_mib": round(peaks[f"{s}x{b}"], 1) if can_reset else None,
        })  # fmt: skip
    base = next(r for r in rows if r["image_size"] == base_size and r["batch"] == base_batch)
    for r in rows:
        r["step_time_vs_base"] = round(r["step_s"]["median"] / base["step_s"]["median"], 3)
    by_size = [r for r in rows if r["batch"] == base_batch]
    by_batch = [r for r in rows if r["image_size"] == base_size]
    pixels = [r["image_size"] * round(r["image_size"] * 4 / 3) for r in by_size]
    size_fit = fit(pixels, [r["step_s"]["median"] for r in by_size])
    batch_fit = fit([r["batch"] for r in by_batch], [r["step_s"]["median"] for r in by_batch])
    result: dict[str, Any] = {
        "rows": rows,
        "process_rss_before_mib": round(baseline_rss, 1),
        "peak_rss_note": "high-water mark of the whole process during the step (model, optimizer state included)"
        if can_reset else "n/a: /proc/self/clear_refs not writable",
        "time_vs_pixels": {**size_fit, "slope_ms_per_megapixel": round(size_fit["slope"] * 1e9, 1),
                           "growth": _growth(size_fit["loglog_exponent"])},
        "time_vs_batch": {**batch_fit, "slope_s_per_image": round(batch_fit["slope"], 3),
                          "growth": _growth(batch_fit["loglog_exponent"])},
    }  # fmt: skip
    if can_reset:
        mem_fit = fit(pixels, [r["peak_rss_mib"] for r in by_size])
        mem_batch = fit([r["batch"] for r in by_batch], [r["peak_rss_mib"] for r in by_batch])
        result["memory_vs_pixels"] = {"slope_mib_per_megapixel": round(mem_fit["slope"] * 1e6, 1), "r2": mem_fit["r2"]}
        result["memory_vs_batch"] = {"slope_mib_per_image": round(mem_batch["slope"], 1), "r2": mem_batch["r2"]}
    return result


def main(out_dir: Path, *, quick: bool) -> dict[str, Any]:
    """Run both tables, write `out_dir/bench_scaling[_quick].json` and return what it holds."""
    set_threads(THREADS)
    started = time.perf_counter()
    counts = [100, 200, 400] if quick else [250, 500, 1000, 2000]
    evaluation = evaluation_table(counts, rounds=1 if quick else 2)
    if quick:
        training = training_table([256, 384], [1, 2], base_size=384, base_batch=2, steps=2)
    else:
        training = training_table([256, 384, 512], [1, 2, 4], base_size=512, base_batch=2, steps=3)
    result: dict[str, Any] = {
        "benchmark": "scaling",
        "quick": quick,
        "threads": THREADS,
        "evaluation": evaluation,
        "training": training,
        "machine": machine_info(),
        "wall_s": round(time.perf_counter() - started, 1),
    }
    write_result(out_dir, "bench_scaling_quick" if quick else "bench_scaling", result)
    return result


def _print(result: dict[str, Any]) -> None:
    ev = result["evaluation"]
    print("evaluation: images, detforge s, pycocotools s, speedup")
    for r in ev["rows"]:
        print(f"  {r['images']:6d}  {r['detforge_s']['median']:7.3f}  {r['pycocotools_s']['median']:7.3f}  "
              f"x{r['speedup_vs_pycocotools']}")  # fmt: skip
    f = ev["detforge_fit"]
    print(f"  detforge: {f['slope_ms_per_image']} ms/image, exponent {f['loglog_exponent']} ({f['growth']})")
    tr = result["training"]
    print("training: size x batch, step s (min-max), peak RSS MiB")
    for r in tr["rows"]:
        s = r["step_s"]
        spread = f"({s['min']:.3f}-{s['max']:.3f})"
        print(f"  {r['input']:>9s} b{r['batch']}  {s['median']:.3f} {spread}  {r['peak_rss_mib']}")
    for key in ("time_vs_pixels", "time_vs_batch"):
        g = tr[key]
        print(f"  {key}: exponent {g['loglog_exponent']} ({g['growth']}), R^2 {g['r2']}")
    if math.isfinite(result["wall_s"]):
        print(f"wall {result['wall_s']} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    cli = parser.parse_args()
    _print(main(cli.out, quick=cli.quick))
