"""Turns a Go-style command line into flags, without knowing the program's flag set.

banyand (cobra/pflag) accepts `--name=value`, `--name value`, bare booleans `--name`, and repeated flags.
Without the flag set, `--name word` is read as a value unless `word` itself looks like a flag; this is the
reading a human makes too, and the raw argv is always kept next to the parsed flags so nothing is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

FlagValue = str | list[str]


@dataclass(frozen=True, slots=True)
class ParsedArgv:
    program: str
    flags: dict[str, FlagValue] = field(default_factory=dict)
    positional: tuple[str, ...] = ()


def _is_flag(arg: str) -> bool:
    # "-" alone is stdin and negative numbers are values, not flags.
    return arg.startswith("-") and arg != "-" and not _is_number(arg)


def _is_number(arg: str) -> bool:
    try:
        float(arg)
    except ValueError:
        return False
    return True


def parse_argv(argv: Sequence[str]) -> ParsedArgv:
    """Flags by name (leading dashes removed); a repeated flag becomes a list of its values in order."""
    if not argv:
        return ParsedArgv(program="")
    flags: dict[str, FlagValue] = {}
    positional: list[str] = []
    args = list(argv[1:])
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positional.extend(args[i:])
            break
        if not _is_flag(arg):
            positional.append(arg)
            continue
        name, sep, value = arg.lstrip("-").partition("=")
        if not sep:
            if i < len(args) and not _is_flag(args[i]) and args[i] != "--":
                value = args[i]
                i += 1
            else:
                value = "true"
        _add(flags, name, value)
    return ParsedArgv(program=argv[0], flags=flags, positional=tuple(positional))


def _add(flags: dict[str, FlagValue], name: str, value: str) -> None:
    current = flags.get(name)
    if current is None:
        flags[name] = value
    elif isinstance(current, list):
        current.append(value)
    else:
        flags[name] = [current, value]
