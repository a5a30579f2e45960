"""Hot reload: a replaced model file is loaded in the background and swapped in between batches."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

from detforge.serving import LoadedModel, ModelHolder, ModelWatcher, ServeSettings, create_app


def test_watcher_swaps_a_replaced_file_and_keeps_the_old_on_failure(fake_predictor, tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"v1")
    holder = ModelHolder(LoadedModel(fake_predictor(), name="v1"))

    def loader(p: Path) -> LoadedModel:
        content = p.read_text()
        if content == "broken":
            raise ValueError("not a model")
        return LoadedModel(fake_predictor(("bird",)), name=content)

    watcher = ModelWatcher(path, loader, holder, interval_s=0.02)
    candidate = watcher.poll(None)
    assert holder.current().name == "v1"  # unchanged file: nothing loaded

    path.write_bytes(b"version-two")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10_000_000))
    candidate = watcher.poll(candidate)
    assert holder.current().name == "v1"  # first sight of a change: wait until it holds still
    candidate = watcher.poll(candidate)
    assert holder.current().name == "version-two" and holder.current().predictor.class_names == ("bird",)

    path.write_bytes(b"broken")
    candidate = watcher.poll(watcher.poll(candidate))
    assert holder.current().name == "version-two" and watcher.failures == 1

    path.write_bytes(b"v3 in a thread")
    watcher.start()
    try:
        for _ in range(300):
            if holder.current().name == "v3 in a thread":
                break
            time.sleep(0.01)
    finally:
        watcher.stop()
    assert holder.current().name == "v3 in a thread"


def test_in_flight_request_finishes_on_the_old_model(fake_predictor, image_bytes, serving) -> None:
    gate = threading.Event()
    old = fake_predictor(("old-class",))
    holder = ModelHolder(LoadedModel(old, name="old"))
    app = create_app(holder, settings=ServeSettings(max_wait_ms=0))
    headers = {"content-type": "image/png"}

    async def main() -> None:
        async with serving(app) as client:
            old.gate = gate
            old.started.clear()
            in_flight = asyncio.create_task(client.post("/v1/detect", content=image_bytes(), headers=headers))
            await asyncio.to_thread(old.started.wait, 5)
            holder.swap(LoadedModel(fake_predictor(("new-class",)), name="new", version="2"))
            gate.set()
            first = await in_flight
            assert first.status_code == 200
            assert first.json()["model"] == "old" and first.json()["labels"][0] == "old-class"
            second = await client.post("/v1/detect", content=image_bytes(), headers=headers)
            assert second.json()["model"] == "new" and second.json()["labels"][0] == "new-class"
            assert (await client.get("/v1/model")).json()["version"] == "2"

    asyncio.run(main())
