"""`detforge.train(...)`: the verb behind `detforge train`; config + data become a trained model artifact."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from detforge.errors import ConfigError

if TYPE_CHECKING:
    from detforge.config import Config
    from detforge.engine import TrainResult

__all__ = ["calibrate_model", "train"]

log = logging.getLogger("detforge.train")

_CONFIG_SECTIONS = {"model", "data", "train", "eval"}


def _is_config_file(path: Path) -> bool:
    """A detforge YAML config (top-level keys are config sections), not a YOLO data.yaml."""
    if not path.is_file() or path.suffix.lower() not in (".yaml", ".yml"):
        return False
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(tree, dict) and bool(tree) and set(tree) <= _CONFIG_SECTIONS


def _next_run_dir(root: Path = Path("runs")) -> Path:
    n = 1
    while (root / f"train{n}").exists():
        n += 1
    return root / f"train{n}"


def resolve_config(
    data_or_config: str | Path | None, overrides: Sequence[str] = (), *, time: str | None = None
) -> tuple[Config, list[str]]:
    """The validated config `detforge train` would run, and the lines explaining automatic choices.

    `data_or_config` is a detforge YAML config or a dataset (any readable format). Keys set in the
    config file or by `overrides` are kept; the others are fitted to the data and this machine.
    """
    from detforge.config import auto_config, load_config
    from detforge.data.formats import load_dataset
    from detforge.engine.distributed import DistInfo
    from detforge.engine.setup import resolve_device

    extra = list(overrides)
    path = None if data_or_config is None else Path(data_or_config)
    if path is not None and _is_config_file(path):
        config = load_config(path, extra + ([f"train.time={time}"] if time else []))
    else:
        if path is not None:
            extra.insert(0, f"data.path={path}")
        config = load_config(None, extra + ([f"train.time={time}"] if time else []))
    if config.data.path is None:
        raise ConfigError("no dataset: pass DATA (a dataset folder or file) or set data.path in the config")
    dataset = load_dataset(config.data.path, config.data.format)
    device = resolve_device(config.train.device, DistInfo()).type
    config, reasons = auto_config(dataset, device=device, cpu_count=os.cpu_count() or 1, base=config)
    return config, list(reasons)  # the trainer logs check_schedule's warnings itself


def train(
    data_or_config: str | Path | None = None,
    overrides: Sequence[str] = (),
    *,
    out: str | Path | None = None,
    time: str | None = None,
    resume: bool = False,
    devices: int = 1,
    calibrate: bool = True,
    progress: bool = True,
) -> TrainResult:
    """Fine-tune a detector; returns where the run, its checkpoints and the model artifact are.

    `data_or_config`: a dataset with train/val(/test) subsets (any format detforge reads) or a YAML
    config. `overrides`: dotted `key=value` settings (`train.lr=0.01`). `out`: the run folder (default
    runs/trainN). `time`: a budget such as "20m" that ends training cleanly with an evaluated best
    model. `resume`: continue the run in `out` exactly (its saved config is used). `devices`: data-
    parallel processes. `calibrate`: store the best-F1 score threshold on the validation subset in
    the model artifact, used by predict and serve unless overridden.
    """
    from detforge.engine import train_from_config

    if resume:
        if out is None:
            raise ConfigError("resume needs the run folder: --out RUN_DIR (resume=True, out=...)")
        saved = Path(out) / "config.yaml"
        if data_or_config is None and saved.is_file():
            data_or_config = saved
    run_dir = Path(out) if out is not None else _next_run_dir()
    config, notes = resolve_config(data_or_config, overrides, time=time)
    for line in notes:
        log.info("%s", line)
    log.info("run folder: %s", run_dir)
    result = train_from_config(config, out_dir=run_dir, resume=resume, devices=devices, progress=progress)
    if calibrate and config.data.val is not None:
        calibrate_model(result.model_path, config)
    return result


def calibrate_model(model_path: Path, config: Config) -> float | None:
    """Find the best-F1 score threshold of `model_path` on the validation subset and store it in the artifact."""
    from detforge.api.evaluate import predict_dataset, write_score_threshold
    from detforge.data.formats import load_dataset
    from detforge.evaluation import CalibrationError, calibrate_threshold
    from detforge.evaluation.analysis import pr_curves
    from detforge.inference import Predictor
    from detforge.models.artifact import load_model

    assert config.data.path is not None and config.data.val is not None
    val = load_dataset(config.data.path, config.data.format).subset(config.data.val)
    detector, spec = load_model(model_path)
    predictions = predict_dataset(Predictor(detector, class_names=spec.class_names, score_threshold=0.0), val)
    try:
        calibration = calibrate_threshold(pr_curves(val.images, val.annotations, val.categories, predictions))
    except CalibrationError as exc:
        log.warning("score threshold not calibrated (kept %.2f): %s", spec.score_threshold, exc)
        return None
    if calibration.f1 <= 0.0:
        log.warning(
            "score threshold not calibrated (kept %.2f): no detection on the validation subset is correct "
            "yet (best F1 0); train longer",
            spec.score_threshold,
        )
        return None
    return write_score_threshold(model_path, calibration)
