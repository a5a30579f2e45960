"""The CLI and the Python API are the same verbs with the same parameter names."""

from __future__ import annotations

import argparse
import inspect

import detforge
from detforge.cli import build_parser

CLI_ONLY = {"handler", "json", "verbose", "command", "data_command", "config_command", "aliases"}


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_data_verb_flag_is_an_api_parameter() -> None:
    data_verbs = _subparsers(_subparsers(build_parser())["data"])
    assert set(data_verbs) == {"sample", "check", "stats", "show", "split", "convert"}
    for verb, sub in data_verbs.items():
        api_params = set(inspect.signature(getattr(detforge, verb)).parameters)
        dests = {a.dest for a in sub._actions if a.dest not in CLI_ONLY and a.dest != "help"}
        missing = dests - api_params
        assert not missing, f"`detforge data {verb}` flags {missing} have no parameter of that name in detforge.{verb}"


def test_every_top_level_verb_flag_is_an_api_parameter() -> None:
    verbs = _subparsers(build_parser())
    api_name = {
        "train": "train",
        "predict": "predict",
        "eval": "evaluate",
        "models": "list_models",
        "serve": "serve",
        "export": "export_model",
        "benchmark": "benchmark",
    }
    for verb, name in api_name.items():
        api_params = set(inspect.signature(getattr(detforge, name)).parameters)
        dests = {a.dest for a in verbs[verb]._actions if a.dest not in CLI_ONLY | {"help", "paths"}}
        missing = dests - api_params
        assert not missing, f"`detforge {verb}` flags {missing} have no parameter of that name in detforge.{name}"


def test_public_api_is_sorted_and_importable_without_torch() -> None:
    import subprocess
    import sys

    assert detforge.__all__ == sorted(detforge.__all__)
    code = "import sys, detforge; detforge.load_dataset; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False", "importing detforge must not import torch"


def test_api_verbs_are_not_shadowed_by_subpackages() -> None:
    """`import detforge.models...` sets the attribute `detforge.models` to the subpackage; no verb may share
    a name with a subpackage (this broke `detforge.models()` once, depending on import order)."""
    import subprocess
    import sys

    code = (
        "import detforge, detforge.models.zoo, detforge.export, detforge.evaluation, detforge.inference, "
        "detforge.serving, detforge.engine, detforge.config\n"
        "bad = [n for n in detforge.__all__ if n[0].islower() and n != '__version__' "
        "and not callable(getattr(detforge, n))]\n"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
