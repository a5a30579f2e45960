"""Progress bars on stderr, with one on/off rule for every command.

A bar is drawn only when the caller asked for one (`progress=True`, the CLI's default; `--no-progress`
turns it off), no enclosing `progress_scope(False)` turned bars off, and stderr is a terminal (so
pipes, files, CI logs and tests get no bar). Bars never write to stdout, so `--json` output stays clean.

Stage code marks its per-item loops with `track(...)`, or calls `tick()` once per item inside a
`counting(...)` block that the api verb opened (for work done deep in helpers, e.g. copying images).
The api verbs set the on/off switch for everything below them with `progress_scope(progress)`.
A leaf module: imports nothing from detforge; tqdm is imported only when a bar is drawn.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

__all__ = ["LARGE_SET", "counting", "progress_enabled", "progress_scope", "scoped_by_progress", "tick", "track"]

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

# data verbs draw bars only from this many images on: smaller sets finish before a bar helps
LARGE_SET = 200

_ON: ContextVar[bool] = ContextVar("detforge_progress_on", default=True)
_CURRENT: ContextVar[tuple[Any, str] | None] = ContextVar("detforge_progress_bar", default=None)


def _stderr_is_terminal() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty is not None and isatty())
    except ValueError:  # stderr closed
        return False


def progress_enabled(progress: bool = True) -> bool:
    """True when a bar may be drawn: `progress` asked for, not switched off by `progress_scope`, and stderr
    is a terminal."""
    return progress and _ON.get() and _stderr_is_terminal()


@contextmanager
def progress_scope(progress: bool) -> Iterator[None]:
    """Within the block, bars are drawn only if `progress` (and any enclosing scope allows them)."""
    token = _ON.set(_ON.get() and progress)
    try:
        yield
    finally:
        _ON.reset(token)


def scoped_by_progress(verb: Callable[P, R]) -> Callable[P, R]:
    """Run `verb` inside `progress_scope(progress)`, `progress` being its keyword argument (default True):
    an api verb's `progress=False` turns off every bar drawn below it."""

    @functools.wraps(verb)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with progress_scope(bool(kwargs.get("progress", True))):
            return verb(*args, **kwargs)

    return run


def _bar(desc: str, unit: str, total: int | None, delay: float) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False, delay=delay)


@contextmanager
def _drawn(bar: Any) -> Iterator[Any]:
    """Close `bar` at the end, and route log lines around it while it is drawn."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    with bar, logging_redirect_tqdm():
        yield bar


def track(
    items: Iterable[T],
    *,
    desc: str,
    unit: str = "image",
    total: int | None = None,
    min_total: int = 0,
    progress: bool = True,
) -> Iterator[T]:
    """Yield `items` unchanged, advancing a bar per item when `progress_enabled(progress)` and the number
    of items (`total`, else `len(items)` when it has one) is at least `min_total`."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if not progress_enabled(progress) or (total is not None and total < min_total):
        yield from items
        return
    with _drawn(_bar(desc, unit, total, 0.0)) as bar:
        for item in items:
            yield item
            bar.update(1)


@contextmanager
def counting(
    desc: str,
    *,
    counts: str = "item",
    unit: str = "image",
    total: int | None = None,
    min_total: int = 0,
    delay: float = 0.0,
) -> Iterator[None]:
    """A bar that `tick(counts)` advances while the block runs (drawn under the same rule as `track`, and
    after `delay` seconds only, so that quick work shows nothing). Ticks of another kind, or from an
    enclosing block, do not move it."""
    if not progress_enabled() or (total is not None and total < min_total):
        token = _CURRENT.set(None)
        try:
            yield
        finally:
            _CURRENT.reset(token)
        return
    with _drawn(_bar(desc, unit, total, delay)) as bar:
        token = _CURRENT.set((bar, counts))
        try:
            yield
        finally:
            _CURRENT.reset(token)


def tick(what: str = "item", n: int = 1) -> None:
    """Advance the bar of the innermost `counting` block by `n` if it counts `what`; else nothing."""
    current = _CURRENT.get()
    if current is not None and current[1] == what:
        current[0].update(n)
