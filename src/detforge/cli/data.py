"""`detforge data ...`: sample, check, stats, show, split, convert."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from detforge.cli import _checks as checks
from detforge.cli._checks import at_least, fraction, positive_int
from detforge.cli._json import print_json
from detforge.data.formats import READ_FORMATS, WRITE_FORMATS

__all__ = ["add_parser"]


def _add_format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=READ_FORMATS, default=None, help="force the input format (default: detect)")
    p.add_argument(
        "--text-attribute",
        metavar="NAME",
        default=None,
        help="the box attribute holding its transcription (default: detected when unambiguous)",
    )


def _add_overwrite(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the output folder as a whole even if another command or a person wrote it",
    )


def _add_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print a machine-readable result (docs/cli-json.md)")


def _add_skip_invalid(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--skip-invalid",
        action="store_true",
        help="leave out invalid items (each is logged) instead of stopping with an error",
    )


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    data = commands.add_parser("data", help="read, check, understand, split and convert datasets")
    sub = data.add_subparsers(dest="data_command", metavar="VERB", required=True)

    p = sub.add_parser("sample", help="generate the bundled sample dataset (COCO, train/val/test)")
    p.add_argument("out", type=Path)
    p.add_argument("--n", type=positive_int, default=240, help="number of images (default 240)")
    p.add_argument("--seed", type=int, default=0)
    _add_json(p)
    p.set_defaults(handler=_sample)

    p = sub.add_parser("check", help="report every problem in a dataset (exit 1 when there are errors)")
    p.add_argument("data", metavar="PATH", type=Path)
    _add_format(p)
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    p.add_argument("--json", action="store_true", help="print a machine-readable report")
    p.add_argument("--no-leakage", dest="leakage", action="store_false", help="skip near-duplicate search")
    _add_progress(p)
    p.set_defaults(handler=_check)

    p = sub.add_parser("stats", help="images, instances per class, box sizes, aspect ratios")
    p.add_argument("data", metavar="PATH", type=Path)
    _add_format(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--out", type=Path, default=None, help="also write PNG plots and index.html here")
    _add_overwrite(p)
    _add_progress(p)
    p.set_defaults(handler=_stats)

    p = sub.add_parser("show", help="draw random samples with their labels (gallery PNG + HTML)")
    p.add_argument("data", metavar="PATH", type=Path)
    _add_format(p)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--n", type=positive_int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--subset", default=None, help="only this subset (train, val, test, ...)")
    _add_overwrite(p)
    _add_json(p)
    _add_progress(p)
    p.set_defaults(handler=_show)

    p = sub.add_parser("split", help="deterministic, stratified, group-aware train/val/test split or k folds")
    p.add_argument("data", metavar="PATH", type=Path)
    _add_format(p)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--ratios", type=fraction, nargs="+", default=[0.8, 0.1, 0.1])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--group", default=None, help="regex on file names; matching images stay in one split")
    p.add_argument("--folds", type=at_least(2), default=None, help="write K train/val folds instead")
    p.add_argument("--to", choices=WRITE_FORMATS, default=None, help="output format (default: the input's)")
    p.add_argument("--rename", action="store_true", help="rename images to their ids (000001.jpg, ...)")
    p.add_argument(
        "--allow-empty",
        action="store_true",
        help="warn instead of failing when --group matches nothing or a split gets no images",
    )
    _add_skip_invalid(p)
    _add_overwrite(p)
    _add_json(p)
    _add_progress(p)
    p.set_defaults(handler=_split)

    p = sub.add_parser("convert", help="convert a dataset to coco, yolo, voc or cvat")
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.add_argument("--to", choices=WRITE_FORMATS, required=True)
    _add_format(p)
    _add_skip_invalid(p)
    _add_overwrite(p)
    _add_json(p)
    _add_progress(p)
    p.set_defaults(handler=_convert)


def _sample(args: argparse.Namespace) -> int:
    from detforge.api import sample

    checks.output_folder(args.out, "OUT")
    out = sample(args.out, n=args.n, seed=args.seed)
    if args.json:
        print_json({"out": out, "images": args.n, "seed": args.seed})
        return 0
    print(f"wrote sample dataset ({args.n} images, seed {args.seed}) to {out}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from detforge.api import check

    report = check(
        args.data,
        format=args.format,
        strict=args.strict,
        leakage=args.leakage,
        text_attribute=args.text_attribute,
        progress=args.progress,
    )
    print(json.dumps(report.to_json(), indent=2) if args.json else report.format_text())
    return 0 if report.ok else 1


def _stats(args: argparse.Namespace) -> int:
    from detforge.api import stats

    checks.output_folder(args.out, "--out")
    result = stats(
        args.data,
        format=args.format,
        out=args.out,
        text_attribute=args.text_attribute,
        overwrite=args.overwrite,
        progress=args.progress,
    )
    print(json.dumps(result.to_json(), indent=2) if args.json else result.format_table())
    if args.out is not None and not args.json:
        print(f"\nplots and report: {args.out / 'index.html'}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from detforge.api import show

    checks.output_folder(args.out, "--out")
    html = show(
        args.data,
        out=args.out,
        n=args.n,
        seed=args.seed,
        subset=args.subset,
        format=args.format,
        text_attribute=args.text_attribute,
        overwrite=args.overwrite,
        progress=args.progress,
    )
    if args.json:
        print_json({"html": html, "grid": html.parent / "gallery.png"})
        return 0
    print(f"gallery: {html}  (grid: {html.parent / 'gallery.png'})")
    return 0


def _split(args: argparse.Namespace) -> int:
    from detforge.api import split

    checks.output_folder(args.out, "--out")
    outs = split(
        args.data,
        out=args.out,
        ratios=args.ratios,
        seed=args.seed,
        group=args.group,
        folds=args.folds,
        to=args.to,
        rename=args.rename,
        format=args.format,
        text_attribute=args.text_attribute,
        allow_empty=args.allow_empty,
        skip_invalid=args.skip_invalid,
        overwrite=args.overwrite,
        progress=args.progress,
    )
    if args.json:
        print_json({"outputs": outs})
        return 0
    for out in outs:
        print(f"wrote {out}")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from detforge.api import convert

    checks.output_folder(args.dst, "DST")
    out = convert(
        args.src,
        args.dst,
        to=args.to,
        format=args.format,
        text_attribute=args.text_attribute,
        skip_invalid=args.skip_invalid,
        overwrite=args.overwrite,
        progress=args.progress,
    )
    if args.json:
        print_json({"out": out, "format": args.to})
        return 0
    print(f"wrote {args.to} dataset to {out}")
    return 0
