"""load_config: YAML + overrides, messages that name the key, the value and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from detforge.config import Config, default_config_yaml, dump_config, load_config, parse_override
from detforge.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_file() -> None:
    config = load_config(None)
    assert config == Config()
    assert config.train.lr == 0.0025 and config.model.name == "fasterrcnn_mobilenet_v2_fpn"


def test_yaml_then_overrides_in_order(tmp_path: Path) -> None:
    path = _write(tmp_path, "train:\n  lr: 0.01\n  max_iter: 500\neval:\n  metric: ap50\n")
    config = load_config(path, ["train.lr=0.005", "train.steps=[300,400]", "train.lr=0.002", "data.val=null"])
    assert config.train.lr == 0.002
    assert config.train.max_iter == 500
    assert config.train.steps == (300, 400)
    assert config.eval.metric == "ap50"
    assert config.data.val is None
    # explicitly set keys are remembered (auto_config leaves them alone)
    assert config.train.model_fields_set == {"lr", "max_iter", "steps"}
    assert config.model.model_fields_set == set()


def test_relative_data_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "data:\n  path: photos\n")
    assert load_config(path).data.path == (tmp_path / "photos").resolve()
    assert load_config(path, ["data.path=/abs/elsewhere"]).data.path == Path("/abs/elsewhere")
    assert load_config(None, ["data.path=rel/data"]).data.path == Path.cwd() / "rel" / "data"  # from the shell


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ["train.learning_rate=0.1"],
            "unknown key 'train.learning_rate' (override 'train.learning_rate=0.1'); did you mean 'train.lr'?",
        ),
        (["trian.lr=1"], "did you mean 'train.lr'?"),
        (["model.lr=1"], "unknown key 'model.lr'"),
        (["lr=1"], "did you mean 'train.lr'?"),
        (["train.momentom=0.8"], "did you mean 'train.momentum'?"),
        (["SOLVER.BASE_LR=0.02"], "SOLVER.BASE_LR is a Detectron2 key; in detforge use 'train.lr'"),
        (["MODEL.ROI_HEADS.NUM_CLASSES=3"], "detforge sets it from the dataset's categories"),
    ],
)
def test_unknown_keys_name_the_full_key_and_suggest(overrides: list[str], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, overrides)
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "train.optimizer=adam",
            "invalid value for 'train.optimizer': 'adam' (override 'train.optimizer=adam'); expected 'sgd' or 'adamw'",
        ),
        ("train.batch_size=0", "invalid value for 'train.batch_size': 0"),
        ("train.batch_size=two", "expected a valid integer"),
        ("data.augment=heavy", "expected 'none', 'light', 'standard' or 'strong'"),
        ("data.num_workers=-1", "expected auto or an integer >= 0"),
        ("train.time=soon", "expected a duration like 20m, 1h30m, 90s or a number of seconds"),
        ("train.steps=[800,600]", "expected strictly increasing iteration numbers"),
        ("train.device=gpu", "expected auto, cpu, cuda or cuda:N"),
        ("model.weights=best", "expected coco, imagenet, none, or a path"),
        ("model=3", "invalid value for 'model': 3"),
    ],
)
def test_bad_values_name_key_value_and_allowed(override: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    message = str(info.value)
    assert expected in message
    assert "pydantic" not in message and "errors.pydantic.dev" not in message


def test_errors_in_a_file_give_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "train:\n  lr: 0.01\n  batch_size: many\n  warmup_itrs: 5\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith("2 problems in the configuration:")
    assert f"invalid value for 'train.batch_size': 'many' ({path}:3); expected a valid integer" in message
    assert f"unknown key 'train.warmup_itrs' ({path}:4); did you mean 'train.warmup_iters'?" in message


def test_bad_yaml_and_bad_override_syntax(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"run\.yaml:3:1: invalid YAML"):
        load_config(_write(tmp_path, "train:\n  lr: [\n"))
    with pytest.raises(ConfigError, match="expected a mapping of sections"):
        load_config(_write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(ConfigError, match="must look like key=value"):
        load_config(None, ["train.lr"])
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    assert parse_override("train.time=1h30m") == ("train.time", "1h30m")
    assert parse_override("data.val=") == ("data.val", None)


def test_detectron2_model_names_are_translated(caplog: pytest.LogCaptureFixture) -> None:
    config = load_config(None, ["model.name=COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml"])
    assert config.model.name == "fasterrcnn_resnet50_fpn"
    assert "schedule 3x" in caplog.text
    with pytest.raises(ConfigError, match=r"unknown model 'fasterrcnn_resnet'.*did you mean"):
        load_config(None, ["model.name=fasterrcnn_resnet"])


def test_dump_and_default_yaml_round_trip(tmp_path: Path) -> None:
    config = load_config(None, ["train.time=1h30m", "train.steps=[10,20]", "data.path=/data/x", "train.max_iter=30"])
    again = load_config(_write(tmp_path, dump_config(config)))
    assert again == config
    assert again.train.time == 5400.0
    text = default_config_yaml()
    assert "lr: 0.0025  # peak learning rate" in text
    assert load_config(_write(tmp_path, text)) == Config()
    assert text.count("#") > 40  # every key commented
