"""The configuration schema: five frozen sections of explicit, validated keys.

Every key has a default that works offline on a CPU; `auto_config` replaces the defaults of keys a
user did not set with choices fitted to the dataset and the device. A section remembers which keys
were set explicitly (pydantic's `model_fields_set`), which is how `auto_config` leaves them alone.
Units: sizes in pixels, periods and schedule points in iterations (optimizer steps), time in seconds
unless written with h/m/s suffixes.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from detforge.thresholds import EVAL_SCORE_THRESHOLD

__all__ = [
    "Config",
    "DataConfig",
    "EvalConfig",
    "ModelConfig",
    "ReadConfig",
    "TrainConfig",
    "format_duration",
    "parse_duration",
]

_DURATION = re.compile(r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?$")


def parse_duration(value: str | float | int) -> float:
    """Seconds in a duration: a number of seconds, or text like "90s", "20m", "1h30m", "1.5h".

    Raises ValueError saying what is accepted when `value` is none of these or not positive.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 20m, 1h30m or a number of seconds, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip().lower().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            match = _DURATION.match(text)
            if not text or match is None:
                raise ValueError(
                    f"expected a duration like 20m, 1h30m, 90s or a number of seconds, got {value!r}"
                ) from None
            parts = match.groupdict()
            seconds = sum(float(parts[k] or 0) * mult for k, mult in (("h", 3600), ("m", 60), ("s", 1)))
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"expected a positive duration, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """`seconds` written the way `parse_duration` reads it back: "45s", "10m", "1h30m", "2m30.5s"."""
    hours, rest = divmod(float(seconds), 3600.0)
    minutes, secs = divmod(rest, 60.0)
    secs = round(secs, 1)
    parts = [f"{hours:.0f}h" if hours else "", f"{minutes:.0f}m" if minutes else "", f"{secs:g}s" if secs else ""]
    return "".join(parts) or "0s"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class ModelConfig(_Section):
    """Which detector to fine-tune and at what input size."""

    name: str = Field(
        "fasterrcnn_mobilenet_v2_fpn",
        description="model name from `detforge models` (Detectron2 model-zoo names are accepted and translated)",
    )
    weights: str = Field(
        "imagenet",
        description="starting weights: coco (whole detector), imagenet (backbone only), none, or a local file path",
    )
    min_size: int | None = Field(
        None, ge=16, le=4096, description="shorter image side fed to the model (px); null = model default"
    )
    max_size: int | None = Field(None, ge=16, le=8192, description="longer side cap (px); null = model default")
    trainable_backbone_layers: int | None = Field(
        None,
        ge=0,
        le=6,
        description="backbone stages that train (ResNet 0-5, MobileNet 0-6); others stay frozen; null = model default",
    )

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: str) -> str:
        if v in ("coco", "imagenet", "none") or v.endswith((".pt", ".pth", ".safetensors")):
            return v
        raise ValueError("expected coco, imagenet, none, or a path to a .pt/.pth/.safetensors file")

    @model_validator(mode="after")
    def _sizes(self) -> ModelConfig:
        if self.min_size is not None and self.max_size is not None and self.max_size < self.min_size:
            raise ValueError(f"max_size ({self.max_size}) must be >= min_size ({self.min_size})")
        return self


class DataConfig(_Section):
    """Where the labelled images are and how they are fed to the model."""

    path: Path | None = Field(None, description="dataset file or folder (any format `detforge data check` reads)")
    format: Literal["coco", "yolo", "voc", "cvat", "labelme", "labelstudio"] | None = Field(
        None, description="force the dataset format; null = detect"
    )
    train: str = Field("train", min_length=1, description="subset used for training")
    val: str | None = Field("val", description="subset evaluated every eval.period; null = no evaluation")
    test: str | None = Field("test", description="subset held out for `detforge eval`; never used in training")
    augment: Literal["none", "light", "standard", "strong"] = Field("standard", description="augmentation preset")
    flip: bool = Field(True, description="random horizontal flips (turn off for text, digits, left/right classes)")
    num_workers: int | Literal["auto"] = Field("auto", description="data loading processes; auto = measured default")
    text_attribute: str | None = Field(
        None, min_length=1, description="attribute holding each box's transcription; null = detect when unambiguous"
    )
    repeat_factor_threshold: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="oversample images of classes seen in fewer than this fraction of images; 0 = off",
    )

    @field_validator("num_workers")
    @classmethod
    def _workers(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 0:
            raise ValueError("expected auto or an integer >= 0")
        return v


class TrainConfig(_Section):
    """The optimisation: seed, device, batch, optimizer, learning-rate schedule, precision, limits."""

    seed: int = Field(0, ge=0, description="seed of every random generator (data order, augmentation, init)")
    device: str = Field("auto", description="auto (cuda when available), cpu, cuda or cuda:N")
    batch_size: int = Field(2, ge=1, le=1024, description="images per iteration, over all devices together")
    accumulate: int = Field(1, ge=1, le=256, description="batches whose gradients are summed before each step")
    optimizer: Literal["sgd", "adamw"] = Field("sgd", description="sgd (with momentum) or adamw")
    lr: float = Field(0.0025, gt=0.0, le=10.0, description="peak learning rate (after warmup)")
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="SGD momentum (AdamW beta1)")
    weight_decay: float = Field(
        1e-4, ge=0.0, le=1.0, description="L2 / decoupled weight decay; never on norms or biases"
    )
    scheduler: Literal["multistep", "cosine"] = Field("multistep", description="LR decay after warmup")
    max_iter: int = Field(1000, ge=1, description="optimizer steps in the whole run")
    epochs: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="passes over the training images; sets max_iter = ceil(epochs * train images / "
        "images_per_step); null = max_iter (or automatic)",
    )
    steps: tuple[int, ...] | None = Field(
        None, description="multistep: iterations where the LR is multiplied by gamma; null = 75% and 90% of max_iter"
    )
    gamma: float = Field(0.1, gt=0.0, le=1.0, description="multistep decay factor")
    warmup_iters: int = Field(100, ge=0, description="iterations of linear warmup from warmup_factor * lr to lr")
    warmup_factor: float = Field(0.001, gt=0.0, le=1.0, description="LR multiplier at iteration 0")
    clip_grad_norm: float | None = Field(None, gt=0.0, description="clip the global gradient L2 norm; null = off")
    ema: bool = Field(False, description="keep an exponential moving average of the weights; evaluate and save it")
    ema_decay: float = Field(0.999, gt=0.0, lt=1.0, description="EMA decay per iteration")
    amp: Literal["auto", "on", "off"] = Field("auto", description="mixed precision: auto = on for CUDA, off on CPU")
    amp_dtype: Literal["auto", "bf16", "fp16"] = Field("auto", description="auto = bf16 where the GPU supports it")
    deterministic: bool | Literal["auto"] = Field(
        "auto", description="deterministic kernels: auto = on for CPU (no cost there), off on CUDA (slower)"
    )
    time: float | None = Field(
        None,
        description="time budget in seconds (written 20m, 1h30m, 90s or a number): the schedule is fitted to it at "
        "the measured speed and ends within it",
    )
    time_fit: Literal["auto", "fill", "limit"] = Field(
        "auto",
        description="with train.time: fill = the budget sizes the run; limit = max_iter/epochs size it and the "
        "budget only shortens it; auto = fill unless max_iter or epochs is set",
    )
    checkpoint_period: int | None = Field(
        None, ge=1, description="iterations between last.pt saves; null = eval.period"
    )
    log_period: int = Field(20, ge=1, description="iterations between loss log lines")

    @field_validator("amp", mode="before")
    @classmethod
    def _amp_yaml_bool(cls, v: object) -> object:
        # YAML 1.1 reads unquoted on/off as booleans; they mean the same here
        return {True: "on", False: "off"}.get(v, v) if isinstance(v, bool) else v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", v):
            return v
        raise ValueError("expected auto, cpu, cuda or cuda:N")

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, v: object) -> float | None:
        # the one place a duration is parsed: everything after the config sees seconds
        if v is None:
            return None
        if not isinstance(v, str | int | float):
            raise ValueError(f"expected a duration like 20m, 1h30m or a number of seconds, got {v!r}")
        return parse_duration(v)

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if v is not None:
            if any(s <= 0 for s in v):
                raise ValueError("expected positive iteration numbers")
            if list(v) != sorted(set(v)):
                raise ValueError("expected strictly increasing iteration numbers")
        return v

    @model_validator(mode="after")
    def _one_length(self) -> TrainConfig:
        if self.epochs is not None and "max_iter" in self.model_fields_set:
            raise ValueError(
                f"train.epochs ({self.epochs}) and train.max_iter ({self.max_iter}) are both set; they size the "
                "same run, so set one of them (train.time can be given with either)"
            )
        return self

    @property
    def time_fills_run(self) -> bool:
        """Whether `time` sizes the run (`time_fit` fill, or auto without an explicit max_iter or epochs)
        rather than only capping the max_iter iterations."""
        if self.time_fit != "auto":
            return self.time_fit == "fill"
        return self.epochs is None and "max_iter" not in self.model_fields_set

    @property
    def lr_steps(self) -> tuple[int, ...]:
        """The multistep decay points in iterations: the explicit `steps`, else 75% and 90% of max_iter
        (kept inside the run, so very short runs may have one or none)."""
        if self.steps is not None:
            return self.steps
        points = {min(round(self.max_iter * f), self.max_iter - 1) for f in (0.75, 0.9)}
        return tuple(sorted(p for p in points if p >= 1))

    @property
    def images_per_step(self) -> int:
        """Images whose gradients make one optimizer step: batch_size * accumulate."""
        return self.batch_size * self.accumulate


class EvalConfig(_Section):
    """When and how the validation subset is evaluated, and what counts as the best model."""

    period: int = Field(200, ge=1, description="iterations between evaluations (validation loss + COCO AP)")
    metric: Literal["ap", "ap50", "val_loss"] = Field("ap", description="picks best.pt and drives early stopping")
    patience: int | None = Field(
        None, ge=1, description="stop after this many evaluations without improvement; null = never"
    )
    min_delta: float = Field(0.0, ge=0.0, description="smallest change of the metric that counts as an improvement")
    score_threshold: float = Field(
        EVAL_SCORE_THRESHOLD, ge=0.0, lt=1.0, description="drop detections below this score when computing AP"
    )


class ReadConfig(_Section):
    """Reading the text inside detected boxes: which classes, which characters, the confidence threshold."""

    enabled: bool | Literal["auto"] = Field(
        "auto", description="read text in boxes; auto = on when the training boxes have transcriptions"
    )
    classes: tuple[str, ...] | None = Field(
        None, description="class names whose boxes are read; null = the classes with transcriptions"
    )
    allow: str | None = Field(
        "auto",
        description="characters a value may contain; auto = those of the training transcriptions; null = any",
    )
    pattern: str | None = Field(
        "auto",
        description="regular expression a value must match in full, its group `value` reported; auto = the "
        "training values' characters and lengths, leading/trailing '.', ')', ':' stripped; null = any",
    )
    lexicon: Path | None = Field(None, description="text file of valid values, one per line; null = any value")
    padding: float = Field(0.05, ge=0.0, le=2.0, description="context added around a box, fraction of its height")
    min_score: float | Literal["auto"] = Field(
        "auto", description="text confidence below which a read is unsure; auto = calibrated on the val subset"
    )
    target_precision: float = Field(
        0.98, gt=0.0, le=1.0, description="precision of trusted reads the min_score calibration aims at"
    )
    recognizer: Literal["ppocr", "tesseract"] = Field("ppocr", description="ppocr (PP-OCRv6, offline) or tesseract")

    @field_validator("classes")
    @classmethod
    def _classes(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is not None:
            if not v or any(not name for name in v):
                raise ValueError("expected a list of class names, or null for the classes with transcriptions")
            duplicates = sorted({name for name in v if v.count(name) > 1})
            if duplicates:
                raise ValueError(f"class names listed twice: {duplicates}")
        return v

    @field_validator("allow", "pattern", mode="before")
    @classmethod
    def _quoted(cls, v: object) -> object:
        # YAML reads an unquoted 0123456789 as the number 123456789: the leading 0 (and any '.') would be lost
        if isinstance(v, int | float) and not isinstance(v, bool):
            raise ValueError(f"YAML read this as the number {v!r}; quote the characters, e.g. '0123456789.'")
        return v

    @field_validator("allow")
    @classmethod
    def _allow(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("expected auto, null, or the allowed characters (e.g. '0123456789.')")
        return v

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression ({exc})") from None
        return v

    @field_validator("min_score")
    @classmethod
    def _min_score(cls, v: float | str) -> float | str:
        if not isinstance(v, str) and not 0.0 <= v <= 1.0:
            raise ValueError("expected auto or a number in [0, 1]")
        return v


class Config(_Section):
    """The whole training configuration. Build it with `load_config`; every section is optional in YAML."""

    model: ModelConfig = Field(default_factory=ModelConfig)  # type: ignore[arg-type]
    data: DataConfig = Field(default_factory=DataConfig)  # type: ignore[arg-type]
    train: TrainConfig = Field(default_factory=TrainConfig)  # type: ignore[arg-type]
    eval: EvalConfig = Field(default_factory=EvalConfig)  # type: ignore[arg-type]
    read: ReadConfig = Field(default_factory=ReadConfig)  # type: ignore[arg-type]
