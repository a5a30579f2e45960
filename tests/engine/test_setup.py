"""Device, mixed precision and determinism settings; data subsets; refusing to overwrite a run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from detforge.config import Config, load_config
from detforge.engine import train_from_config
from detforge.engine.distributed import DistInfo, env_dist_info
from detforge.engine.setup import amp_settings, deterministic_mode, load_splits, per_rank_batch, resolve_device
from detforge.errors import ConfigError


def test_amp_is_off_on_cpu_and_on_needs_cuda() -> None:
    cpu = torch.device("cpu")
    assert not amp_settings(load_config(None), cpu).enabled
    with pytest.raises(ConfigError, match=r"train\.amp=on needs a CUDA device"):
        amp_settings(load_config(None, ["train.amp=on"]), cpu)


@pytest.mark.parametrize(
    ("overrides", "bf16_ok", "expected"),
    [
        ([], True, torch.bfloat16),
        ([], False, torch.float16),
        (["train.amp_dtype=fp16"], True, torch.float16),
        (["train.amp=off"], True, None),
    ],
)
def test_amp_dtype_choice_on_cuda(
    overrides: list[str], bf16_ok: bool, expected: torch.dtype | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_ok)
    amp = amp_settings(load_config(None, overrides), torch.device("cuda", 0))
    assert amp.enabled == (expected is not None)
    if expected is not None:
        assert amp.dtype == expected


def test_bf16_requested_on_a_gpu_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(ConfigError, match="does not support bfloat16"):
        amp_settings(load_config(None, ["train.amp_dtype=bf16"]), torch.device("cuda", 0))


def test_devices_and_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("cpu", DistInfo()) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto", DistInfo()) == torch.device("cpu")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda:1", DistInfo())
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert env_dist_info() is None
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    info = env_dist_info()
    assert info == DistInfo(1, 2, 1) and not info.is_main and info.distributed
    assert per_rank_batch(load_config(None, ["train.batch_size=4"]), info) == 2
    with pytest.raises(ConfigError, match="cannot be split evenly over 2 processes"):
        per_rank_batch(load_config(None, ["train.batch_size=3"]), info)


def test_deterministic_mode_restores_global_flags() -> None:
    before = torch.are_deterministic_algorithms_enabled()
    with deterministic_mode("auto", torch.device("cpu")):
        assert torch.are_deterministic_algorithms_enabled()
    with deterministic_mode(False, torch.device("cpu")):
        assert not torch.are_deterministic_algorithms_enabled()
    assert torch.are_deterministic_algorithms_enabled() == before


def test_cudnn_benchmark_mode_stays_off_on_cuda() -> None:
    # Detection batches change shape every step; benchmark mode re-tunes each one (0.65x speed on an H100).
    before = torch.backends.cudnn.benchmark
    for setting in ("auto", False, True):
        with deterministic_mode(setting, torch.device("cuda")):
            assert torch.backends.cudnn.benchmark is False
    assert torch.backends.cudnn.benchmark == before


def test_subsets(make_config: Callable[..., Config], tiny_data: Path, caplog: pytest.LogCaptureFixture) -> None:
    splits = load_splits(make_config())
    assert (len(splits.train), len(splits.val or ()), splits.categories.names) == (6, 2, ("a", "b"))
    assert load_splits(make_config("data.val=null")).val is None
    with caplog.at_level("WARNING"):
        assert load_splits(make_config("data.val=holdout")).val is None
    assert "data.val='holdout': no such subset" in caplog.text
    with pytest.raises(ConfigError, match=r"data.train='trn': no such subset .*subsets: \['train', 'val'\]"):
        load_splits(make_config("data.train=trn"))
    with pytest.raises(ConfigError, match=r"data\.path is not set"):
        load_splits(load_config(None))


def test_bad_devices_argument(make_config: Callable[..., Config], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="devices=0"):
        train_from_config(make_config(), out_dir=tmp_path, devices=0)
