"""Run every detforge benchmark, merge the numbers into results.json and write the results.md tables.

Each benchmark is a module `benchmarks/bench_<name>.py` exposing `main(out_dir: Path, *, quick: bool) -> dict`;
a missing one is skipped with a note, a failing one is recorded with its error and the others still run.
Normal mode writes `benchmarks/results.json`, `benchmarks/results.md` and each benchmark's own files under
`benchmarks/results/`; `--quick` (a smoke run) writes everything under `benchmarks/results/quick/` so the
committed numbers are never overwritten by a smoke run.

A benchmark's dict is rendered as a table from its `rows` (preferred: `case`, `detforge`, `peer`, `unit`,
`ratio`, `ratio_min`, `ratio_max`, `goal`, `meets_goal`, `detforge_loses`, `note`), else from its `goals`
(`{name: {goal, measured, met}}`), `ratios` (`{name: value}`) and `models` (`[{model, backends, goal_*}]`)
entries, else from its top-level numbers; "detforge loses" marks rows where detforge is the slower or bigger.
`--render` only rewrites results.md from results.json. `--only NAME ...` runs those and keeps the other
benchmarks' entries of an existing results.json.
Run: `.venv/bin/python benchmarks/run_all.py [--quick] [--only eval serving ...]` (or `make bench`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

__all__ = ["BENCHMARKS", "main", "render_markdown"]

BENCHMARKS: tuple[str, ...] = (
    "cli",
    "training",
    "inference",
    "scaling",
    "eval",
    "serving",
    "reading",
    "accuracy",
    "batch",
    "onestage",
)
"""Benchmark names in the order they run; `bench_<name>.py` holds each."""


def _run_one(name: str, out_dir: Path, quick: bool) -> dict[str, Any]:
    """The benchmark's result dict, or {"skipped": why} / {"error": message} (never raises)."""
    try:
        module = importlib.import_module(f"bench_{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"bench_{name}":
            return {"skipped": f"benchmarks/bench_{name}.py is not there yet"}
        return {"error": f"import failed: {exc}"}
    print(f"== {name} ({'quick' if quick else 'normal'}) ...", flush=True)
    start = time.perf_counter()
    try:
        result = dict(module.main(out_dir, quick=quick))
    except Exception as exc:  # one broken benchmark must not lose the others' numbers
        traceback.print_exc()
        return {"error": f"{type(exc).__name__}: {exc}", "wall_s": round(time.perf_counter() - start, 1)}
    result["wall_s"] = round(time.perf_counter() - start, 1)
    print(f"== {name} done in {result['wall_s']:.0f} s", flush=True)
    return result


def _fmt(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return lines


def _verdict(row: dict[str, Any]) -> str:
    parts = []
    if row.get("detforge_loses"):
        parts.append(f"**{row.get('loses_label', 'detforge loses')}**")
    if row.get("meets_goal") is True:
        parts.append("goal met")
    elif row.get("meets_goal") is False:
        parts.append("goal NOT met")
    return ", ".join(parts)


def _rows_table(rows: list[dict[str, Any]]) -> list[str]:
    out = []
    for r in rows:
        unit = r.get("unit", "")
        ratio = r.get("ratio")
        spread = f"{_fmt(r.get('ratio_min'))}–{_fmt(r.get('ratio_max'))}" if "ratio_min" in r else None
        out.append(
            [
                r.get("case"),
                f"{_fmt(r.get('detforge'))} {unit}".strip(),
                f"{_fmt(r.get('peer'))} {unit}".strip() if r.get("peer") is not None else None,
                f"{ratio:.2f}x" if isinstance(ratio, int | float) else None,
                spread,
                r.get("goal"),
                _verdict(r),
                r.get("note"),
            ]
        )
    return _table(["case", "detforge", "peer", "ratio", "min–max", "goal", "verdict", "note"], out)


def _loses(name: str, value: Any) -> bool:
    """Whether a named detforge/peer ratio says detforge is worse (time, memory, overhead up; rate down)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    key = name.lower()
    if "overhead" in key:
        return value > 0
    if "per_s" in key or "speedup" in key or "throughput" in key:
        return value < 1
    if "over" in key and ("time" in key or "rss" in key or "memory" in key or "latency" in key):
        return value > 1
    return False


def _goal_rows(goals: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for name, g in goals.items():
        g = g if isinstance(g, dict) else {"measured": g}
        met = g.get("met")
        measured = g.get("measured")
        if measured is None:
            measured = ", ".join(f"{k} {_fmt(v)}" for k, v in g.items() if k not in ("goal", "met"))
        verdict = "goal met" if met else "**goal NOT met**" if met is False else ""
        rows.append([name, g.get("goal"), measured, verdict])
    return rows


def _models_tables(models: list[Any]) -> list[str]:
    """Per model: its `backends` mapping (name -> numbers or a note) as a table, then its `goal_*` entries."""
    lines: list[str] = []
    for m in models:
        if not isinstance(m, dict):
            continue
        lines += [f"**{m.get('model', '?')}** ({m.get('input', '')})", ""]
        backends: dict[str, Any] = m["backends"] if isinstance(m.get("backends"), dict) else {}
        cols: list[str] = []
        for row in backends.values():
            for k, v in row.items() if isinstance(row, dict) else ():
                if isinstance(v, int | float) and k not in cols:
                    cols.append(k)
        table = []
        for name, row in backends.items():
            if not isinstance(row, dict):
                table.append([name, *([None] * len(cols)), row])
                continue
            speedup = next((v for k, v in row.items() if "speedup" in k), None)
            loses = name.startswith("detforge") and _loses("speedup", speedup)
            table.append([name, *(row.get(c) for c in cols), "**detforge loses**" if loses else ""])
        if table:
            lines += [*_table(["backend", *cols, "verdict / note"], table), ""]
        goals = {k: v for k, v in m.items() if k.startswith("goal") and isinstance(v, dict)}
        if goals:
            lines += [*_table(["goal", "target", "measured", "verdict"], _goal_rows(goals)), ""]
    return lines


def _records_table(records: list[Any]) -> list[str]:
    """A list of flat dicts as one table (columns: every scalar or timing key, in first-seen order)."""

    def cell(v: Any) -> Any:  # a {median, min, max} timing shows as "median (min–max)"
        if isinstance(v, dict) and "median" in v:
            return f"{_fmt(v['median'])} ({_fmt(v.get('min'))}–{_fmt(v.get('max'))})"
        return v

    cols: list[str] = []
    for rec in records:
        for k, v in rec.items() if isinstance(rec, dict) else ():
            if (not isinstance(v, dict | list) or (isinstance(v, dict) and "median" in v)) and k not in cols:
                cols.append(k)
    return _table(cols, [[cell(rec.get(c)) for c in cols] for rec in records if isinstance(rec, dict)])


def _generic_tables(result: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    goals = result.get("goals")
    if isinstance(goals, dict) and goals:
        lines += [*_table(["goal", "target", "measured", "verdict"], _goal_rows(goals)), ""]
    ratios = result.get("ratios")
    if isinstance(ratios, dict) and ratios:
        rows = [[k, v, "**detforge loses**" if _loses(k, v) else ""] for k, v in ratios.items()]
        lines += [*_table(["ratio (detforge / peer)", "value", "verdict"], rows), ""]
    if isinstance(result.get("models"), list):
        lines += _models_tables(result["models"])
    for key, section in result.items():  # sections shaped {"rows": [{...}], "<fit>": {...}, ...}
        if isinstance(section, dict) and isinstance(section.get("rows"), list):
            lines += [f"**{key}**", "", *_records_table(section["rows"]), ""]
            fits = [(k, v) for k, v in section.items() if isinstance(v, dict)]
            if fits:
                text = [[k, ", ".join(f"{n} {_fmt(x)}" for n, x in v.items())] for k, v in fits]
                lines += [*_table(["fit", "values"], text), ""]
    if not lines:
        scalars = [(k, v) for k, v in result.items() if isinstance(v, int | float | str | bool) and k != "wall_s"]
        lines += [*_table(["key", "value"], scalars), ""]
    return lines


def _curve_table(curve: list[dict[str, Any]]) -> list[str]:
    rows = [[f"{p['seconds'] / 60:.1f}", p["iteration"], f"{p['ap']:.4f}", f"{p['ap50']:.4f}"] for p in curve]
    return _table(["minutes", "iteration", "val AP", "val AP50"], rows)


def render_markdown(merged: dict[str, Any]) -> str:
    """results.md: the machine, then one section per benchmark with its goal and table."""
    m = merged["machine"]
    lines = [
        "# detforge benchmark results",
        "",
        f"Generated by `benchmarks/run_all.py{' --quick' if merged['quick'] else ''}` on {merged['date']} "
        f"in {merged['wall_s'] / 60:.1f} min. Machine: {m.get('cpu')}, {m.get('usable_cpus')} usable CPUs, "
        f"{m.get('memory_gib')} GiB, load average at start {m.get('load_average')} (shared machine: other jobs "
        f"ran at the same time), Python {m.get('python')}, torch {merged['torch']}, torchvision "
        f"{m.get('torchvision')}, {m.get('torch_threads')} torch threads"
        + (f", float32 matmul {m['matmul_fp32']['median_gflops']} GFLOP/s" if "matmul_fp32" in m else "")
        + ".",
        "",
        "Every ratio compares detforge with a peer run in the same script on the same inputs (warm-up, "
        "interleaved rounds, medians; min–max is the spread of the per-round ratios). Ratios > 1 favour "
        "detforge unless the table says otherwise. Raw numbers: `results.json` and `results/*.json`.",
        "",
    ]
    for name, result in merged["benchmarks"].items():
        title = result.get("title") or result.get("benchmark") or name
        lines += [f"## {name}: {title}", ""]
        if "skipped" in result:
            lines += [f"Skipped: {result['skipped']}.", ""]
            continue
        if "error" in result:
            lines += [f"**Failed**: `{result['error']}`", ""]
            continue
        if result.get("goal"):
            lines += [f"Goal: {result['goal']}.", ""]
        own = result.get("machine")
        if isinstance(own, dict) and own.get("cpu") != m.get("cpu"):  # merged from a run on another machine
            lines += [
                f"Machine of this run: {own.get('cpu')}, {own.get('usable_cpus')} usable CPUs, "
                f"{own.get('torch_threads')} torch threads, finished {own.get('time_utc')}.",
                "",
            ]
        if result.get("caveat"):
            lines += [f"**Caveat**: {result['caveat']}.", ""]
        rows = result.get("rows")
        lines += ([*_rows_table(rows), ""]) if isinstance(rows, list) and rows else _generic_tables(result)
        if isinstance(result.get("curve"), list) and result["curve"]:
            lines += [*_curve_table(result["curve"]), ""]
            if result.get("plot"):
                lines += [
                    f"![validation AP vs time]({'' if merged['quick'] else 'results/'}{result['plot']})",
                    "",
                ]
        if "wall_s" in result:
            lines += [f"Ran in {result['wall_s'] / 60:.1f} min.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks, write the merged JSON and markdown; exit status 1 when one failed."""
    parser = argparse.ArgumentParser(description="run every detforge benchmark and write results.json/results.md")
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, results under results/quick/")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these benchmarks")
    parser.add_argument("--render", action="store_true", help="only rewrite results.md from results.json")
    args = parser.parse_args(argv)
    if args.render:
        summary = (HERE / "results" / "quick" if args.quick else HERE) / "results.json"
        text = render_markdown(json.loads(summary.read_text(encoding="utf-8")))
        summary.with_suffix(".md").write_text(text + "\n", encoding="utf-8")
        print(f"wrote {summary.with_suffix('.md')}")
        return 0

    from _common import machine_info, set_threads

    from detforge.fileio import atomic_write_json, atomic_write_text

    set_threads()
    out_dir = HERE / "results" / "quick" if args.quick else HERE / "results"
    summary_dir = out_dir if args.quick else HERE
    out_dir.mkdir(parents=True, exist_ok=True)
    import torch

    machine = machine_info()
    started = time.perf_counter()
    merged: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "torch": torch.__version__,
        "quick": args.quick,
        "machine": machine,
        "benchmarks": {},
    }
    previous = summary_dir / "results.json"
    if args.only and previous.exists():  # --only updates those entries and keeps the others' numbers
        kept = json.loads(previous.read_text(encoding="utf-8")).get("benchmarks", {})
        merged["benchmarks"] = {n: kept[n] for n in BENCHMARKS if n in kept and n not in args.only}
    for name in args.only or BENCHMARKS:
        merged["benchmarks"][name] = _run_one(name, out_dir, args.quick)
        merged["benchmarks"] = {n: merged["benchmarks"][n] for n in BENCHMARKS if n in merged["benchmarks"]}
        merged["wall_s"] = round(time.perf_counter() - started, 1)
        atomic_write_json(summary_dir / "results.json", merged)  # after each one: a kill keeps what ran
        atomic_write_text(summary_dir / "results.md", render_markdown(merged) + "\n")
    print(f"wrote {summary_dir / 'results.json'} and {summary_dir / 'results.md'} in {merged['wall_s'] / 60:.1f} min")
    failed = [n for n, r in merged["benchmarks"].items() if "error" in r]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
