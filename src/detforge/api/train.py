"""`detforge.train(...)`: the verb behind `detforge train`; config + data become a trained model artifact."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from detforge.errors import ConfigError
from detforge.ranges import POSITIVE_INT, check_numbers

if TYPE_CHECKING:
    from detforge.config import Config
    from detforge.data.dataset import Dataset
    from detforge.engine import TrainResult
    from detforge.engine.reading import ReadOutcome
    from detforge.reading import Reader, ReadSettings

__all__ = ["calibrate_model", "setup_reading", "train"]

log = logging.getLogger("detforge.train")

_CONFIG_SECTIONS = {"model", "data", "train", "eval", "read"}


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
    config, reasons, _ = _resolve(data_or_config, overrides, time=time)
    return config, reasons


def _resolve(
    data_or_config: str | Path | None, overrides: Sequence[str] = (), *, time: str | None = None
) -> tuple[Config, list[str], Dataset]:
    """`resolve_config` and the dataset it read."""
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
    dataset = load_dataset(config.data.path, config.data.format, text_attribute=config.data.text_attribute)
    device = resolve_device(config.train.device, DistInfo()).type
    config, reasons = auto_config(dataset, device=device, cpu_count=os.cpu_count() or 1, base=config)
    return config, list(reasons), dataset  # the trainer logs check_schedule's warnings itself


def train(
    data_or_config: str | Path | None = None,
    overrides: Sequence[str] = (),
    *,
    out: str | Path | None = None,
    time: str | None = None,
    epochs: int | None = None,
    resume: bool = False,
    devices: int = 1,
    calibrate: bool = True,
    progress: bool = True,
    text_attribute: str | None = None,
    reader: Reader | None = None,
) -> TrainResult:
    """Fine-tune a detector; returns where the run, its checkpoints and the model artifact are.

    `data_or_config`: a dataset with train/val(/test) subsets (any format detforge reads) or a YAML
    config. `overrides`: dotted `key=value` settings (`train.lr=0.01`). `out`: the run folder (default
    runs/trainN). `time`: a wall-clock budget such as "20m": the speed is measured over the first
    iterations and the schedule (iterations, learning-rate decay, evaluation periods) is fitted to the
    budget once (`train.time_fit`), so the run ends its schedule, with an evaluated best model, within
    it. `epochs`: passes over the training images (the same as the override `train.epochs=N`; sets
    max_iter, so not together with `train.max_iter`). `resume`: continue the run in `out` exactly (its
    saved config is used). `devices`: data-parallel processes. `calibrate`: store the best-F1 score
    threshold on the validation subset in the model artifact, used by predict and serve unless overridden
    (and the text threshold, below).

    Reading (the `read` config section): when it is on (by default when the training boxes have
    transcriptions) the model stores its ReadSettings, and with `calibrate` the validation boxes that
    have transcriptions are read to measure read accuracy and calibrate the text-confidence threshold
    (`read.min_score: auto`). `text_attribute`: the box attribute holding the transcription (the same as
    the override `data.text_attribute=NAME`). `reader`: the recogniser for that pass (default: built from
    the settings, `detforge.reading.build_reader`).
    """
    from dataclasses import replace

    check_numbers(epochs=(POSITIVE_INT, epochs), devices=(POSITIVE_INT, devices))

    from detforge.engine import train_from_config
    from detforge.engine.reading import read_settings_from_config
    from detforge.engine.train_job import RESULT_FILE
    from detforge.fileio import atomic_write_json

    if resume:
        if out is None:
            raise ConfigError("resume needs the run folder: --out RUN_DIR (resume=True, out=...)")
        saved = Path(out) / "config.yaml"
        if data_or_config is None and saved.is_file():
            data_or_config = saved
    run_dir = Path(out) if out is not None else _next_run_dir()
    if epochs is not None:
        overrides = [*overrides, f"train.epochs={epochs}"]
    if text_attribute is not None:  # JSON-quoted: a YAML string whatever the name looks like
        overrides = [*overrides, f"data.text_attribute={json.dumps(text_attribute)}"]
    config, notes, dataset = _resolve(data_or_config, overrides, time=time)
    for line in notes:
        log.info("%s", line)
    settings = read_settings_from_config(config.read)  # before training: a bad lexicon fails now, not after
    train_texts = 0 if settings is None else _log_read_settings(settings, dataset, config)
    log.info("run folder: %s", run_dir)
    result = train_from_config(config, out_dir=run_dir, resume=resume, devices=devices, progress=progress)
    if calibrate and config.data.val is not None:
        calibrate_model(result.model_path, config)
    if settings is not None:
        outcome = setup_reading(result.model_path, config, settings, dataset, train_texts, reader, calibrate)
        result = replace(result, read=outcome)
        atomic_write_json(result.out_dir / RESULT_FILE, result.to_json())
    return result


def _log_read_settings(settings: ReadSettings, dataset: Dataset, config: Config) -> int:
    """Say what reading will do (one line; a warning when there is nothing to learn it from); the number of
    training transcriptions of the read classes."""
    from detforge.engine.reading import count_transcriptions

    train = dataset.subset(config.data.train) if config.data.train in dataset.subsets else dataset
    n = count_transcriptions(train, settings)
    classes = "every class" if settings.classes is None else ", ".join(settings.classes)
    allow = "any character" if settings.allow is None else repr(settings.allow)
    extra = "".join(
        f"; {label} {value}"
        for label, value in (
            ("pattern", None if settings.pattern is None else repr(settings.pattern)),
            ("lexicon", None if settings.lexicon is None else f"of {len(settings.lexicon)} values"),
        )
        if value is not None
    )
    log.info("reading: on for %s (%d training transcriptions); allow-list %s%s", classes, n, allow, extra)
    if n == 0:
        log.warning(
            "read.enabled is true but no training box of a read class has a transcription: the model reads "
            "%s with any character%s; label the text in the boxes to learn an allow-list and calibrate",
            classes,
            "" if settings.allow is None else " of read.allow",
        )
    return n


def setup_reading(
    model_path: Path,
    config: Config,
    settings: ReadSettings,
    dataset: Dataset,
    train_texts: int,
    reader: Reader | None = None,
    calibrate: bool = True,
) -> ReadOutcome:
    """Store `settings` in the artifact `model_path`, after reading the validation boxes with transcriptions
    (with `reader`, default `build_reader(settings)`) to measure read accuracy and, for `read.min_score: auto`,
    calibrate the text-confidence threshold. A recogniser that cannot be built or run leaves the threshold
    uncalibrated with a warning (the model still reads)."""
    from detforge.engine.reading import ReadOutcome, calibrate_reading, store_read_settings
    from detforge.errors import DetforgeError
    from detforge.reading import build_reader

    calibration, note, quiet = None, "", False
    if not calibrate:
        note, quiet = "text threshold not calibrated (calibrate=False)", True
    elif config.data.val is None or config.data.val not in dataset.subsets:
        note = "no validation subset: text threshold not calibrated"
    else:
        try:
            reader = reader if reader is not None else build_reader(settings)
            settings, calibration, note = calibrate_reading(
                settings,
                dataset.subset(config.data.val),
                reader,
                target_precision=config.read.target_precision,
                calibrate_min_score=config.read.min_score == "auto",
            )
        except DetforgeError as exc:
            note = f"text threshold not calibrated: {exc}"
    outcome = ReadOutcome(settings, train_texts, calibration, note)
    if note and not quiet:
        log.warning("reading: %s", note)
    store_read_settings(model_path, settings)
    log.info("%s; stored in %s", outcome.summary(), model_path)
    return outcome


def calibrate_model(model_path: Path, config: Config) -> float | None:
    """Find the best-F1 score threshold of `model_path` on the validation subset and store it in the artifact."""
    from detforge.api.evaluate import predict_dataset
    from detforge.data.formats import load_dataset
    from detforge.evaluation import CalibrationError, calibrate_threshold
    from detforge.evaluation.analysis import pr_curves
    from detforge.inference import Predictor
    from detforge.models.artifact import load_model
    from detforge.models.score_threshold import store_score_threshold

    assert config.data.path is not None and config.data.val is not None
    val = load_dataset(config.data.path, config.data.format, text_attribute=config.data.text_attribute)
    val = val.subset(config.data.val)
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
    return store_score_threshold(model_path, calibration.threshold)
