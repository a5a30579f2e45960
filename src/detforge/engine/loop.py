"""The training loop: one optimizer step at a time, hooks around it, everything needed to resume exactly."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast, get_args

import numpy as np
import torch
from torch import Tensor, nn

from detforge.config import Config
from detforge.data.loader import Batch
from detforge.data.sampler import TrainingSampler
from detforge.engine.distributed import DistInfo, all_true, broadcast_flag
from detforge.engine.ema import ModelEMA
from detforge.engine.logs import TrainLogger
from detforge.engine.plan import RunPlan, RunTimings
from detforge.engine.result import EvalRecord, StopReason, TrainingDiverged
from detforge.errors import CheckpointError, DatasetError, DetforgeError
from detforge.structures.detections import Target

if TYPE_CHECKING:
    from detforge.models.detector import Detector

__all__ = ["AmpSettings", "Hook", "LossModule", "TrainState", "Trainer", "get_rng_state", "set_rng_state"]

_STOP_REASONS: tuple[str, ...] = get_args(StopReason)


class LossModule(nn.Module):
    """`forward(images, targets)` = `detector.forward_loss(...)`, so DistributedDataParallel can wrap it."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, images: list[Tensor], targets: list[Target]) -> dict[str, Tensor]:
        result: dict[str, Tensor] = self.detector.forward_loss(images, targets)  # type: ignore[operator]
        return result


@dataclass(frozen=True)
class AmpSettings:
    """Mixed precision: autocast `dtype` on CUDA when `enabled`; a GradScaler is used for float16 only."""

    enabled: bool = False
    dtype: torch.dtype = torch.float32

    def autocast(self, device: torch.device) -> AbstractContextManager[Any]:
        if not self.enabled:
            return nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.dtype)


@dataclass
class TrainState:
    """Progress that must survive a resume: iterations done, the best metric so far, patience used."""

    iteration: int = 0
    best_metric: float | None = None
    best_iteration: int | None = None
    bad_evals: int = 0
    stop_reason: StopReason | None = None
    last_eval: EvalRecord | None = None
    last_saved: int = -1

    def state_dict(self) -> dict[str, Any]:
        last = self.last_eval
        return {
            "iteration": self.iteration,
            "best_metric": self.best_metric,
            "best_iteration": self.best_iteration,
            "bad_evals": self.bad_evals,
            "last_eval": None
            if last is None
            else [last.iteration, last.val_loss, last.val_losses, last.metrics, last.per_class_ap],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.iteration = int(state["iteration"])
        self.best_metric = state["best_metric"]
        self.best_iteration = state["best_iteration"]
        self.bad_evals = int(state["bad_evals"])
        self.last_eval = None if state["last_eval"] is None else EvalRecord(*state["last_eval"])
        self.last_saved = self.iteration


def get_rng_state(device: torch.device) -> dict[str, Any]:
    """The state of every RNG training uses (python, numpy, torch CPU, CUDA) as plain values and tensors."""
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],  # type: ignore[index,union-attr,misc]
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
    }


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Restore `get_rng_state`'s output."""
    random.setstate(tuple(v if not isinstance(v, list) else tuple(v) for v in state["python"]))  # type: ignore[arg-type]
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])


def _clearer_loader_error(exc: BaseException, loader: Any) -> DetforgeError | None:
    """What to raise instead of `exc` from the training data loader, or None to raise `exc` unchanged."""
    if isinstance(exc, DetforgeError):
        return _without_worker_traceback(exc)
    if isinstance(exc, RuntimeError):
        return _loader_failure(exc, loader)
    return None


def _without_worker_traceback(exc: DetforgeError) -> DetforgeError | None:
    """`exc` with its own message again when torch re-raised it from a loader worker ("Caught X in DataLoader
    worker process N. Original Traceback ..."), plus which worker; None when it was not re-raised so."""
    text = str(exc)
    head, _, rest = text.partition("\n")
    if not head.startswith("Caught ") or "Original Traceback" not in rest:
        return None
    marker = f"{type(exc).__module__}.{type(exc).__qualname__}: "
    message = rest.rpartition(marker)[2].strip() if marker in rest else rest.strip().splitlines()[-1]
    where = head.partition(" in ")[2].rstrip(".").replace("DataLoader", "data loader") or "a data loader worker"
    return type(exc)(f"{message} (raised in {where})")


def _loader_failure(exc: RuntimeError, loader: Any) -> DatasetError | None:
    """A DatasetError explaining torch's "worker died" / "timed out" loader errors; None for other errors."""
    text = str(exc)
    workers = getattr(loader, "num_workers", "?")
    if text.startswith("DataLoader worker"):
        cause = f" ({str(exc.__cause__).strip()})" if exc.__cause__ is not None else ""
        return DatasetError(
            f"data loader worker died: {text}{cause}. A worker process loading training images with "
            f"data.num_workers={workers} was killed (often by the out-of-memory killer) or crashed; retry with "
            "data.num_workers=0 to load in the training process (a failing image is then named), or lower "
            "train.batch_size to use less memory"
        )
    if text.startswith("DataLoader timed out"):
        timeout = float(getattr(loader, "timeout", 0.0))
        return DatasetError(
            f"data loading stalled: no batch from the {workers} data loader worker processes for {timeout:g} s "
            "(a worker hangs, e.g. reading from a stalled network drive); retry with data.num_workers=0 to load "
            "in the training process"
        )
    return None


def _check_weights(saved: Any, detector: nn.Module) -> None:
    """CheckpointError naming missing, unexpected and mis-shaped keys when `saved` does not fit `detector`."""
    from detforge.models.artifact import state_dict_problems

    problems = state_dict_problems(saved if isinstance(saved, dict) else {}, detector.state_dict(), "checkpoint")
    if problems:
        name, classes = getattr(detector, "name", "?"), getattr(detector, "num_classes", "?")
        raise CheckpointError(
            f"the checkpoint's model weights do not match this model ({name}, {classes} classes): "
            + "; ".join(problems)
            + ". Resume with the settings and data the run started with (its config.yaml), or start a new run"
        )


class Hook:
    """Something run around the loop; override what you need. Hooks run in list order on every rank."""

    def before_train(self, trainer: Trainer) -> None:
        return None

    def after_step(self, trainer: Trainer, losses: dict[str, float]) -> None:
        return None

    def after_train(self, trainer: Trainer) -> None:
        return None


@dataclass
class Trainer:
    """The objects of one run and the step that updates them. `detector` is the bare model; `module` is
    what computes training losses (a `LossModule`, DDP-wrapped in distributed runs); `plan` is the one
    `scheduler` follows (its length, LR position and evaluation points; a time budget refits it)."""

    config: Config
    detector: Detector
    module: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    ema: ModelEMA | None
    sampler: TrainingSampler
    loader: Any
    device: torch.device
    dist: DistInfo
    amp: AmpSettings
    log: TrainLogger
    checkpoint_dir: Path
    plan: RunPlan
    state: TrainState = field(default_factory=TrainState)
    timings: RunTimings = field(default_factory=RunTimings)
    _batches: Iterator[Batch] | None = None

    @property
    def eval_model(self) -> Detector:
        """The weights that are evaluated and saved: the EMA copy when EMA is on, else the model."""
        return cast("Detector", self.ema.module) if self.ema is not None else self.detector

    def _next_batch(self) -> Batch:
        while True:
            if self._batches is None:
                self._batches = iter(self.loader)
            try:
                batch: Batch = next(self._batches)
                break
            except StopIteration:  # end of epoch: the next one starts at position 0
                self.sampler.set_epoch(self.sampler.epoch + 1)
                self._batches = None
            except BaseException as exc:
                self._close_batches()
                clearer = _clearer_loader_error(exc, self.loader)
                if clearer is None:
                    raise
                raise clearer from exc
        self.sampler.advance(len(batch))
        return batch.to(self.device, non_blocking=True)

    def _close_batches(self) -> None:
        """Stop the loader's worker processes now: left to the garbage collector after an error, torch's
        shutdown waits 5 s per worker (measured) at whatever moment the collection happens."""
        batches, self._batches = self._batches, None
        shutdown = getattr(batches, "_shutdown_workers", None)
        if callable(shutdown):
            shutdown()

    def step(self) -> dict[str, float]:
        """One optimizer step over `accumulate` batches; the mean of each loss term and their sum "loss".

        Raises TrainingDiverged (on every rank) before any backward pass when a loss is not finite.
        """
        cfg = self.config.train
        self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, float] = {}
        for k in range(cfg.accumulate):
            batch = self._next_batch()
            last = k == cfg.accumulate - 1
            no_sync = self.module.no_sync() if self.dist.distributed and not last else nullcontext()  # type: ignore[operator]
            with no_sync:
                with self.amp.autocast(self.device):
                    losses = self.module(batch.images, batch.targets)
                values = {name: float(v.detach()) for name, v in losses.items()}
                if not all_true(all(math.isfinite(v) for v in values.values()), self.dist, self.device):
                    raise TrainingDiverged(self._diverged_message(values))
                loss: Tensor = sum(losses.values())  # type: ignore[assignment]
                self.scaler.scale(loss / cfg.accumulate).backward()
            for name, value in values.items():
                totals[name] = totals.get(name, 0.0) + value / cfg.accumulate
        if cfg.clip_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.detector)
        totals["loss"] = sum(totals.values())
        return totals

    def _diverged_message(self, values: dict[str, float]) -> str:
        terms = ", ".join(f"{k}={v:.6g}" for k, v in values.items())
        last = self.checkpoint_dir / "last.pt"
        kept = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint had been written yet"
        return (
            f"training stopped: the loss is not finite at iteration {self.state.iteration + 1} ({terms}); nothing "
            f"was saved from this iteration and {kept}. Try a lower train.lr, train.clip_grad_norm, a longer "
            "train.warmup_iters, or check the labels with `detforge data check`"
        )

    def run(self, hooks: Sequence[Hook]) -> None:
        """Step until the plan's max_iter or a hook sets `state.stop_reason`; then the hooks' `after_train`.
        A plan that ran to its end is stopped by "max_iter", or by "time_budget" when a budget sized it."""
        for hook in hooks:
            hook.before_train(self)
        while self.state.iteration < self.plan.max_iter and self.state.stop_reason is None:
            losses = self.step()
            self.state.iteration += 1
            for hook in hooks:
                hook.after_step(self, losses)
            self._sync_stop()
        if self.state.stop_reason is None:
            self.state.stop_reason = "time_budget" if self.plan.fitted else "max_iter"
        for hook in hooks:
            hook.after_train(self)

    def _sync_stop(self) -> None:
        """Every rank takes rank 0's decision to stop (time budget and early stopping are decided there)."""
        if not self.dist.distributed:
            return
        code = _STOP_REASONS.index(self.state.stop_reason) + 1 if self.state.stop_reason else 0
        t = torch.tensor([code], dtype=torch.int32, device=self.device)
        torch.distributed.broadcast(t, src=0)
        code = int(t.item())
        self.state.stop_reason = _STOP_REASONS[code - 1] if code else None  # type: ignore[assignment]

    def state_dict(self) -> dict[str, Any]:
        """Everything a resume needs, as tensors and plain values."""
        return {
            "iteration": self.state.iteration,
            "model": self.detector.state_dict(),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "sampler": self.sampler.state_dict(),
            "rng": get_rng_state(self.device),
            "state": self.state.state_dict(),
            "plan": self.plan.state_dict(),
            "config": self.config.model_dump(mode="json"),
        }

    def load_state_dict(self, ckpt: dict[str, Any]) -> None:
        """Continue exactly where `state_dict()` was taken (RNG included; other ranks get their own stream).

        CheckpointError naming the keys when the saved weights do not fit this model (e.g. the classes changed).
        """
        _check_weights(ckpt["model"], self.detector)
        self.detector.load_state_dict(ckpt["model"])
        if self.ema is not None:
            if ckpt.get("ema") is None:
                self.log.info("the checkpoint has no EMA weights; starting the average from the current weights")
                self.ema.module.load_state_dict(ckpt["model"])
            else:
                self.ema.load_state_dict(ckpt["ema"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.sampler.load_state_dict(ckpt["sampler"])
        self.state.load_state_dict(ckpt["state"])
        self._load_plan(ckpt.get("plan"))
        set_rng_state(ckpt["rng"], self.device)
        if self.dist.rank:
            torch.manual_seed(self.config.train.seed + 1000 * self.dist.rank + self.state.iteration)
        self._batches = None
        broadcast_flag(True, self.dist, self.device)  # all ranks loaded before anyone steps

    def _load_plan(self, saved: dict[str, Any] | None) -> None:
        """The saved plan, kept as it was; a fresh one from the current iteration (positions = iterations, as
        before plans were saved) when there is none or train.max_iter changed since."""
        it, max_iter = self.state.iteration, self.config.train.max_iter
        used = 0.0 if saved is None else float(saved["used_s"])
        if saved is not None and int(saved["length"]) == max_iter:
            self.plan.load_state_dict(saved)
            return
        if saved is not None:
            self.log.info("train.max_iter changed to %d: the saved schedule plan is replaced", max_iter)
        fresh = RunPlan(length=max_iter, max_iter=max_iter)
        fresh.anchor_iteration, fresh.anchor_position, fresh.before_anchor = it, float(it), float(it - 1)
        self.plan.load_state_dict(fresh.state_dict() | {"used_s": used})
