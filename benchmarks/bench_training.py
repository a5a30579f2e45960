"""Training overhead: detforge's `train_from_config` (hooks on) vs a plain torchvision training loop.

Both train `fasterrcnn_mobilenet_v2_fpn` (ImageNet backbone, built by `detforge.models.build_detector`)
on the same bundled sample images (`make_sample`, n=40), batch 2, image size 512, SGD with the same
learning rate, momentum, weight decay and warmup, random horizontal flips, 2 torch threads and the
default number of loader workers. Each run is its own process (so peak RSS is its own), and the
detforge and plain runs alternate. Reported: seconds per step (median/min/max over the timed steps
of all rounds), images/s, the share of step time spent waiting for the next batch, and peak RSS.
Goals: detforge within 3% of the plain loop; data wait < 5% of step time.

    python benchmarks/bench_training.py [--quick] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _common import (  # noqa: E402
    THREADS,
    machine_info,
    peak_rss_mib,
    set_threads,
    summarize,
    write_result,
)

MODEL = "fasterrcnn_mobilenet_v2_fpn"
MIN_SIZE = 512
MAX_SIZE = 853  # the zoo default for this model at 512
BATCH = 2
LR = 0.0025
MOMENTUM = 0.9
WEIGHT_DECAY = 1e-4
WARMUP_ITERS = 100
WARMUP_FACTOR = 0.001
SAMPLE_IMAGES = 40
GOAL_OVERHEAD = 0.03
GOAL_DATA_WAIT = 0.05


# --------------------------------------------------------------------------------------------------
# workers (each runs in its own process)
# --------------------------------------------------------------------------------------------------
def _detforge_worker(data: Path, run_dir: Path, iters: int, augment: str, device: str, batch: int) -> dict[str, Any]:
    """train_from_config with every default hook; step starts and loader waits recorded by wrapping the
    Trainer's `step` and `_next_batch` (the originals run unchanged)."""
    from detforge.config import Config
    from detforge.engine import train_from_config
    from detforge.engine.loop import Trainer

    starts: list[float] = []
    ends: list[float] = []
    waits: list[float] = []
    original_step: Callable[[Trainer], dict[str, float]] = Trainer.step
    original_next = Trainer._next_batch

    def step(self: Trainer) -> dict[str, float]:
        starts.append(time.perf_counter())
        losses = original_step(self)
        ends.append(time.perf_counter())
        return losses

    def next_batch(self: Trainer) -> Any:
        t0 = time.perf_counter()
        batch = original_next(self)
        waits.append(time.perf_counter() - t0)
        return batch

    Trainer.step = step  # type: ignore[method-assign]
    Trainer._next_batch = next_batch  # type: ignore[method-assign]
    config = Config.model_validate({
        "model": {"name": MODEL, "weights": "imagenet", "min_size": MIN_SIZE, "max_size": MAX_SIZE},
        "data": {"path": str(data), "val": None, "augment": augment},
        "train": {
            "batch_size": batch, "lr": LR, "momentum": MOMENTUM, "weight_decay": WEIGHT_DECAY, "max_iter": iters,
            "warmup_iters": WARMUP_ITERS, "warmup_factor": WARMUP_FACTOR, "steps": [10**6], "device": device,
        },
        "eval": {"period": 10**6},
    })  # fmt: skip
    t0 = time.perf_counter()
    train_from_config(config, out_dir=run_dir, progress=False)
    end = time.perf_counter()
    return {"starts": starts, "ends": ends, "waits": waits, "call_start": t0, "call_end": end}


class _PlainDataset:
    """What a torchvision user writes: read the COCO json, open with PIL, to tensor, flip half the time."""

    def __init__(self, root: Path) -> None:
        coco = json.loads((root / "annotations" / "instances_train.json").read_text())
        self.root = root
        self.images = coco["images"]
        by_image: dict[int, list[list[float]]] = {im["id"]: [] for im in self.images}
        for ann in coco["annotations"]:
            x, y, w, h = ann["bbox"]
            by_image[ann["image_id"]].append([x, y, x + w, y + h])
        self.boxes = by_image

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[Any, dict[str, Any]]:
        import torch
        from PIL import Image, ImageOps
        from torchvision.transforms.v2 import functional as F

        info = self.images[i]
        with Image.open(self.root / "images" / "train" / info["file_name"]) as pil:
            image = F.to_dtype(F.pil_to_tensor(ImageOps.exif_transpose(pil).convert("RGB")), torch.float32, scale=True)
        boxes = torch.tensor(self.boxes[info["id"]], dtype=torch.float32).reshape(-1, 4)
        if torch.rand(()) < 0.5:
            image = image.flip(-1)
            width = image.shape[-1]
            boxes = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], 1)
        return image, {"boxes": boxes, "labels": torch.ones(len(boxes), dtype=torch.int64)}


def _plain_worker(data: Path, iters: int, device: str, batch: int, cudnn_benchmark: bool) -> dict[str, Any]:
    """The loop from torchvision's detection tutorial, on the same torchvision module detforge builds.
    On CUDA it is the tutorial's AMP recipe: bf16 autocast, `.to(device)` copies, `loss.item()` per step
    (torchvision's reference script checks every loss for finiteness), cuDNN benchmark as given."""
    import contextlib

    import torch

    from detforge.data.loader import default_num_workers
    from detforge.models import build_detector

    torch.manual_seed(0)
    detector, _ = build_detector(MODEL, num_classes=1, weights="imagenet", min_size=MIN_SIZE, max_size=MAX_SIZE)
    cuda = device.startswith("cuda")
    torch.backends.cudnn.benchmark = cudnn_benchmark
    model = detector.model.to(device)
    model.train()
    dataset = _PlainDataset(data)
    loader: Any = torch.utils.data.DataLoader(
        dataset,  # type: ignore[arg-type]
        batch_size=batch, shuffle=True, num_workers=default_num_workers(),
        collate_fn=lambda b: tuple(zip(*b, strict=True)),
    )  # fmt: skip
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=WARMUP_FACTOR, total_iters=WARMUP_ITERS)
    starts: list[float] = []
    ends: list[float] = []
    waits: list[float] = []
    batches = iter(loader)
    t0 = time.perf_counter()
    for _ in range(iters):
        starts.append(time.perf_counter())
        try:
            images, targets = next(batches)
        except StopIteration:
            batches = iter(loader)
            images, targets = next(batches)
        waits.append(time.perf_counter() - starts[-1])
        if cuda:
            images = [im.to(device) for im in images]
            targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
        with autocast:
            losses = model(list(images), list(targets))
            loss = sum(losses.values())
        optimizer.zero_grad()
        loss.backward()  # type: ignore[union-attr]
        optimizer.step()
        scheduler.step()
        if cuda:
            loss.item()  # type: ignore[union-attr]
        ends.append(time.perf_counter())
    end = time.perf_counter()
    return {"starts": starts, "ends": ends, "waits": waits, "call_start": t0, "call_end": end}


def _worker_main(args: argparse.Namespace) -> None:
    set_threads(THREADS)
    t_import = time.perf_counter()
    data = Path(args.data)
    if args.worker == "detforge":
        result = _detforge_worker(data, Path(args.run_dir), args.iters, args.augment, args.device, args.batch)
    else:
        result = _plain_worker(data, args.iters, args.device, args.batch, args.cudnn_benchmark)
    result["peak_rss_mib"] = round(peak_rss_mib(), 1)
    if args.device.startswith("cuda"):
        import torch

        result["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    result["worker_start"] = t_import
    Path(args.result).write_text(json.dumps(result))


# --------------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------------
def _run_worker(
    kind: str, data: Path, tmp: Path, iters: int, tag: str, augment: str = "light", *,
    device: str = "cpu", batch: int = BATCH, cudnn_benchmark: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Run one training worker in its own process and return what it recorded (see the workers)."""
    result = tmp / f"{tag}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--data", str(data), "--iters", str(iters),
           "--result", str(result), "--run-dir", str(tmp / f"run_{tag}"), "--augment", augment,
           "--device", device, "--batch", str(batch)] + (["--cudnn-benchmark"] if cudnn_benchmark else [])  # fmt: skip
    subprocess.run(cmd, check=True)
    out: dict[str, Any] = json.loads(result.read_text())
    return out


def _intervals(run: dict[str, Any], warmup: int) -> tuple[list[float], list[float]]:
    """(step times, loader waits) of the timed steps: step k's time is start[k+1] - start[k]."""
    starts, waits = run["starts"], run["waits"]
    steps = [b - a for a, b in zip(starts[warmup:-1], starts[warmup + 1 :], strict=True)]
    return steps, waits[warmup:-1]


def _summary(runs: list[dict[str, Any]], warmup: int, batch: int = BATCH) -> dict[str, Any]:
    steps: list[float] = []
    waits: list[float] = []
    for run in runs:
        s, w = _intervals(run, warmup)
        steps += s
        waits += w
    t = summarize(steps)
    return {
        "step_s": {"median": round(t.median_s, 4), "min": round(t.min_s, 4), "max": round(t.max_s, 4), "n": t.n},
        "images_per_s": round(batch / t.median_s, 3),
        "images_per_s_mean": round(batch * len(steps) / sum(steps), 3),
        "data_wait_share": round(sum(waits) / sum(steps), 4),
        "data_wait_ms_median": round(statistics.median(waits) * 1000, 1),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        "peak_cuda_mib": max(r.get("peak_cuda_mib", 0.0) for r in runs),
        "setup_s": round(statistics.median(r["starts"][0] - r["call_start"] for r in runs), 2),
        "finish_s": round(statistics.median(r["call_end"] - r["ends"][-1] for r in runs), 2),
        "per_round_median_step_s": [round(statistics.median(_intervals(r, warmup)[0]), 4) for r in runs],
    }


def _loader_only(data: Path, augment: str, batches: int) -> float:
    """Median seconds to produce one batch of 2 with detforge's default loader and `augment`, no training."""
    from detforge.config import Config
    from detforge.data.formats import load_dataset
    from detforge.engine.distributed import DistInfo
    from detforge.engine.setup import build_train_loader

    config = Config.model_validate({"data": {"path": str(data), "augment": augment}})
    train = load_dataset(data).subset("train")
    _, loader = build_train_loader(config, train, DistInfo(), max_size=MAX_SIZE, pin_memory=False)
    times = []
    it = iter(loader)
    for _ in range(batches):
        t0 = time.perf_counter()
        try:
            next(it)
        except StopIteration:
            it = iter(loader)
            next(it)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:] if len(times) > 1 else times)


def main(out_dir: Path, *, quick: bool) -> dict[str, Any]:
    """Run the benchmark, write `out_dir/bench_training[_quick].json` and return what it holds."""
    from detforge.data.sample import make_sample

    set_threads(THREADS)
    warmup, timed, rounds = (1, 2, 1) if quick else (2, 10, 2)
    iters = warmup + timed + 1
    started = time.perf_counter()
    runs: dict[str, list[dict[str, Any]]] = {"detforge": [], "plain": []}
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp_name:
        tmp = Path(tmp_name)
        data = make_sample(tmp / "data", n=SAMPLE_IMAGES)
        for r in range(rounds):
            order = ["detforge", "plain"] if r % 2 == 0 else ["plain", "detforge"]
            for kind in order:
                runs[kind].append(_run_worker(kind, data, tmp, iters, f"{kind}{r}"))
        detforge = _summary(runs["detforge"], warmup)
        plain = _summary(runs["plain"], warmup)
        set_threads(THREADS)
        standard_load_s = _loader_only(data, "standard", 6 if quick else 12)
    overhead = detforge["step_s"]["median"] / plain["step_s"]["median"] - 1.0
    standard_share = standard_load_s / detforge["step_s"]["median"]
    result: dict[str, Any] = {
        "benchmark": "training",
        "quick": quick,
        "setup": {
            "model": MODEL,
            "weights": "imagenet",
            "min_size": MIN_SIZE,
            "max_size": MAX_SIZE,
            "batch": BATCH,
            "threads": THREADS,
            "train_images": "make_sample(n=40): 28 train images (480-800 px)",
            "augmentation": "random horizontal flip in both (detforge data.augment=light)",
            "loader_workers": "default (detforge.data.loader.default_num_workers) in both",
            "rounds": rounds,
            "warmup_steps": warmup,
            "timed_steps_per_round": timed,
            "detforge": "train_from_config: LogHook, TimeBudgetHook, CheckpointHook on; no validation subset; "
            "defaults otherwise (deterministic=auto -> on for CPU)",
            "plain": "torchvision tutorial loop: DataLoader(shuffle) + model(images, targets) + SGD + LinearLR",
        },
        "detforge": detforge,
        "plain": plain,
        "ratios": {
            "detforge_step_time_over_plain": round(detforge["step_s"]["median"] / plain["step_s"]["median"], 4),
            "detforge_overhead": round(overhead, 4),
            "detforge_images_per_s_over_plain": round(detforge["images_per_s"] / plain["images_per_s"], 4),
            "detforge_peak_rss_over_plain": round(detforge["peak_rss_mib"] / plain["peak_rss_mib"], 4),
        },
        "data_wait_default_augment": {
            "augment": "standard (detforge default: flip, zoom-out, colour jitter)",
            "load_ms_per_batch": round(standard_load_s * 1000, 1),
            "share_of_detforge_step": round(standard_share, 4),
        },
        "goals": {
            "within_3pct_of_plain": {
                "goal": GOAL_OVERHEAD,
                "measured": round(overhead, 4),
                "met": overhead <= GOAL_OVERHEAD,
            },
            "data_wait_below_5pct": {
                "goal": GOAL_DATA_WAIT,
                "measured": detforge["data_wait_share"],
                "measured_standard_augment": round(standard_share, 4),
                "met": detforge["data_wait_share"] < GOAL_DATA_WAIT and standard_share < GOAL_DATA_WAIT,
            },
        },
        "machine": machine_info(),
        "wall_s": round(time.perf_counter() - started, 1),
    }
    write_result(out_dir, "bench_training_quick" if quick else "bench_training", result)
    return result


def _print(result: dict[str, Any]) -> None:
    for kind in ("detforge", "plain"):
        r = result[kind]
        s = r["step_s"]
        print(f"{kind:9s} step {s['median']:.3f} s (min {s['min']:.3f}, max {s['max']:.3f}, n={s['n']})  "
              f"{r['images_per_s']:.2f} img/s  data wait {100 * r['data_wait_share']:.1f}%  "
              f"peak RSS {r['peak_rss_mib']:.0f} MiB  setup {r['setup_s']} s  finish {r['finish_s']} s")  # fmt: skip
    g = result["goals"]
    print(f"overhead vs plain: {100 * g['within_3pct_of_plain']['measured']:+.1f}% (goal <= 3%: "
          f"{'met' if g['within_3pct_of_plain']['met'] else 'NOT met'}); data wait goal < 5%: "
          f"{'met' if g['data_wait_below_5pct']['met'] else 'NOT met'} (standard augment "
          f"{100 * g['data_wait_below_5pct']['measured_standard_augment']:.1f}%)")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--worker", choices=["detforge", "plain"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--iters", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)
    parser.add_argument("--augment", default="light", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=BATCH, help=argparse.SUPPRESS)
    parser.add_argument("--cudnn-benchmark", action="store_true", help=argparse.SUPPRESS)
    cli = parser.parse_args()
    if cli.worker:
        _worker_main(cli)
    else:
        _print(main(cli.out, quick=cli.quick))
