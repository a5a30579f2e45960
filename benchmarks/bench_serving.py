"""HTTP serving throughput: detforge's dynamic batching on (max_batch 8) vs off (max_batch 1).

Each configuration runs in its own subprocess: `detforge.serving.create_app` around a real
`detforge.inference.Predictor` of fasterrcnn_mobilenet_v3_large_320_fpn (random weights, trainable
BatchNorm whose statistics are set on random images first, 1 class), served by uvicorn on a free
127.0.0.1 port with 2 torch threads. A bounded async load generator (httpx, this process) sends N raw
640x480 JPEG uploads to `POST /v1/detect` at concurrency 1, 4 and 16; the two servers are measured in
interleaved rounds (order alternating), after warm-up requests. Reported per configuration and
concurrency: requests/s, p50 and p99 client latency; the figure is the throughput ratio batching on /
off. Loopback only; every request and every server is bounded in time.
Run: `.venv/bin/python benchmarks/bench_serving.py [--quick] [--out benchmarks/results]`.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import THREADS, set_threads, write_result

__all__ = ["main"]

MODEL = "fasterrcnn_mobilenet_v3_large_320_fpn"
CONCURRENCY = (1, 4, 16)
CONFIGS = {"batching_on": 8, "batching_off": 1}
GOAL_AT_16 = 1.5
REQUEST_TIMEOUT_S = 60.0
START_TIMEOUT_S = 180.0


def _jpeg(seed: int) -> bytes:
    """A 640x480 JPEG: smooth gradients plus a few filled rectangles (photo-like size, ~20-40 kB)."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:480, 0:640]
    base = np.stack([(x * 255 / 640), (y * 255 / 480), ((x + y) * 127 / 1120)], axis=-1)
    img = Image.fromarray((base + rng.normal(0, 6, base.shape)).clip(0, 255).astype("uint8"))
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, 560)), int(rng.integers(0, 400))
        draw.rectangle(
            [x0, y0, x0 + int(rng.integers(20, 80)), y0 + int(rng.integers(20, 80))],
            fill=tuple(rng.integers(0, 255, 3).tolist()),
        )
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def _serve(port: int, max_batch: int, device: str = "cpu", model: str = MODEL) -> None:
    """Subprocess body: build the predictor on `device` and serve it on 127.0.0.1:`port` until terminated."""
    import torch
    import uvicorn

    from detforge.inference import Predictor
    from detforge.models.build import build_detector
    from detforge.serving import LoadedModel, ServeSettings, create_app
    from detforge.serving.compute import reserve_main_thread

    set_threads(THREADS)
    plan = reserve_main_thread()  # as `detforge serve` does: no OpenMP team on the main thread
    torch.manual_seed(0)
    detector, _ = build_detector(model, num_classes=1, weights="none", download=None)
    backbone = detector.model.backbone
    assert isinstance(backbone, torch.nn.Module)
    for m in backbone.modules():  # cumulative BatchNorm statistics from a few random images
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    backbone.train()
    with torch.no_grad():
        for _ in range(4):
            backbone(torch.rand(2, 3, 320, 320))
    predictor = Predictor(detector, class_names=["object"], device=device, batch_size=max_batch)
    settings = ServeSettings(
        host="127.0.0.1", port=port, max_batch=max_batch, queue_size=64, timeout_s=REQUEST_TIMEOUT_S
    )
    app = create_app(LoadedModel.of(predictor, name=model), settings=settings, plan=plan)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", server_header=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + START_TIMEOUT_S
    async with httpx.AsyncClient(timeout=5.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the server for {base} exited with status {proc.returncode}")
            try:
                if (await client.get(base + "/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{base} was not ready within {START_TIMEOUT_S:.0f} s")


async def _load(base: str, images: list[bytes], n_requests: int, concurrency: int) -> dict[str, Any]:
    """Send `n_requests` uploads with at most `concurrency` in flight; requests/s and latencies (ms)."""
    import httpx

    latencies: list[float] = []
    errors = 0
    next_index = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal next_index, errors
        while next_index < n_requests:
            i = next_index
            next_index += 1
            start = time.perf_counter()
            r = await client.post(
                base + "/v1/detect", content=images[i % len(images)], headers={"Content-Type": "image/jpeg"}
            )
            latencies.append((time.perf_counter() - start) * 1000)
            if r.status_code != 200:
                errors += 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, limits=limits) as client:
        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    lat = sorted(latencies)
    return {
        "requests": n_requests,
        "errors": errors,
        "seconds": round(wall, 3),
        "rps": n_requests / wall,
        "p50_ms": statistics.median(lat),
        "p99_ms": lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))],
        "client_cpu_ms_per_request": 1000 * cpu / n_requests,  # the load generator shares the machine's cores
    }


async def _bench(quick: bool, device: str, model: str) -> dict[str, Any]:
    rounds = 1 if quick else 3
    per_concurrency = {1: 6, 4: 16, 16: 32} if quick else {1: 16, 4: 48, 16: 96}
    images = [_jpeg(s) for s in range(8)]
    procs: dict[str, subprocess.Popen[bytes]] = {}
    bases: dict[str, str] = {}
    try:
        for name, max_batch in CONFIGS.items():
            port = _free_port()
            cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", str(port), str(max_batch), device, model]
            procs[name] = subprocess.Popen(cmd)
            bases[name] = f"http://127.0.0.1:{port}"
        for name in CONFIGS:
            await _wait_ready(bases[name], procs[name])
            await _load(bases[name], images, 8 if quick else 16, 4)  # warm-up
        runs: dict[str, dict[int, list[dict[str, Any]]]] = {n: {c: [] for c in CONCURRENCY} for n in CONFIGS}
        names = list(CONFIGS)
        for r in range(rounds):
            for c in CONCURRENCY:
                for name in names if (r + c) % 2 == 0 else reversed(names):
                    runs[name][c].append(await _load(bases[name], images, per_concurrency[c], c))
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return {"rounds": rounds, "requests": per_concurrency, "runs": runs}


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def main(out_dir: Path, *, quick: bool, device: str = "cpu", model: str = MODEL) -> dict[str, Any]:
    """Measure both servers at concurrency 1/4/16 (quick: 1 round, fewer requests) and write `serving.json`.

    Returns per configuration and concurrency the median requests/s, p50 and p99 latency (ms) over rounds,
    and rows with the throughput ratio batching on / off (min/max over the per-round ratios).
    """
    raw = asyncio.run(_bench(quick, device, model))
    runs = raw["runs"]
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for name in CONFIGS:
        summary[name] = {}
        for c in CONCURRENCY:
            rs = runs[name][c]
            summary[name][str(c)] = {
                "rps": round(_median([x["rps"] for x in rs]), 2),
                "rps_min": round(min(x["rps"] for x in rs), 2),
                "rps_max": round(max(x["rps"] for x in rs), 2),
                "p50_ms": round(_median([x["p50_ms"] for x in rs]), 1),
                "p99_ms": round(_median([x["p99_ms"] for x in rs]), 1),
                "errors": sum(x["errors"] for x in rs),
                "client_cpu_ms_per_request": round(_median([x["client_cpu_ms_per_request"] for x in rs]), 2),
            }
    rows = []
    for c in CONCURRENCY:
        on, off = summary["batching_on"][str(c)], summary["batching_off"][str(c)]
        per_round = [a["rps"] / b["rps"] for a, b in zip(runs["batching_on"][c], runs["batching_off"][c], strict=True)]
        ratio = on["rps"] / off["rps"]
        goal = GOAL_AT_16 if c == 16 else None
        rows.append(
            {
                "case": f"concurrency {c}: requests/s, batching on (max_batch 8) vs off (max_batch 1)",
                "detforge": on["rps"],
                "peer": off["rps"],
                "unit": "req/s",
                "ratio": round(ratio, 2),
                "ratio_min": round(min(per_round), 2),
                "ratio_max": round(max(per_round), 2),
                "goal": f">= {goal:g}x" if goal else "",
                "meets_goal": None if goal is None else ratio >= goal,
                "detforge_loses": ratio < 1.0,
                "loses_label": "batching loses",  # both sides are detforge: the peer is batching off
                "note": f"p50/p99 ms: on {on['p50_ms']:.0f}/{on['p99_ms']:.0f}, "
                f"off {off['p50_ms']:.0f}/{off['p99_ms']:.0f}"
                + (f"; errors {on['errors'] + off['errors']}" if on["errors"] + off["errors"] else ""),
            }
        )
    result: dict[str, Any] = {
        "name": "serving",
        "title": f"HTTP serving ({model} on {device}, random weights, 640x480 JPEG uploads, loopback): "
        "dynamic batching",
        "goal": f">= {GOAL_AT_16:g}x requests/s from batching at concurrency 16",
        "model": model,
        "device": device,
        "rounds": raw["rounds"],
        "requests_per_run": {str(k): v for k, v in raw["requests"].items()},
        "summary": summary,
        "runs": {n: {str(c): v for c, v in d.items()} for n, d in runs.items()},
        "rows": rows,
    }
    write_result(out_dir, "serving" if device == "cpu" else f"serving_{device.split(':')[0]}", result)
    return result


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--serve":
        _serve(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
        sys.exit(0)
    parser = argparse.ArgumentParser(description="detforge serving: dynamic batching on vs off")
    parser.add_argument("--quick", action="store_true", help="one round with fewer requests")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--device", default="cpu", help="where the servers' model runs (cpu, cuda)")
    parser.add_argument("--model", default=MODEL, help="zoo model name (random weights)")
    args = parser.parse_args()
    res = main(args.out, quick=args.quick, device=args.device, model=args.model)
    print(json.dumps({"summary": res["summary"], "rows": res["rows"]}, indent=2))
