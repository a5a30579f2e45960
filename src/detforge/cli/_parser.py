"""The argument parser of `detforge`: one-line usage errors with the closest flag, command or choice.

argparse prints the whole usage block and, for a mistyped flag, only "unrecognized arguments" from the top
parser. `CliParser` prints one line instead, naming the subcommand, what was wrong, the nearest valid
spelling when there is one, and where the help is.
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Sequence
from typing import NoReturn

__all__ = ["CliParser", "add_verbose_everywhere", "closest", "leaf_parser"]

_INVALID_CHOICE = re.compile(r"invalid choice: '(?P<given>[^']*)' \(choose from (?P<choices>.*)\)")


def closest(given: str, candidates: Sequence[str]) -> str | None:
    """The candidate nearest to `given` (difflib ratio >= 0.6), or None."""
    matches = difflib.get_close_matches(given, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:  # type: ignore[type-arg]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def leaf_parser(parser: argparse.ArgumentParser, namespace: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)parser that parsed the last subcommand in `namespace` (e.g. the one of `data check`)."""
    while (action := _subparsers(parser)) is not None:
        chosen = getattr(namespace, action.dest, None)
        if chosen is None or chosen not in action.choices:
            break
        parser = action.choices[chosen]
    return parser


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    return [s for action in parser._actions for s in action.option_strings if action.help is not argparse.SUPPRESS]


def _unknown_message(parser: argparse.ArgumentParser, extras: Sequence[str]) -> str:
    """One sentence about the first unexpected argument, with the nearest flag of `parser`."""
    first = extras[0]
    if not first.startswith("-") or first == "-":
        return f"unexpected argument {first!r}" + (f" (and {len(extras) - 1} more)" if len(extras) > 1 else "")
    flag = first.split("=", 1)[0]
    message = f"unknown flag {flag}"
    suggestion = closest(flag, [f for f in _flags(parser) if f.startswith("--") or not flag.startswith("--")])
    if suggestion is not None:
        message += f"; did you mean {suggestion}?"
    others = [e for e in extras[1:] if e.startswith("-")]
    if others:
        message += f" (also unknown: {' '.join(others)})"
    return message


class CliParser(argparse.ArgumentParser):
    """argparse.ArgumentParser whose errors are one line on stderr (exit status 2).

    Subparsers made by `add_subparsers` are of this class too (argparse uses the parent's class).
    """

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            parser = leaf_parser(self, parsed)
            parser.error(_unknown_message(parser, extras))
        return parsed

    def error(self, message: str) -> NoReturn:
        match = _INVALID_CHOICE.search(message)
        if match is not None:
            choices = re.findall(r"'([^']*)'", match.group("choices"))
            suggestion = closest(match.group("given"), choices)
            if suggestion is not None:
                message += f"; did you mean {suggestion!r}?"
        line = " ".join(f"{self.prog}: error: {message} (see {self.prog} --help)".split())
        self.exit(2, line + "\n")


def add_verbose_everywhere(parser: argparse.ArgumentParser) -> None:
    """Accept `-v/--verbose` after every subcommand too (`detforge data check -v`), not only before it.

    The subcommands' flag leaves the value alone unless given (default SUPPRESS), so `detforge -v data
    check` keeps working.
    """
    action = _subparsers(parser)
    if action is None:
        return
    for sub in dict.fromkeys(action.choices.values()):
        if "-v" not in sub._option_string_actions and "--verbose" not in sub._option_string_actions:
            sub.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="print debug logs")
        add_verbose_everywhere(sub)
