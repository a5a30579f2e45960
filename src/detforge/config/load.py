"""Read a YAML config, apply `key=value` overrides, validate, and write configs back as YAML."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from detforge.config.messages import describe_validation_error
from detforge.config.schema import Config
from detforge.errors import ConfigError

__all__ = ["apply_overrides", "default_config_yaml", "dump_config", "load_config", "parse_override"]

logger = logging.getLogger(__name__)

# Keys holding file paths: relative paths in a config file are relative to that file's folder.
_PATH_KEYS = (("data", "path"), ("model", "weights"), ("read", "lexicon"))


def parse_override(text: str) -> tuple[str, Any]:
    """Split `"train.lr=0.01"` into ("train.lr", 0.01); the value is parsed as a YAML scalar or list."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r} must look like key=value, e.g. train.lr=0.01 or train.steps=[600,800]")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"override {text!r}: the value {raw!r} is not valid YAML ({exc.__class__.__name__})"
        ) from None
    return key, value


def apply_overrides(tree: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of the nested dict `tree` with each `dotted.key=value` override set (later ones win)."""
    out: dict[str, Any] = _deep_copy(tree)
    for text in overrides:
        key, value = parse_override(text)
        parts = key.split(".")
        node = out
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                parent = ".".join(parts[: depth + 1])
                raise ConfigError(f"override {text!r}: {parent!r} is a value ({child!r}), not a section with keys")
            node = child
        node[parts[-1]] = value
    return out


def _deep_copy(tree: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in tree.items()}


def _line_numbers(text: str) -> dict[str, int]:
    """1-based line of every dotted key in a YAML document (best effort; empty on odd documents)."""
    lines: dict[str, int] = {}

    def walk(node: yaml.Node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = f"{prefix}{key_node.value}"
                lines[key] = key_node.start_mark.line + 1
                walk(value_node, key + ".")

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    if root is not None:
        walk(root, "")
    return lines


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    text = path.read_text(encoding="utf-8")
    try:
        tree = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if tree is None:
        tree = {}
    if not isinstance(tree, dict):
        raise ConfigError(
            f"{path}: expected a mapping of sections (model, data, train, eval, read), got {type(tree).__name__}"
        )
    for section, key in _PATH_KEYS:
        value = tree.get(section, {}).get(key) if isinstance(tree.get(section), dict) else None
        if (
            isinstance(value, str)
            and value
            and value not in ("coco", "imagenet", "none")
            and not Path(value).is_absolute()
        ):
            tree[section][key] = str((path.parent / value).resolve())
    return tree, _line_numbers(text)


def _resolve_model_name(name: str) -> tuple[str, str | None]:
    from detforge.models.aliases import resolve_model_name

    return resolve_model_name(name)


def load_config(path: Path | str | None = None, overrides: Sequence[str] = ()) -> Config:
    """The validated Config from a YAML file (or the defaults when `path` is None) plus overrides.

    Overrides are `dotted.key=value` strings whose values are parsed as YAML (`train.steps=[600,800]`).
    Relative paths inside a config file are taken relative to that file's folder. A Detectron2 model-zoo
    name in `model.name` is translated (a note is logged). Raises ConfigError naming the key, the value,
    where it came from and what is allowed; unknown keys come with the nearest valid key.
    """
    tree: dict[str, Any] = {}
    lines: dict[str, int] = {}
    if path is not None:
        path = Path(path)
        tree, lines = _read_yaml(path)
    tree = apply_overrides(tree, overrides)
    override_keys = {parse_override(o)[0]: o for o in overrides}

    def where(key: str) -> str:
        for given, text in override_keys.items():
            if given == key or given.startswith(key + "."):
                return f" (override {text!r})"
        if path is not None and key in lines:
            return f" ({path}:{lines[key]})"
        return f" ({path})" if path is not None else ""

    try:
        config = Config.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, where)) from None
    try:
        name, note = _resolve_model_name(config.model.name)
    except ConfigError as exc:
        raise ConfigError(f"{exc}{where('model.name')}") from None
    if note:
        logger.warning("model.name %r: %s", config.model.name, note)
    if name != config.model.name:
        config = config.model_copy(update={"model": config.model.model_copy(update={"name": name})})
    return _absolute_paths(config)


def _absolute_paths(config: Config) -> Config:
    """Relative paths that reach this point came from overrides: make them absolute (current folder), so
    the config saved with a run still points at the same files from anywhere."""
    data, model, read = config.data, config.model, config.read
    if data.path is not None and not data.path.is_absolute():
        data = data.model_copy(update={"path": data.path.resolve()})
    if model.weights not in ("coco", "imagenet", "none") and not Path(model.weights).is_absolute():
        model = model.model_copy(update={"weights": str(Path(model.weights).resolve())})
    if read.lexicon is not None and not read.lexicon.is_absolute():
        read = read.model_copy(update={"lexicon": read.lexicon.resolve()})
    if data is config.data and model is config.model and read is config.read:
        return config
    return config.model_copy(update={"data": data, "model": model, "read": read})


def dump_config(config: Config) -> str:
    """The config as YAML text that `load_config` reads back to an equal Config (every key written)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def _yaml_scalar(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def default_config_yaml() -> str:
    """The default configuration as commented YAML (each key with its meaning), for `detforge config show`."""
    out = [
        "# detforge training configuration (defaults). Every key is optional; unset keys keep these",
        "# defaults, and `detforge train` fits model, sizes, batch, LR and schedule to your data and",
        "# device for keys you leave unset. Override any key on the command line: train.lr=0.01",
    ]
    defaults = Config()
    for section, field in Config.model_fields.items():
        model: BaseModel = getattr(defaults, section)
        out.append(f"{section}:  # {(field.annotation.__doc__ or '').strip().splitlines()[0]}")
        for key, info in type(model).model_fields.items():
            value = model.model_dump(mode="json")[key]
            out.append(f"  {key}: {_yaml_scalar(value)}  # {info.description or ''}".rstrip())
    return "\n".join(out) + "\n"
