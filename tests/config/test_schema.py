"""The schema's own rules: durations, derived schedule points, frozen sections."""

from __future__ import annotations

import pydantic
import pytest

from detforge.config import Config, TrainConfig, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("20m", 1200.0),
        ("1h30m", 5400.0),
        ("90s", 90.0),
        ("1.5h", 5400.0),
        (45, 45.0),
        ("3600", 3600.0),
        ("1h 5s", 3605.0),
    ],
)
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "soon", "20x", "-5", 0, "m"])
def test_parse_duration_rejects(bad: str | int) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_derived_steps_follow_max_iter() -> None:
    assert TrainConfig(max_iter=1000).lr_steps == (750, 900)
    assert TrainConfig(max_iter=200, steps=(50,)).lr_steps == (50,)
    assert TrainConfig(batch_size=4, accumulate=3).images_per_step == 12


def test_sections_are_frozen_and_closed() -> None:
    config = Config()
    with pytest.raises(pydantic.ValidationError):
        config.train.lr = 1.0  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError, match="max_size"):
        Config.model_validate({"model": {"min_size": 800, "max_size": 600}})


def test_the_time_budget_is_parsed_once_into_seconds() -> None:
    from detforge.config import dump_config, format_duration, load_config

    config = load_config(None, ["train.time=1h30m"])
    assert config.train.time == 5400.0 and isinstance(config.train.time, float)
    assert "time: 5400.0" in dump_config(config)  # config.yaml holds the number, read back as the same run
    assert TrainConfig(time=90).time == 90.0 and TrainConfig(time="2m").time == 120.0
    for seconds in (45.0, 600.0, 5400.0, 150.5, 7322.0):
        assert parse_duration(format_duration(seconds)) == seconds
    assert format_duration(600) == "10m" and format_duration(5400) == "1h30m"
    with pytest.raises(pydantic.ValidationError, match="duration"):
        TrainConfig(time=[10])  # type: ignore[arg-type]


def test_the_budget_sizes_the_run_unless_a_length_is_given() -> None:
    assert TrainConfig(time=60).time_fills_run
    assert not TrainConfig(time=60, max_iter=100).time_fills_run and not TrainConfig(time=60, epochs=3).time_fills_run
    assert TrainConfig(time=60, max_iter=100, time_fit="fill").time_fills_run
    assert not TrainConfig(time=60, time_fit="limit").time_fills_run
