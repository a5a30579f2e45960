"""train.epochs sizes a run: max_iter = ceil(epochs * training images / images per step), one length only."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from detforge.config import Config, auto_config, dump_config, load_config
from detforge.data.dataset import Dataset
from detforge.errors import ConfigError
from detforge.structures import Annotation, Categories, ImageRecord


def _dataset(n_train: int, n_val: int) -> Dataset:
    images = [
        ImageRecord(i + 1, f"{i}.jpg", Path(f"/nowhere/{i}.jpg"), 640, 480, "train" if i < n_train else "val")
        for i in range(n_train + n_val)
    ]
    anns = [Annotation(i + 1, i + 1, 1, (10.0, 10.0, 50.0, 40.0)) for i in range(n_train + n_val)]
    return Dataset(tuple(images), tuple(anns), Categories.from_names(["digit"]), Path("/nowhere"), "coco")


def test_epochs_set_max_iter_from_the_training_images() -> None:
    base = load_config(None, ["train.epochs=5", "train.batch_size=3", "train.accumulate=2"])
    config, reasons = auto_config(_dataset(100, 10), device="cpu", cpu_count=2, base=base)
    assert config.train.max_iter == math.ceil(5 * 100 / 6) == 84
    assert config.train.epochs is None  # the resolved config has one length
    line = next(r for r in reasons if r.startswith("train.max_iter = 84:"))
    assert "train.epochs=5" in line and "100 training images" in line and "6 per step" in line


def test_automatic_keys_follow_the_epochs() -> None:
    base = load_config(None, ["train.epochs=2"])
    config, _ = auto_config(_dataset(300, 40), device="cpu", cpu_count=2, base=base)
    assert config.train.max_iter == 300  # 2 x 300 / batch 2
    assert config.train.warmup_iters == 30  # 10% of the run
    assert config.eval.period <= config.train.max_iter
    assert config.train.lr_steps == (225, 270)


def test_epochs_are_kept_under_a_time_budget_that_still_stops_the_run() -> None:
    base = load_config(None, ["train.epochs=50", "train.time=1m"])
    config, _ = auto_config(_dataset(100, 10), device="cpu", cpu_count=2, base=base)
    assert config.train.max_iter == 2500 and config.train.time == 60.0
    unset = load_config(None, ["train.time=1m"])
    assert auto_config(_dataset(100, 10), device="cpu", cpu_count=2, base=unset)[0].train.max_iter < 2500


def test_epochs_on_gpu_are_not_rounded_up_to_the_automatic_minimum() -> None:
    config, _ = auto_config(_dataset(20, 4), device="cuda", cpu_count=2, base=load_config(None, ["train.epochs=1"]))
    assert config.train.max_iter == math.ceil(20 / config.train.images_per_step)


def test_epochs_and_max_iter_together_are_an_error_naming_both() -> None:
    with pytest.raises(ConfigError, match=r"train\.epochs \(3\) and train\.max_iter \(100\) are both set"):
        load_config(None, ["train.epochs=3", "train.max_iter=100"])


def test_epochs_and_max_iter_in_a_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 3\n  max_iter: 100\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="set one of them"):
        load_config(path)
    path.write_text("train:\n  epochs: 3\n", encoding="utf-8")
    assert load_config(path).train.epochs == 3


@pytest.mark.parametrize("bad", ["0", "-1", "2.5", "many"])
def test_bad_epochs_are_rejected(bad: str) -> None:
    with pytest.raises(ConfigError, match="epochs"):
        load_config(None, [f"train.epochs={bad}"])


def test_other_tools_names_point_to_epochs() -> None:
    with pytest.raises(ConfigError, match=r"train\.epochs"):
        load_config(None, ["train.num_epochs=3"])


def test_the_resolved_config_round_trips(tmp_path: Path) -> None:
    """A run's saved config.yaml (epochs: null, max_iter: N) loads back, so `--resume` works."""
    base = load_config(None, ["train.epochs=4"])
    config, _ = auto_config(_dataset(50, 5), device="cpu", cpu_count=2, base=base)
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(config), encoding="utf-8")
    again = load_config(path)
    assert again == config and again.train.max_iter == 100
    assert Config().train.epochs is None


def test_train_takes_epochs_like_the_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import importlib

    from detforge.cli import build_parser

    api_train = importlib.import_module("detforge.api.train")  # the module (detforge.api.train is the verb)

    seen: list[list[str]] = []

    def stop(data: object, overrides: list[str], *, time: str | None = None) -> None:
        seen.append(list(overrides))
        raise ConfigError("stop here")

    monkeypatch.setattr(api_train, "_resolve", stop)
    with pytest.raises(ConfigError, match="stop here"):
        api_train.train(tmp_path, ["train.lr=0.01"], epochs=7, out=tmp_path / "run")
    assert seen == [["train.lr=0.01", "train.epochs=7"]]
    assert build_parser().parse_args(["train", "DATA", "--epochs", "7"]).epochs == 7


def test_a_budget_alone_sizes_the_run_and_a_given_length_is_kept() -> None:
    # 20 images: 24 epochs are 240 iterations, far less than 30 minutes; with only a budget the run fills it
    alone, reasons = auto_config(_dataset(20, 4), device="cpu", cpu_count=2, base=load_config(None, ["train.time=30m"]))
    assert alone.train.time_fit == "fill" and alone.train.max_iter > 240
    assert any(r.startswith("train.time_fit = 'fill': the budget sizes the run") for r in reasons)
    kept, _ = auto_config(_dataset(20, 4), device="cpu", cpu_count=2,
                          base=load_config(None, ["train.time=30m", "train.epochs=3"]))  # fmt: skip
    assert kept.train.time_fit == "limit" and kept.train.max_iter == 30
    none, _ = auto_config(_dataset(20, 4), device="cpu", cpu_count=2)
    assert none.train.time_fit == "auto" and none.train.max_iter == 240
