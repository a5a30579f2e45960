"""`train_from_config`: data + model + loop + hooks -> checkpoints, logs and the model artifact.

Layout of `out_dir`: `config.yaml` (the resolved config), `metrics.jsonl`, `tb/` (TensorBoard),
`checkpoints/last.pt` (+ `last.prev.pt`) for resuming, `checkpoints/best.pt` (weights with the best
`eval.metric`), `model.pt` (the artifact later steps load) and `result.json` (the TrainResult).
"""

from __future__ import annotations

import json
import logging
import os
import random
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from detforge._version import __version__
from detforge.config import Config, check_schedule, dump_config
from detforge.engine import plan as run_plan
from detforge.engine.budget import TimeBudgetHook
from detforge.engine.callbacks import BEST, CheckpointHook, EvalHook, LogHook
from detforge.engine.checkpoint import LAST, load_resume_checkpoint, remove_partial_files
from detforge.engine.distributed import DistInfo, cleanup, env_dist_info, init_process_group
from detforge.engine.ema import ModelEMA
from detforge.engine.launch import spawn_workers
from detforge.engine.logs import METRICS_FILE, TrainLogger, read_metrics
from detforge.engine.loop import Hook, LossModule, Trainer
from detforge.engine.optim import build_optimizer, build_scheduler
from detforge.engine.plan import RunPlan
from detforge.engine.result import EvalRecord, TrainingDiverged, TrainResult
from detforge.engine.setup import (
    DataSplits,
    amp_settings,
    build_train_loader,
    build_val_loader,
    deterministic_mode,
    load_splits,
    per_rank_batch,
    resolve_device,
)
from detforge.engine.validation import run_evaluation
from detforge.errors import CheckpointError, ConfigError
from detforge.fileio import atomic_write_json, atomic_write_text, remove_partial_writes
from detforge.models.safeload import scan_torch_file
from detforge.thresholds import DEFAULT_SCORE_THRESHOLD

if TYPE_CHECKING:
    from detforge.models.detector import Detector

__all__ = ["MODEL_FILE", "RESULT_FILE", "train_from_config"]

logger = logging.getLogger("detforge.train")

MODEL_FILE = "model.pt"
RESULT_FILE = "result.json"


def train_from_config(
    config: Config, *, out_dir: Path, resume: bool = False, devices: int = 1, progress: bool = True
) -> TrainResult:
    """Train the detector `config` describes on `config.data.path`, writing everything to `out_dir`.

    `resume=True` continues the run in `out_dir` exactly from its newest valid checkpoint (model,
    optimizer, schedule, EMA, scaler, data order, RNG, best metric, patience). `devices=N>1` starts N
    processes on this machine (gloo on CPU, nccl on CUDA); under `torchrun` the environment decides.
    Only rank 0 writes files. Raises ConfigError for unusable settings or data, CheckpointError when a
    resume finds no valid checkpoint, TrainingDiverged when the loss stops being finite.
    """
    out_dir = Path(out_dir)
    if devices < 1:
        raise ConfigError(f"devices={devices}: expected 1 or more processes")
    info = env_dist_info()
    if info is None and devices > 1:
        return TrainResult.from_json(
            spawn_workers(train_from_config, config, out_dir, devices=devices, resume=resume, progress=progress)
        )
    info = info or DistInfo()
    if devices > 1 and devices != info.world_size:
        logger.warning("devices=%d ignored: the launcher started %d processes", devices, info.world_size)
    device = resolve_device(config.train.device, info)
    if info.distributed and device.type == "cpu":  # the processes share this machine's cores
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // info.world_size))
    init_process_group(info, device)
    try:
        with deterministic_mode(config.train.deterministic, device):
            return _train(config, out_dir, resume=resume, info=info, device=device, progress=progress)
    finally:
        cleanup(info)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _prepare_out_dir(out_dir: Path, resume: bool, info: DistInfo) -> None:
    ckpt_dir = out_dir / "checkpoints"
    has_run = (ckpt_dir / LAST).exists() or (ckpt_dir / "last.prev.pt").exists()
    if has_run and not resume:
        raise ConfigError(
            f"{out_dir} already holds a training run ({ckpt_dir / LAST}); resume it (resume=True / --resume) "
            "or choose another output folder"
        )
    if info.is_main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        remove_partial_writes(out_dir)  # model.pt, config.yaml, ... of a killed run: complete files stay
        if not resume:  # (a resume cleans up in load_resume_checkpoint)
            remove_partial_files(ckpt_dir)  # a run killed during its first save left only a temp file
            (out_dir / METRICS_FILE).unlink(missing_ok=True)


def _build_detector(config: Config, splits: DataSplits, device: torch.device) -> Detector:
    from detforge.models.build import build_detector

    m = config.model
    detector, report = build_detector(
        m.name,
        num_classes=len(splits.categories),
        weights=m.weights,
        min_size=m.min_size,
        max_size=m.max_size,
        trainable_backbone_layers=m.trainable_backbone_layers,
    )
    logger.info(
        "model %s for %d classes, weights %s: %d tensors loaded, %d initialised fresh, %d re-initialised",
        m.name,
        len(splits.categories),
        m.weights,
        report.loaded,
        len(report.missing),
        len(report.reinitialised),
    )
    params = detector.detection_params
    detector.detection_params = replace(params, score_thresh=config.eval.score_threshold)
    return detector.to(device)


def _train(
    config: Config, out_dir: Path, *, resume: bool, info: DistInfo, device: torch.device, progress: bool
) -> TrainResult:
    started = run_plan.now()
    _prepare_out_dir(out_dir, resume, info)
    ckpt_dir = out_dir / "checkpoints"
    ckpt = _resume_state(config, out_dir, info) if resume else None
    splits = load_splits(config)
    if info.is_main:
        for warning in check_schedule(config, num_train_images=len(splits.train)):
            logger.warning("config: %s", warning)
        atomic_write_text(out_dir / "config.yaml", dump_config(config))
    _seed_everything(config.train.seed + info.rank)
    detector = _build_detector(config, splits, device)
    start = ckpt["iteration"] if ckpt else 0
    with TrainLogger(out_dir, total=config.train.max_iter, start=start, enabled=info.is_main, progress=progress) as log:
        trainer = _make_trainer(config, detector, splits, info=info, device=device, log=log, ckpt_dir=ckpt_dir)
        if ckpt is not None:
            trainer.load_state_dict(ckpt)
            del ckpt
        hooks = _hooks(config, splits, info=info, device=device, started=started, ckpt_dir=ckpt_dir)
        where = str(device) if not info.distributed else f"{info.world_size} processes ({device.type})"
        n_val = 0 if splits.val is None else len(splits.val)
        epochs = config.train.max_iter * config.train.images_per_step / max(len(splits.train), 1)
        log.info(
            "training %s for %d iterations (%.3g epochs at %d images per step) on %s: %d training images, "
            "%d validation images",
            config.model.name, config.train.max_iter, epochs, config.train.images_per_step, where,
            len(splits.train), n_val,
        )  # fmt: skip
        log.event("start", start, resumed=resume, world_size=info.world_size, device=str(device),
                  train_images=len(splits.train), val_images=n_val)  # fmt: skip
        try:
            trainer.run(hooks)
        except TrainingDiverged as exc:
            log.event("stop", trainer.state.iteration, reason="non_finite_loss", message=str(exc))
            if info.is_main and (ckpt_dir / BEST).exists():
                _write_artifact(trainer, splits, out_dir)
            raise
        log.event("stop", trainer.state.iteration, reason=trainer.state.stop_reason)
        result = _result(trainer, out_dir)
        if info.is_main:
            _write_artifact(trainer, splits, out_dir)
            atomic_write_json(out_dir / RESULT_FILE, result.to_json())
            log.info("training finished (%s) after %d iterations; model written to %s",
                     result.stop_reason, result.iterations, result.model_path)  # fmt: skip
        return result


def _resume_state(config: Config, out_dir: Path, info: DistInfo) -> dict[str, Any]:
    """The newest valid checkpoint; on rank 0 also drops log events after it (they will be redone)."""
    ckpt, path = load_resume_checkpoint(out_dir / "checkpoints")
    start = int(ckpt["iteration"])
    logger.info("resuming %s from %s at iteration %d", out_dir, path, start)
    _warn_config_changes(ckpt["config"], config)
    if info.is_main:
        kept = [e for e in read_metrics(out_dir) if e.get("iteration", 0) <= start]
        atomic_write_text(out_dir / METRICS_FILE, "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in kept))
    return ckpt


def _make_trainer(
    config: Config, detector: Detector, splits: DataSplits, *, info: DistInfo, device: torch.device,
    log: TrainLogger, ckpt_dir: Path,
) -> Trainer:  # fmt: skip
    """The Trainer for a fresh start: loaders, optimizer, schedule, precision, EMA; DDP-wrapped if distributed."""
    detector.train()
    module: torch.nn.Module = LossModule(detector)
    if info.distributed:
        ids = [device.index] if device.type == "cuda" else None
        module = torch.nn.parallel.DistributedDataParallel(module, device_ids=ids, find_unused_parameters=False)
    cuda = device.type == "cuda"
    sampler, loader = build_train_loader(config, splits.train, info, max_size=detector.max_size, pin_memory=cuda)
    amp = amp_settings(config, device)
    optimizer = build_optimizer(detector, config.train)
    plan = RunPlan.start(config.train.max_iter)
    return Trainer(
        config=config,
        detector=detector,
        module=module,
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, config.train, plan),
        scaler=torch.amp.GradScaler(device.type, enabled=amp.enabled and amp.dtype == torch.float16),
        ema=ModelEMA(detector, config.train.ema_decay) if config.train.ema and info.is_main else None,
        sampler=sampler,
        loader=loader,
        device=device,
        dist=info,
        amp=amp,
        log=log,
        checkpoint_dir=ckpt_dir,
        plan=plan,
    )


def _hooks(
    config: Config, splits: DataSplits, *, info: DistInfo, device: torch.device, started: float, ckpt_dir: Path
) -> list[Hook]:
    """Logging, time budget, evaluation (rank 0, when there is a validation subset), checkpoints: in this order."""
    hooks: list[Hook] = [LogHook(), TimeBudgetHook(started, val_images=0 if splits.val is None else len(splits.val))]
    if splits.val is not None and info.is_main:
        batch = per_rank_batch(config, info)
        val_loader, evaluator = build_val_loader(config, splits.val, batch_size=batch, pin_memory=device.type == "cuda")

        def evaluate(t: Trainer) -> EvalRecord:
            return run_evaluation(t.eval_model, val_loader, evaluator, iteration=t.state.iteration, device=device)

        hooks.append(EvalHook(evaluate, ckpt_dir))
    hooks.append(CheckpointHook(ckpt_dir))
    return hooks


def _warn_config_changes(saved: dict[str, dict[str, object]], config: Config) -> None:
    now = config.model_dump(mode="json")
    changed = [
        f"{section}.{key}: {saved.get(section, {}).get(key)!r} -> {value!r}"
        for section, values in now.items()
        for key, value in values.items()
        if saved.get(section, {}).get(key) != value
    ]
    if changed:
        logger.warning("resuming with a changed config (%s)", "; ".join(changed))


def _write_artifact(trainer: Trainer, splits: DataSplits, out_dir: Path) -> None:
    """model.pt from best.pt (or the current weights when nothing was evaluated), via models.artifact."""
    from detforge.models.artifact import ModelSpec, save_model

    model = trainer.eval_model
    best = trainer.checkpoint_dir / BEST
    extra: dict[str, str | float] = {"iterations": float(trainer.state.iteration), "metric": trainer.config.eval.metric}
    if best.exists():
        try:
            scan_torch_file(best)  # refuse anything but tensors before unpickling (CheckpointError)
            weights = torch.load(best, map_location=trainer.device, weights_only=True)
        except CheckpointError:
            raise
        except Exception as exc:
            raise CheckpointError(f"{best}: cannot be read back ({exc.__class__.__name__}: {exc})") from None
        model.load_state_dict(weights["model"])
        extra |= {"best_iteration": float(weights["iteration"]), "best_metric": float(weights["value"])}
    spec = ModelSpec(
        model_name=model.name,
        num_classes=len(splits.categories),
        class_names=tuple(splits.categories.names),
        category_ids=tuple(splits.categories.ids),
        min_size=model.min_size,
        max_size=model.max_size,
        score_threshold=DEFAULT_SCORE_THRESHOLD,  # until calibrated (score_threshold_calibrated=False)
        detforge_version=__version__,
        extra=extra,
    )
    save_model(out_dir / MODEL_FILE, model, spec)


def _result(trainer: Trainer, out_dir: Path) -> TrainResult:
    state = trainer.state
    best = trainer.checkpoint_dir / BEST
    final: EvalRecord | None = state.last_eval
    return TrainResult(
        out_dir=out_dir,
        last_checkpoint=trainer.checkpoint_dir / LAST,
        best_checkpoint=best if best.exists() else None,
        model_path=out_dir / MODEL_FILE,
        metric=trainer.config.eval.metric,
        best_metric=state.best_metric,
        best_iteration=state.best_iteration,
        iterations=state.iteration,
        stop_reason=state.stop_reason or "max_iter",
        final_metrics=final,
    )
