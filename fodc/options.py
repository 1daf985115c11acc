"""Options declared once: each daemon setting is one `declare(...)` field of a frozen section dataclass.

From those declarations come the configargparse parser (flags, config file, FODC_* environment), the frozen
settings (one section per component, e.g. `settings.scrape`), the validation that --check-config runs, the
list of what a SIGHUP may change, and the generated reference text (fodc/optiondocs.py). docs/options.md says
how to add an option. Nothing here opens sockets, writes files or reads clocks; parsing reads the config
file and environment only through configargparse.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from fodc import config

Parse = Callable[[str], Any]


@dataclass(frozen=True)
class Option:
    """One setting: its name (the flag without dashes), how its text is parsed and checked, its default as
    written in a config file, and the help every reference shows."""

    name: str
    parse: Parse
    default: str | None
    help: str
    example: str | None = None  # shown in the conffile where the default is none or host-specific
    default_doc: str | None = None  # the default in words, when it is worked out at start
    default_factory: Callable[[], Any] | None = None  # computes that default (no I/O beyond the host's name)
    choices: tuple[str, ...] = ()
    required: bool = False
    repeat: bool = False  # may be given several times (config file: [a, b]); the value is a tuple
    reload: bool = False  # SIGHUP applies a new value without a restart
    role_var: str | None = None  # the Ansible role variable that mirrors it
    role_default: Any = None  # that variable's default where it differs from ours (a YAML/JSON value)
    role_type: str | None = None  # that variable's type where it differs (Ansible: str, int, list, dict)
    role_required: bool = False  # the role needs the variable even though the daemon has a default

    @property
    def flag(self) -> str:
        return f"--{self.name}"

    @property
    def attr(self) -> str:
        """The flat name: settings.scrape_interval for scrape-interval."""
        return self.name.replace("-", "_")

    def value(self, text: str | list[str] | None, *, work_out: bool = True) -> Any:
        """The value of `text` as given (None: not given); raises OptionError with the one-line reason.
        work_out=False leaves a default that is worked out at start (default_factory) as None."""
        if self.repeat:
            items = text if isinstance(text, list) else ([text] if text is not None else None)
            if items is None:
                items = [] if self.default is None else [self.default]
            return tuple(self._one(item) for item in items)
        if isinstance(text, list):  # a list in the config file for a single-valued option
            raise OptionError(self, f"takes one value, got a list {text!r}")
        if text is None:
            if self.default is None:
                return self.default_factory() if self.default_factory and work_out else None
            text = self.default
        return self._one(text)

    def _one(self, text: str) -> Any:
        if self.choices and text.strip() not in self.choices:
            raise OptionError(self, f"invalid choice: {text!r} (choose from {', '.join(self.choices)})")
        try:
            return self.parse(text)
        except (argparse.ArgumentTypeError, ValueError) as exc:
            raise OptionError(self, str(exc)) from None


class OptionError(ValueError):
    """A value refused: str() is the one line an operator sees, naming the option."""

    def __init__(self, option: Option | str, reason: str) -> None:
        flag = option.flag if isinstance(option, Option) else option
        super().__init__(f"argument {flag}: {reason}")


def declare(name: str, parse: Parse, default: str | None, help: str, **more: Any) -> Any:  # noqa: A002
    """A section field that is an option (see Option for `more`)."""
    return field(metadata={"option": Option(name, parse, default, help, **more)})


def text(value: str) -> str:
    return value


def optional_text(value: str) -> str | None:
    """Text where empty means unset."""
    return value.strip() or None


def optional_absolute_path(value: str) -> str | None:
    """A path where empty means unset; a relative one is refused, it would hide a typo."""
    value = value.strip()
    if not value:
        return None
    if not value.startswith("/"):
        raise argparse.ArgumentTypeError(f"{value!r} must be an absolute path")
    return value


def absolute_path_or_off(value: str) -> str | None:
    """A path where '' or off turns the feature off (None); a relative one is refused."""
    value = value.strip()
    if value.lower() in ("", "off"):
        return None
    if not value.startswith("/"):
        raise argparse.ArgumentTypeError(f"{value!r} must be an absolute path, or '' or off")
    return value


def http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"{value!r} is not an http(s) URL")
    return value


def optional_http_url(value: str) -> str | None:
    """An http(s) URL where empty turns the feature off."""
    return http_url(value) if value else None


S = TypeVar("S", bound="Section")


class Section:
    """A frozen group of options for one component; subclasses are frozen dataclasses of `declare` fields.

    `problems()` yields one line per rule that ties options together (e.g. a timeout within an interval)."""

    __slots__ = ()
    title: ClassVar[str] = ""

    @classmethod
    def options(cls) -> list[tuple[str, Option]]:
        return [(f.name, f.metadata["option"]) for f in dataclasses.fields(cls)  # type: ignore[arg-type]
                if "option" in f.metadata]

    @classmethod
    def build(cls: type[S], raw: Mapping[str, Any], errors: list[str], work_out: bool = True) -> S | None:
        values: dict[str, Any] = {}
        for attr, option in cls.options():
            try:
                values[attr] = option.value(raw.get(option.attr), work_out=work_out)
            except OptionError as exc:
                errors.append(str(exc))
        if len(values) < len(cls.options()):
            return None
        section = cls(**values)
        errors.extend(section.problems())
        return section

    def problems(self) -> Iterator[str]:
        return iter(())


class Settings:
    """A daemon's frozen settings: one Section per component, read flat too (settings.scrape_interval is
    settings.scrape.interval) so a consumer can take a whole section or a single value."""

    __slots__ = ()
    program: ClassVar[str]
    description: ClassVar[str]
    default_config: ClassVar[str]
    aliases: ClassVar[dict[str, str]] = {}  # flat names from before the declarations -> option attr

    @classmethod
    def sections(cls) -> list[tuple[str, type[Section]]]:
        hints = {f.name: f.type for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return [(name, _section_class(cls, name, hint)) for name, hint in hints.items()]

    @classmethod
    def all_options(cls) -> list[tuple[str, str, Option]]:
        """(section attribute, field, option) for every option, in declaration order."""
        return [(section, attr, option) for section, kind in cls.sections() for attr, option in kind.options()]

    def __getattr__(self, name: str) -> Any:
        name = type(self).aliases.get(name, name)
        where = _flat_names(type(self)).get(name)
        if where is None:
            raise AttributeError(f"{type(self).__name__} has no setting {name!r}")
        return getattr(getattr(self, where[0]), where[1])

    def option_values(self) -> dict[str, Any]:
        """Every option by its flat name, as parsed."""
        return {option.attr: getattr(getattr(self, section), attr) for section, attr, option in self.all_options()}

    def problems(self) -> Iterator[str]:
        """Rules between sections; per-section ones live in Section.problems."""
        return iter(())


_FLAT: dict[type, dict[str, tuple[str, str]]] = {}


def _flat_names(kind: type[Settings]) -> dict[str, tuple[str, str]]:
    names = _FLAT.get(kind)
    if names is None:
        names = _FLAT[kind] = {option.attr: (section, attr) for section, attr, option in kind.all_options()}
    return names


def _section_class(settings: type, name: str, hint: Any) -> type[Section]:
    if isinstance(hint, str):  # postponed annotations: look the class up where the settings are defined
        hint = vars(sys.modules[settings.__module__])[hint]
    return hint


T = TypeVar("T", bound=Settings)


def build_parser(kind: type[Settings], *, raw: bool = False, read_default_config: bool = True
                 ) -> config.OneLineErrorParser:
    """The daemon's full ArgumentParser (for --help and man pages). With raw=True every option stays text,
    so that values are parsed (and every error collected) by the declarations, not by argparse."""
    parser = config.make_parser(kind.program, kind.description, kind.default_config,
                                read_default_config=read_default_config)
    parser.add_argument("--check-config", metavar="FILE", default=argparse.SUPPRESS,
                        help="check FILE (with any other flags and FODC_* variables) without starting: one line "
                        "per problem and exit status 2, or exit status 0 when it is valid")
    for _name, section in kind.sections():
        group = parser.add_argument_group(section.title)
        for _attr, option in section.options():
            kwargs: dict[str, Any] = {"help": _help(option), "dest": option.attr, "default": None}
            if option.repeat:
                kwargs["action"] = "append"
            if not raw:
                kwargs["type"] = option.parse if not option.choices else str
                kwargs["required"] = option.required
                if option.choices:
                    kwargs["choices"] = option.choices
                has_default = option.default is not None and not option.repeat
                kwargs["default"] = option.default if has_default else argparse.SUPPRESS
            elif option.choices:
                kwargs["metavar"] = "{" + ",".join(option.choices) + "}"
            group.add_argument(option.flag, **kwargs)
    return parser


def _help(option: Option) -> str:
    # ArgumentDefaultsHelpFormatter adds "(default: ...)" for a declared default; a repeated option's
    # argparse default is None, so its default (or one worked out at start) is said here.
    if option.default_doc:
        return f"{option.help} (default: {option.default_doc})"
    if option.repeat and option.default is not None:
        return f"{option.help} (default: {option.default})"
    if option.required:
        return f"{option.help} (required)"
    return option.help


def read_settings(kind: type[T], argv: Sequence[str] | None, *, work_out: bool = True,
                  read_default_config: bool = True) -> tuple[T | None, list[str]]:
    """Settings from flags, environment and config file, or None and one line per problem."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        build_parser(kind).parse_args(args)  # prints the help with types and defaults, and exits
    ns, unknown = build_parser(kind, raw=True, read_default_config=read_default_config).parse_known_args(args)
    names = [option.name for _s, _a, option in kind.all_options()]
    unknown_lines = [f"unknown option {line}" for line in
                     unknown_names([u.lstrip("-").split("=", 1)[0] for u in unknown if u.startswith("-")], names)]
    unknown_lines += [f"unexpected argument {u!r}" for u in unknown if not u.startswith("-")][:1]
    settings, errors = settings_from(kind, vars(ns), work_out=work_out)
    errors = unknown_lines + errors
    return (None if errors else settings), errors


def settings_from(kind: type[T], raw: Mapping[str, Any], *, work_out: bool = True) -> tuple[T | None, list[str]]:
    errors: list[str] = []
    for _section, _attr, option in kind.all_options():
        if option.required and raw.get(option.attr) in (None, ""):
            errors.append(f"argument {option.flag}: required, and not set")
    sections = {name: section.build(raw, errors, work_out) for name, section in kind.sections()}
    if errors or any(value is None for value in sections.values()):
        return None, errors
    settings = kind(**sections)
    errors.extend(settings.problems())
    return (None, errors) if errors else (settings, [])


def parse_or_exit(kind: type[T], argv: Sequence[str] | None) -> T:
    """What a daemon does at start: its settings, or each problem on its own line and exit status 2 (which
    the units' RestartPreventExitStatus=2 keeps from a restart loop). --check-config FILE stops here."""
    args = list(sys.argv[1:] if argv is None else argv)
    check = _check_config_file(args)
    if check is not None:
        args = [*_without_check_config(args), "--config", check]
    # A file checked before it is installed stands in for the default config file, not on top of it.
    settings, errors = read_settings(kind, args, work_out=check is None, read_default_config=check is None)
    for line in errors:
        sys.stderr.write(f"{kind.program}: error: {line}\n")
    if errors:
        sys.exit(2)
    if check is not None:
        sys.stdout.write(f"{kind.program}: {check}: valid\n")
        sys.exit(0)
    assert settings is not None
    return settings


def _check_config_file(args: list[str]) -> str | None:
    for i, arg in enumerate(args):
        if arg == "--check-config" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--check-config="):
            return arg.split("=", 1)[1]
    return None


def _without_check_config(args: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--check-config":
            skip = True
        elif not arg.startswith("--check-config="):
            out.append(arg)
    return out


def changes(old: Settings, new: Settings) -> tuple[dict[str, tuple[Any, Any]], dict[str, tuple[Any, Any]]]:
    """What a reload would change: (applied now, needs a restart), each option name -> (old, new)."""
    applied: dict[str, tuple[Any, Any]] = {}
    restart: dict[str, tuple[Any, Any]] = {}
    before, after = old.option_values(), new.option_values()
    for _section, _attr, option in type(old).all_options():
        if before[option.attr] != after[option.attr]:
            (applied if option.reload else restart)[option.name] = (before[option.attr], after[option.attr])
    return applied, restart


def unknown_names(names: Iterable[str], known: Iterable[str]) -> list[str]:
    """Each unknown name with the closest known one, for an error line."""
    known = list(known)
    out = []
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            out.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return out


LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "json", "text")


@dataclass(frozen=True, slots=True)
class LogSettings(Section):
    """Both daemons log alike."""

    title = "Logging (to stderr, which systemd sends to the journal: `journalctl -u <unit>`)"
    level: str = declare(
        "log-level", text, "info", "minimum level of log lines", choices=LOG_LEVELS, reload=True,
        role_var="{role}_log_level")
    format: str = declare(
        "log-format", text, "auto",
        "json: one JSON object per line (for the journal and log shippers); text: human-readable; auto: text "
        "on a terminal, json otherwise", choices=LOG_FORMATS, role_var="{role}_log_format")

