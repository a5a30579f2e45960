"""Training configuration: a validated, frozen schema, YAML loading with overrides, automatic choices.

Importing this package does not import torch.
"""

from detforge.config.auto import auto_config
from detforge.config.detectron2 import DETECTRON2_KEYS
from detforge.config.load import default_config_yaml, dump_config, load_config, parse_override
from detforge.config.messages import all_keys
from detforge.config.schedule_checks import check_schedule
from detforge.config.schema import (
    Config,
    DataConfig,
    EvalConfig,
    ModelConfig,
    ReadConfig,
    TrainConfig,
    format_duration,
    parse_duration,
)

__all__ = [
    "DETECTRON2_KEYS",
    "Config",
    "DataConfig",
    "EvalConfig",
    "ModelConfig",
    "ReadConfig",
    "TrainConfig",
    "all_keys",
    "auto_config",
    "check_schedule",
    "default_config_yaml",
    "dump_config",
    "format_duration",
    "load_config",
    "parse_duration",
    "parse_override",
]
