"""Turn pydantic validation errors into messages that name the dotted key, the value and what is allowed."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from detforge.config.detectron2 import detectron2_hint
from detforge.config.schema import Config

__all__ = ["SYNONYMS", "all_keys", "describe_validation_error", "suggest_key"]


def _section_models() -> dict[str, type[BaseModel]]:
    out: dict[str, type[BaseModel]] = {}
    for name, field in Config.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out[name] = annotation
    return out


def all_keys() -> list[str]:
    """Every valid dotted key, e.g. "train.lr", in schema order."""
    return [f"{section}.{key}" for section, model in _section_models().items() for key in model.model_fields]


# Names other tools use for a detforge key (matched on the last part of a dotted key, any case).
SYNONYMS: dict[str, str] = {
    "learning_rate": "lr",
    "base_lr": "lr",
    "lr0": "lr",
    "batch": "batch_size",
    "ims_per_batch": "batch_size",
    "iterations": "max_iter",
    "iters": "max_iter",
    "max_iters": "max_iter",
    "num_iters": "max_iter",
    "epoch": "epochs",
    "num_epochs": "epochs",
    "max_epochs": "epochs",
    "lr_steps": "steps",
    "milestones": "steps",
    "warmup": "warmup_iters",
    "warmup_steps": "warmup_iters",
    "optim": "optimizer",
    "lr_scheduler": "scheduler",
    "schedule": "scheduler",
    "workers": "num_workers",
    "weight": "weights",
    "pretrained": "weights",
    "checkpoint": "weights",
    "arch": "name",
    "model": "name",
    "imgsz": "min_size",
    "img_size": "min_size",
    "image_size": "min_size",
    "gpu": "device",
    "gpus": "device",
    "eval_period": "period",
    "val_period": "period",
    "decay": "weight_decay",
    "wd": "weight_decay",
    "grad_clip": "clip_grad_norm",
    "clip_grad": "clip_grad_norm",
    "max_norm": "clip_grad_norm",
    "time_budget": "time",
    "budget": "time",
    "early_stopping": "patience",
    "augmentation": "augment",
    "dataset": "path",
    "data_dir": "path",
    "fp16": "amp",
    "mixed_precision": "amp",
    "accumulation": "accumulate",
    "grad_accum": "accumulate",
    "conf": "score_threshold",
    "score_thresh": "score_threshold",
    "text_attr": "text_attribute",
    "transcription_attribute": "text_attribute",
    "enable": "enabled",
    "allowlist": "allow",
    "allow_list": "allow",
    "whitelist": "allow",
    "charset": "allow",
    "characters": "allow",
    "chars": "allow",
    "regex": "pattern",
    "vocabulary": "lexicon",
    "vocab": "lexicon",
    "dictionary": "lexicon",
    "text_threshold": "min_score",
    "text_score": "min_score",
    "min_confidence": "min_score",
    "min_text_score": "min_score",
    "recogniser": "recognizer",
    "ocr": "recognizer",
    "engine": "recognizer",
    "pad": "padding",
}


def suggest_key(dotted: str) -> str | None:
    """The valid key a misspelled or misplaced `dotted` key most likely meant, or None."""
    sections = _section_models()
    parts = dotted.split(".")
    leaf = SYNONYMS.get(parts[-1].lower(), parts[-1])
    if leaf != parts[-1] and len(parts) == 2 and parts[0] in sections and leaf in sections[parts[0]].model_fields:
        return f"{parts[0]}.{leaf}"
    if len(parts) == 2 and parts[0] in sections:
        close = difflib.get_close_matches(leaf, list(sections[parts[0]].model_fields), n=1, cutoff=0.6)
        if close:
            return f"{parts[0]}.{close[0]}"
    for section, model in sections.items():  # right key, wrong section (or no section)
        if leaf in model.model_fields:
            return f"{section}.{leaf}"
    if len(parts) == 1:
        close = difflib.get_close_matches(leaf, list(sections), n=1, cutoff=0.6)
        if close:
            return close[0]
    close = difflib.get_close_matches(dotted, all_keys(), n=1, cutoff=0.6)
    return close[0] if close else None


def _key_of(loc: tuple[int | str, ...]) -> tuple[str, bool]:
    """The dotted config key of an error location and whether the location names a known field."""
    sections = _section_models()
    if not loc:
        return "", True
    head = str(loc[0])
    if head not in sections:
        return head, False
    if len(loc) == 1:
        return head, True
    leaf = str(loc[1])
    return f"{head}.{leaf}", leaf in sections[head].model_fields


def _expectation(error: Mapping[str, Any]) -> str:
    kind = str(error["type"])
    msg = str(error["msg"])
    if kind == "model_type" or kind == "dict_type":
        return "expected a section (a mapping of keys)"
    if kind == "value_error" and msg.startswith("Value error, "):
        return msg[len("Value error, ") :]
    if msg.startswith("Input should be "):
        msg = "expected " + msg[len("Input should be ") :]
    if kind.endswith("_parsing") or kind.endswith("_type"):
        msg = msg.split(",")[0]
    return msg


def _unknown_key_message(key: str) -> str:
    hint = detectron2_hint(key)
    if hint:
        return f"unknown key {key!r}: {hint}"
    suggestion = suggest_key(key)
    if suggestion:
        return f"unknown key {key!r}; did you mean {suggestion!r}?"
    sections = ", ".join(_section_models())
    return f"unknown key {key!r}; valid sections are {sections} (see `detforge config show`)"


def _leaf_keys(prefix: str, value: object) -> list[str]:
    """Dotted keys of the leaves under an unknown section (`{"SOLVER": {"BASE_LR": 1}}` -> SOLVER.BASE_LR)."""
    if isinstance(value, Mapping) and value:
        return [k for name, sub in value.items() for k in _leaf_keys(f"{prefix}.{name}", sub)]
    return [prefix]


def describe_validation_error(exc: ValidationError, where: Callable[[str], str]) -> str:
    """One line per bad key: unknown keys with a suggestion, bad values with the value and what is allowed.

    `where(key)` names the origin of a key (file and line, or the override) or returns "".
    Errors for one key from several union members are merged into one line.
    """
    lines: dict[str, list[str]] = {}
    for error in exc.errors():
        loc = tuple(error["loc"])
        key, known = _key_of(loc)
        if error["type"] == "extra_forbidden" or not known:
            base = ".".join(str(p) for p in loc) if error["type"] == "extra_forbidden" else key
            for unknown in _leaf_keys(base, error.get("input")):
                lines.setdefault(unknown, []).append(_unknown_key_message(unknown))
            continue
        value = error.get("input")
        expected = _expectation(error)
        origin = where(key)
        text = f"invalid value for {key!r}: {value!r}{origin}; {expected}"
        existing = lines.setdefault(key, [])
        if existing and existing[0].startswith(f"invalid value for {key!r}"):
            existing[0] = f"{existing[0]} or {expected.removeprefix('expected ')}"
        else:
            existing.append(text)
    for key in list(lines):
        if not lines[key][0].startswith("invalid value"):
            origin = where(key)
            lines[key] = [line.replace(f"{key!r}", f"{key!r}{origin}", 1) if origin else line for line in lines[key]]
    messages = [line for group in lines.values() for line in group[:1]]
    if len(messages) == 1:
        return messages[0]
    return f"{len(messages)} problems in the configuration:\n" + "\n".join(f"  - {m}" for m in messages)
