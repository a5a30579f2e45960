"""Where training numbers go: `metrics.jsonl` (one complete JSON object per line), TensorBoard events
in `tb/`, a tqdm progress bar, and the `logging` module. Only rank 0 creates one of these."""

from __future__ import annotations

import json
import logging
import math
import time
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from detforge.progress import progress_enabled

__all__ = ["METRICS_FILE", "TrainLogger", "read_metrics"]

logger = logging.getLogger("detforge.train")

METRICS_FILE = "metrics.jsonl"


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "nan" / "inf": JSON has no NaN
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def read_metrics(out_dir: Path) -> list[dict[str, Any]]:
    """Every event of `out_dir/metrics.jsonl`, in order (a torn last line from a kill is skipped)."""
    path = out_dir / METRICS_FILE
    events = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return events


class TrainLogger:
    """Writes events for one run; use as a context manager so files are closed on every exit path.

    `event(kind, iteration, **values)` appends ``{"event": kind, "iteration": i, "time": unix, ...}`` to
    metrics.jsonl (write + flush per line) and adds numeric values to TensorBoard under `kind/name`.
    With `enabled=False` (ranks other than 0) nothing is written anywhere.
    """

    def __init__(self, out_dir: Path, *, total: int, start: int, enabled: bool, progress: bool) -> None:
        self.enabled = enabled
        self._file = None
        self._tb: Any = None
        self._bar: tqdm[Any] | None = None
        self._stack = ExitStack()
        if not enabled:
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        self._file = open(out_dir / METRICS_FILE, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        from torch.utils.tensorboard import SummaryWriter

        self._tb = SummaryWriter(log_dir=str(out_dir / "tb"), purge_step=start if start else None)
        if progress_enabled(progress):  # a terminal on stderr, and not --no-progress
            self._bar = tqdm(total=total, initial=start, desc="train", unit="it", dynamic_ncols=True, smoothing=0.1)
            self._stack.enter_context(logging_redirect_tqdm())  # log lines print above the bar

    def event(self, kind: str, iteration: int, **values: Any) -> None:
        if not self.enabled or self._file is None:
            return
        record = {"event": kind, "iteration": iteration, "time": round(time.time(), 3), **_json_safe(values)}
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        for name, value in values.items():
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                self._tb.add_scalar(f"{kind}/{name}", value, iteration)
        self._tb.flush()

    def progress(self, iteration: int, losses: dict[str, float]) -> None:
        """Move the bar to `iteration` and show the current losses."""
        if self._bar is not None:
            self._bar.update(iteration - self._bar.n)
            shown = {k.removeprefix("loss_"): f"{v:.3f}" for k, v in losses.items()}
            self._bar.set_postfix(shown, refresh=False)

    def set_total(self, total: int) -> None:
        """The number of iterations the progress bar counts to (the run's plan changed)."""
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def info(self, message: str, *args: Any) -> None:
        if self.enabled:
            logger.info(message, *args)

    def close(self) -> None:
        self._stack.close()
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> TrainLogger:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
