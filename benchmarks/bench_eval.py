"""COCO box evaluation speed: detforge's `CocoEvaluator` vs pycocotools and faster-coco-eval.

Synthetic set (seed 0): 5,000 images of 640x480 (quick: 500), 10 ground-truth boxes each over 3
classes (ids 1, 3, 7; sizes from 8 to 300 px, so small/medium/large all occur) and 100 detections each
(30 jittered copies of the ground truth, 70 random boxes; float32 XYXY, scores sorted descending).

Each peer gets the same boxes in its own native Python objects, built before the clock starts, and is
timed over its whole pipeline:
- detforge: `CocoEvaluator(images, annotations, categories)` + `process(ids, detections)` + `evaluate()`
  (`ImageRecord`/`Annotation` dataclasses and torch `Detections` in; boxes are evaluated by detforge's
  own numpy implementation of pycocotools' rules);
- pycocotools: `COCO()` from the ground-truth dict + `loadRes(list of result dicts)` + `COCOeval`
  evaluate + accumulate + summarize;
- faster-coco-eval: the same calls through its own `COCO.loadRes` and `COCOeval_faster`.
Peers are warmed up on a 200-image subset, then run in interleaved rounds (order alternating); each
round gives a ratio. The 12 summary stats of all three must agree: the max absolute difference is
reported.

Whole processes (what a user waits for): the same set written once as COCO files (`DATA/test.json` ground
truth, `results.json` detections). Timed from process start to exit, each a fresh Python process:
- detforge: `python -m detforge eval --detections results.json DATA --split test --json --no-progress`, i.e.
  imports, reading and checking the dataset and the results file, and every default output (COCO's 12
  numbers, per-class table, PR/F1 curves, best-F1 threshold, confusion matrix, error breakdown, bootstrap
  intervals from 200 resamples), printed as JSON;
- pycocotools: a script doing `COCO(test.json)`, `loadRes(results.json)`, `COCOeval` evaluate, accumulate,
  summarize, printing the 12 stats.
Rounds are interleaved (order alternating); medians of wall seconds (the goal) and of the child's CPU
seconds (user + sys: steadier on a shared machine). The 12 stats must be identical (max abs difference
reported; 0 is identical).
Run: `.venv/bin/python benchmarks/bench_eval.py [--quick] [--process-only] [--out benchmarks/results]`.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, set_threads, summarize, timing_dict, write_result

from detforge.evaluation import CocoEvaluator
from detforge.structures import Annotation, Categories, Category, ImageRecord
from detforge.structures.boxes import xyxy_to_xywh, xyxy_to_xywh_array
from detforge.structures.detections import Detections

__all__ = ["main"]

WIDTH, HEIGHT = 640, 480
GT_PER_IMAGE = 10
DETS_PER_IMAGE = 100
NEAR_PER_IMAGE = 30
CATEGORY_IDS = (1, 3, 7)
GOAL_VS_PYCOCOTOOLS = 5.0


@dataclass(frozen=True)
class SyntheticSet:
    """Ground truth and detections as arrays: gt_xyxy [I, G, 4] float64, gt_cls [I, G] index 0..K-1,
    det_xyxy [I, D, 4] float32, det_cls [I, D] int64, det_score [I, D] float32 (descending per image)."""

    gt_xyxy: np.ndarray
    gt_cls: np.ndarray
    det_xyxy: np.ndarray
    det_cls: np.ndarray
    det_score: np.ndarray

    @property
    def n_images(self) -> int:
        return int(self.gt_xyxy.shape[0])


def make_set(n_images: int, seed: int = 0) -> SyntheticSet:
    """The synthetic evaluation set described in the module docstring."""
    rng = np.random.default_rng(seed)
    k = len(CATEGORY_IDS)
    size = np.exp(rng.uniform(np.log(8), np.log(300), (n_images, GT_PER_IMAGE, 2)))
    size = np.minimum(size, [WIDTH - 1, HEIGHT - 1])
    x0 = rng.uniform(0, WIDTH - size[..., 0])
    y0 = rng.uniform(0, HEIGHT - size[..., 1])
    gt = np.round(np.stack([x0, y0, x0 + size[..., 0], y0 + size[..., 1]], axis=-1), 2)
    gt_cls = rng.integers(0, k, (n_images, GT_PER_IMAGE))

    pick = rng.integers(0, GT_PER_IMAGE, (n_images, NEAR_PER_IMAGE))
    near = np.take_along_axis(gt, pick[..., None], axis=1)
    wh = np.concatenate([near[..., 2:] - near[..., :2]] * 2, axis=-1)
    near = near + rng.normal(0, 0.1, near.shape) * wh
    near_cls = np.where(rng.random((n_images, NEAR_PER_IMAGE)) < 0.85, np.take_along_axis(gt_cls, pick, 1), 0)
    n_rand = DETS_PER_IMAGE - NEAR_PER_IMAGE
    rsize = np.exp(rng.uniform(np.log(4), np.log(320), (n_images, n_rand, 2)))
    rx = rng.uniform(0, WIDTH, (n_images, n_rand))
    ry = rng.uniform(0, HEIGHT, (n_images, n_rand))
    rand = np.stack([rx, ry, rx + rsize[..., 0], ry + rsize[..., 1]], axis=-1)
    det = np.concatenate([near, rand], axis=1)
    det[..., 0::2] = np.clip(det[..., 0::2], 0, WIDTH)
    det[..., 1::2] = np.clip(det[..., 1::2], 0, HEIGHT)
    det[..., 2:] = np.maximum(det[..., 2:], det[..., :2] + 1.0)
    det_cls = np.concatenate([near_cls, rng.integers(0, k, (n_images, n_rand))], axis=1)
    score = np.concatenate(
        [rng.uniform(0.3, 1.0, (n_images, NEAR_PER_IMAGE)), rng.uniform(0, 0.7, (n_images, n_rand))], 1
    )
    order = np.argsort(-score, axis=1, kind="stable")
    return SyntheticSet(
        gt,
        gt_cls,
        np.take_along_axis(det, order[..., None], 1).astype(np.float32),
        np.take_along_axis(det_cls, order, 1).astype(np.int64),
        np.take_along_axis(score, order, 1).astype(np.float32),
    )


def _categories() -> Categories:
    return Categories(tuple(Category(cid, f"class{cid}") for cid in CATEGORY_IDS))


def detforge_inputs(s: SyntheticSet) -> tuple[list[ImageRecord], list[Annotation], list[int], list[Detections]]:
    """detforge's native objects: image records, XYXY annotations, image ids and per-image `Detections`."""
    images = [ImageRecord(i + 1, f"{i + 1}.jpg", Path(f"{i + 1}.jpg"), WIDTH, HEIGHT) for i in range(s.n_images)]
    anns = [
        Annotation(i * GT_PER_IMAGE + g + 1, i + 1, CATEGORY_IDS[int(s.gt_cls[i, g])], tuple(s.gt_xyxy[i, g].tolist()))
        for i in range(s.n_images)
        for g in range(GT_PER_IMAGE)
    ]
    dets = [
        Detections(
            torch.from_numpy(s.det_xyxy[i]),
            torch.from_numpy(s.det_cls[i]),
            torch.from_numpy(s.det_score[i]),
            (HEIGHT, WIDTH),
        )
        for i in range(s.n_images)
    ]
    return images, anns, [im.id for im in images], dets


def coco_ground_truth(s: SyntheticSet) -> dict[str, Any]:
    """The same ground truth as a COCO dataset dict (XYWH boxes, area = box area)."""
    anns = []
    for i in range(s.n_images):
        for g in range(GT_PER_IMAGE):
            box = tuple(float(v) for v in s.gt_xyxy[i, g])
            x, y, w, h = xyxy_to_xywh(box)
            anns.append(
                {
                    "id": i * GT_PER_IMAGE + g + 1,
                    "image_id": i + 1,
                    "category_id": CATEGORY_IDS[int(s.gt_cls[i, g])],
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
    return {
        "images": [
            {"id": i + 1, "width": WIDTH, "height": HEIGHT, "file_name": f"{i + 1}.jpg"} for i in range(s.n_images)
        ],
        "annotations": anns,
        "categories": [{"id": c, "name": f"class{c}", "supercategory": ""} for c in CATEGORY_IDS],
    }


def coco_results(s: SyntheticSet) -> list[dict[str, Any]]:
    """The same detections as a COCO results list (XYWH from the float32 XYXY boxes, float64 maths)."""
    xyxy = s.det_xyxy.astype(np.float64).reshape(-1, 4)
    xywh = xyxy_to_xywh_array(xyxy).tolist()
    image_ids = np.repeat(np.arange(1, s.n_images + 1), DETS_PER_IMAGE).tolist()
    cats = np.asarray(CATEGORY_IDS)[s.det_cls.reshape(-1)].tolist()
    scores = s.det_score.astype(np.float64).reshape(-1).tolist()
    return [
        {"image_id": im, "category_id": c, "bbox": b, "score": sc}
        for im, c, b, sc in zip(image_ids, cats, xywh, scores, strict=True)
    ]


def _run_detforge(inputs: tuple[list[ImageRecord], list[Annotation], list[int], list[Detections]]) -> list[float]:
    images, anns, ids, dets = inputs
    evaluator = CocoEvaluator(images, anns, _categories())
    evaluator.process(ids, dets)
    m = evaluator.evaluate()
    return [m.ap, m.ap50, m.ap75, m.ap_small, m.ap_medium, m.ap_large,
            m.ar1, m.ar10, m.ar100, m.ar_small, m.ar_medium, m.ar_large]  # fmt: skip


def _run_pycocotools(gt_dict: dict[str, Any], results: list[dict[str, Any]]) -> list[float]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = gt_dict
        gt.createIndex()
        dt = gt.loadRes(results)
        e = COCOeval(gt, dt, "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    return [float(v) for v in e.stats[:12]]


def _run_faster_coco_eval(gt_dict: dict[str, Any], results: list[dict[str, Any]]) -> list[float]:
    from faster_coco_eval import COCO, COCOeval_faster

    def quiet(*args: object, **kwargs: object) -> None:
        return None

    gt = COCO(print_function=quiet)
    gt.dataset = gt_dict
    gt.createIndex()
    dt = gt.loadRes(results)
    e = COCOeval_faster(gt, dt, "bbox", print_function=quiet)
    e.evaluate()
    e.accumulate()
    e.summarize()
    return [float(v) for v in e.stats[:12]]


def _peers(s: SyntheticSet) -> dict[str, tuple[Callable[[], Any], Callable[[Any], list[float]]]]:
    """name -> (untimed setup giving fresh inputs, timed pipeline returning the 12 stats)."""
    det_inputs = detforge_inputs(s)
    gt_dict = coco_ground_truth(s)

    def coco_inputs() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return copy.deepcopy(gt_dict), coco_results(s)  # loadRes and COCOeval add keys to the dicts they get

    return {
        "detforge": (lambda: det_inputs, _run_detforge),
        "pycocotools": (coco_inputs, lambda a: _run_pycocotools(*a)),
        "faster_coco_eval": (coco_inputs, lambda a: _run_faster_coco_eval(*a)),
    }


def _subset(s: SyntheticSet, n: int) -> SyntheticSet:
    return SyntheticSet(s.gt_xyxy[:n], s.gt_cls[:n], s.det_xyxy[:n], s.det_cls[:n], s.det_score[:n])


_PYCOCOTOOLS_SCRIPT = """
import contextlib, io, json, sys
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(sys.argv[1]); dt = gt.loadRes(sys.argv[2]); e = COCOeval(gt, dt, "bbox")
    e.evaluate(); e.accumulate(); e.summarize()
print(json.dumps([float(v) for v in e.stats[:12]]))
"""
_STAT_KEYS = ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large",
              "ar1", "ar10", "ar100", "ar_small", "ar_medium", "ar_large")  # fmt: skip


def _timed_process(cmd: list[str]) -> tuple[float, float, str]:
    """(wall s, CPU s of the child: user + sys, stdout) of one command; RuntimeError if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, done.stdout


def whole_process(s: SyntheticSet, rounds: int = 3) -> dict[str, Any]:
    """Time `detforge eval --detections` against a pycocotools script as whole processes (module docstring)."""
    with tempfile.TemporaryDirectory(prefix="bench_eval_") as tmp:
        data, results = Path(tmp) / "data", Path(tmp) / "results.json"
        data.mkdir()
        (data / "test.json").write_text(json.dumps(coco_ground_truth(s)), encoding="utf-8")
        results.write_text(json.dumps(coco_results(s)), encoding="utf-8")
        commands = {
            "detforge": [sys.executable, "-m", "detforge", "eval", "--detections", str(results), str(data),
                         "--split", "test", "--json", "--no-progress"],
            "pycocotools": [sys.executable, "-c", _PYCOCOTOOLS_SCRIPT, str(data / "test.json"), str(results)],
        }  # fmt: skip
        wall: dict[str, list[float]] = {n: [] for n in commands}
        cpu: dict[str, list[float]] = {n: [] for n in commands}
        stats: dict[str, list[float]] = {}
        for r in range(rounds):
            for name in commands if r % 2 == 0 else reversed(list(commands)):
                w, c, out = _timed_process(commands[name])
                wall[name].append(w)
                cpu[name].append(c)
                parsed = json.loads(out)
                stats[name] = parsed if name == "pycocotools" else [parsed["metrics"][k] for k in _STAT_KEYS]
    diff = max(abs(a - b) for a, b in zip(stats["detforge"], stats["pycocotools"], strict=True))
    med = {n: {"wall_s": float(np.median(wall[n])), "cpu_s": float(np.median(cpu[n]))} for n in commands}
    ratio = med["pycocotools"]["wall_s"] / med["detforge"]["wall_s"]
    per_round = [p / d for p, d in zip(wall["pycocotools"], wall["detforge"], strict=True)]
    return {
        "case": f"whole process, start to exit: `detforge eval --detections results.json DATA --json` (all default "
        f"outputs, bootstrap 200) vs a pycocotools script (COCO(file), loadRes(file), evaluate, accumulate, "
        f"summarize), {s.n_images} images, {s.n_images * DETS_PER_IMAGE} detections",
        "detforge": round(med["detforge"]["wall_s"], 2),
        "peer": round(med["pycocotools"]["wall_s"], 2),
        "unit": "s",
        "ratio": round(ratio, 2),
        "ratio_min": round(min(per_round), 2),
        "ratio_max": round(max(per_round), 2),
        "cpu_ratio": round(med["pycocotools"]["cpu_s"] / med["detforge"]["cpu_s"], 2),
        "cpu_s": {n: round(m["cpu_s"], 2) for n, m in med.items()},
        "samples_wall_s": {n: [round(v, 2) for v in wall[n]] for n in commands},
        "goal": f">= {GOAL_VS_PYCOCOTOOLS:g}x",
        "meets_goal": ratio >= GOAL_VS_PYCOCOTOOLS,
        "detforge_loses": ratio < 1.0,
        "note": f"12 stats max abs diff {diff:.1e}; wall medians of {rounds} interleaved rounds",
    }


def main(out_dir: Path, *, quick: bool, process_only: bool = False) -> dict[str, Any]:
    """Time the three evaluators on the synthetic set (5,000 images; quick: 500) and check their stats agree.

    Returns and writes `out_dir/eval.json`: seconds per evaluation (median/min/max over rounds), speed-up
    ratios (peer seconds / detforge seconds; min/max over the per-round ratios) and the max absolute
    difference between detforge's 12 stats and each peer's. Then the whole-process row (`whole_process`);
    `process_only` runs only that one.
    """
    set_threads()
    n_images = 500 if quick else 5000
    rounds = 3
    full = make_set(n_images)
    if process_only:
        only = {"name": "eval", "title": "COCO evaluation as whole processes", "images": n_images, "rows": []}
        only["rows"] = [whole_process(full, rounds)]
        write_result(out_dir, "eval", only)
        return only
    for setup, run in _peers(_subset(full, 200)).values():  # warm-up: imports, caches, allocator
        run(setup())
    peers = _peers(full)
    names = list(peers)
    samples: dict[str, list[float]] = {n: [] for n in names}
    stats: dict[str, list[float]] = {}
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            setup, run = peers[name]
            args = setup()
            start = time.perf_counter()
            stats[name] = run(args)
            samples[name].append(time.perf_counter() - start)
            del args
    ref = stats["detforge"]
    diffs = {n: max(abs(a - b) for a, b in zip(ref, stats[n], strict=True)) for n in names if n != "detforge"}
    timings = {n: summarize(samples[n]) for n in names}
    rows = []
    for peer, goal in (("pycocotools", GOAL_VS_PYCOCOTOOLS), ("faster_coco_eval", 1.0)):
        per_round = [p / d for p, d in zip(samples[peer], samples["detforge"], strict=True)]
        ratio = timings[peer].median_s / timings["detforge"].median_s
        rows.append(
            {
                "case": f"{n_images} images, {n_images * DETS_PER_IMAGE} detections vs {peer}",
                "detforge": round(timings["detforge"].median_s, 3),
                "peer": round(timings[peer].median_s, 3),
                "unit": "s",
                "ratio": round(ratio, 2),
                "ratio_min": round(min(per_round), 2),
                "ratio_max": round(max(per_round), 2),
                "goal": f">= {goal:g}x",
                "meets_goal": ratio >= goal,
                "detforge_loses": ratio < 1.0,
                "note": f"12 stats max abs diff {diffs[peer]:.1e}",
            }
        )
    rows.append(whole_process(full, rounds))
    result: dict[str, Any] = {
        "name": "eval",
        "title": "COCO box evaluation: inner call from Python objects, and whole processes from files "
        "(speed-up = peer s / detforge s)",
        "goal": f">= {GOAL_VS_PYCOCOTOOLS:g}x faster than pycocotools with identical stats",
        "images": n_images,
        "gt_boxes": n_images * GT_PER_IMAGE,
        "detections": n_images * DETS_PER_IMAGE,
        "rounds": rounds,
        "seconds": {n: timing_dict(t) for n, t in timings.items()},
        "samples_s": {n: [round(v, 3) for v in samples[n]] for n in names},
        "stats": {n: [round(v, 6) for v in stats[n]] for n in names},
        "max_abs_stat_diff": diffs,
        "stats_identical": all(d == 0.0 for d in diffs.values()),
        "rows": rows,
    }
    write_result(out_dir, "eval", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="detforge CocoEvaluator vs pycocotools and faster-coco-eval")
    parser.add_argument("--quick", action="store_true", help="500 images instead of 5,000")
    parser.add_argument("--process-only", action="store_true", help="only the whole-process row")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args()
    res = main(args.out, quick=args.quick, process_only=args.process_only)
    res["machine"] = machine_info(with_matmul=False)
    print(json.dumps({k: res[k] for k in ("seconds", "max_abs_stat_diff", "rows", "machine") if k in res}, indent=2))
