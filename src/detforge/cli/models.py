"""`detforge models` and `detforge config show`."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_parsers"]


def add_parsers(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = commands.add_parser("models", help="list the model zoo: parameters, GFLOPs, pretrained weights")
    p.add_argument(
        "--measure-gflops",
        dest="measure_gflops",
        action="store_true",
        help="count GFLOPs now by running each model once (slow) instead of the recorded values",
    )
    p.add_argument("--aliases", action="store_true", help="list the Detectron2 model-zoo names detforge accepts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_models)

    config = commands.add_parser("config", help="print the configuration defaults")
    sub = config.add_subparsers(dest="config_command", metavar="VERB", required=True)
    show = sub.add_parser("show", help="print every configuration key with its default (YAML)")
    show.set_defaults(handler=_config_show)


def _models(args: argparse.Namespace) -> int:
    from detforge.api import list_models

    if args.aliases:
        from detforge.models.aliases import ALIASES

        rows = [(a.detectron2_name, a.model, a.schedule, a.note or "") for a in ALIASES.values()]
        if args.json:
            print(
                json.dumps(
                    [dict(zip(("detectron2", "model", "schedule", "note"), r, strict=True)) for r in rows], indent=2
                )
            )
        else:
            width = max(len(r[0]) for r in rows)
            for name, model, schedule, note in rows:
                print(f"{name:<{width}}  ->  {model} ({schedule}){'  ' + note if note else ''}")
        return 0
    table = list_models(measure_gflops=args.measure_gflops)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": r.name,
                        "family": r.family,
                        "params": r.params,
                        "gflops": r.gflops,
                        "input_size": list(r.input_size),
                        "pretrained": list(r.pretrained),
                        "masks": r.has_masks,
                        "description": r.description,
                    }
                    for r in table
                ],
                indent=2,
            )
        )
        return 0
    header = ("model", "params (M)", "GFLOPs", "input (HxW)", "pretrained", "description")
    lines = [
        (
            r.name,
            f"{r.params / 1e6:.1f}",
            "-" if r.gflops is None else f"{r.gflops:g}",
            f"{r.input_size[0]}x{r.input_size[1]}",
            ",".join(r.pretrained) or "-",
            r.description,
        )
        for r in table
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=False)]
    for row in (header, *lines):
        print("  ".join(str(v).ljust(w) for v, w in zip(row[:-1], widths, strict=False)) + "  " + row[-1])
    print(
        "\nGFLOPs: one inference at the default input size (multiply-add = 2 FLOPs). "
        "Detectron2 names are accepted too: detforge models --aliases"
    )
    return 0


def _config_show(args: argparse.Namespace) -> int:
    from detforge.config import default_config_yaml

    print(default_config_yaml(), end="")
    return 0
