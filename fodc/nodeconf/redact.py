"""Keeps secrets out of snapshots: names that look secret, and values that look like credentials whatever
their name, have their values replaced, everywhere.

The same tests apply to environment variables, flags and `key: value` lines of config files, because a
password passed as `--etcd-password=...` is as secret as one in `ETCD_PASSWORD`, and a JWT in `--header` is a
JWT. Well-known variables whose names merely look secret (`PWD`, the working directory) are not.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence

REDACTED = "<redacted>"

# Substrings that make a name secret wherever they appear, and words that do so only as a whole part
# (KEY in API_KEY or tls-key, but not in MONKEY or KEYSPACE).
DEFAULT_SECRET_SUBSTRINGS = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "CREDENTIAL", "PRIVATE", "APIKEY")
DEFAULT_SECRET_WORDS = ("KEY", "PASS", "PWD", "AUTH", "COOKIE", "SESSION", "DSN", "SIGNATURE")
# A name ending in one of these holds a path (`--tls-key-file`): the path is shown, the file is not read.
PATH_WORDS = frozenset({"FILE", "PATH", "DIR", "FILENAME", "FILES", "PATHS"})

# Names that contain a secret-looking word but hold nothing secret.
NOT_SECRET = frozenset({"PWD", "OLDPWD", "HOME", "PATH", "SHELL", "USER", "LOGNAME", "TERM", "LANG",
                        "HOSTNAME", "XAUTHORITY", "KRB5CCNAME"})
# Values that are credentials by their shape (checked in full, or as the whole of a line's value).
SECRET_VALUE_SHAPES = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*", re.DOTALL),  # PEM private keys
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # JWTs
    re.compile(r"(?:AKIA|ASIA)[0-9A-Z]{16}"),  # AWS access key ids
    re.compile(r"gh[pousr]_[A-Za-z0-9]{30,}"),  # GitHub tokens
    re.compile(r"xox[abposr]-[A-Za-z0-9-]{10,}"),  # Slack tokens
    re.compile(r"(?i:bearer|basic)\s+[A-Za-z0-9._~+/=-]{16,}"),  # Authorization header values
)
# user:password@ inside a URL: the password alone is replaced.
URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:)(?P<password>[^/\s@]+)(?P<tail>@)")
MAX_SHAPE_CHECK = 4096  # longer values are checked on their first characters only

_PARTS = re.compile(r"[^A-Z0-9]+")


def secret_value(value: str) -> bool:
    """True when the value is a credential by its shape alone (see SECRET_VALUE_SHAPES)."""
    head = value[:MAX_SHAPE_CHECK].strip()
    return any(shape.fullmatch(head) for shape in SECRET_VALUE_SHAPES)


def redact_value(value: str) -> str:
    """The value, or REDACTED when its shape is a credential; a URL keeps all but its password."""
    if secret_value(value):
        return REDACTED
    return URL_PASSWORD.sub(lambda m: f"{m['head']}{REDACTED}{m['tail']}", value[:MAX_SHAPE_CHECK]) + \
        value[MAX_SHAPE_CHECK:]


class SecretNames:
    """Decides whether a name (env var, flag, config key) holds a secret."""

    def __init__(self, substrings: Iterable[str] = DEFAULT_SECRET_SUBSTRINGS,
                 words: Iterable[str] = DEFAULT_SECRET_WORDS, extra_patterns: Iterable[str] = ()) -> None:
        self.substrings = tuple(s.upper() for s in substrings)
        self.words = frozenset(w.upper() for w in words)
        self.extra_patterns = tuple(p.upper() for p in extra_patterns)

    def __call__(self, name: str) -> bool:
        """True when the value itself is secret (a path to a secret file is not)."""
        if name.upper() in NOT_SECRET:
            return False
        parts = [p for p in _PARTS.split(name.upper()) if p]
        if parts and parts[-1] in PATH_WORDS:
            return False
        return self._matches(name)

    def guards_file(self, name: str) -> bool:
        """True for names like `--tls-key-file`: the file they point to must not be read."""
        parts = [p for p in _PARTS.split(name.upper()) if p]
        return bool(parts) and parts[-1] in PATH_WORDS and self._matches("_".join(parts[:-1]))

    def _matches(self, name: str) -> bool:
        upper = name.upper()
        if any(s in upper for s in self.substrings):
            return True
        if self.words.intersection(p for p in _PARTS.split(upper) if p):
            return True
        return any(fnmatch.fnmatchcase(upper, p) for p in self.extra_patterns)


def filter_environment(environ: Mapping[str, str], *, allow: Sequence[str] = ("*",), deny: Sequence[str] = (),
                       is_secret: SecretNames | None = None) -> tuple[dict[str, str], int]:
    """The variables allowed and not denied (glob patterns), secret values redacted; and how many were left out."""
    is_secret = is_secret or SecretNames()
    kept: dict[str, str] = {}
    for name in sorted(environ):
        if not any(fnmatch.fnmatchcase(name, p) for p in allow) or any(fnmatch.fnmatchcase(name, p) for p in deny):
            continue
        kept[name] = REDACTED if is_secret(name) else redact_value(environ[name])
    return kept, len(environ) - len(kept)


def redact_argv(argv: Sequence[str], is_secret: SecretNames) -> list[str]:
    """argv with the values of secret-looking flags replaced (both `--x=v` and `--x v` forms)."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if secret_value(arg):  # a PEM block starts with dashes, yet it is no flag
            out.append(REDACTED)
            hide_next = False
            continue
        if hide_next and not arg.startswith("-"):
            out.append(REDACTED)
            hide_next = False
            continue
        hide_next = False
        if arg.startswith("-") and arg != "-":
            name, sep, _ = arg.lstrip("-").partition("=")
            if is_secret(name):
                if sep:
                    out.append(f"{arg.partition('=')[0]}={REDACTED}")
                    continue
                hide_next = True
            elif sep:
                out.append(f"{arg.partition('=')[0]}={redact_value(arg.partition('=')[2])}")
                continue
        out.append(redact_value(arg) if not arg.startswith("-") else arg)
    return out


_ASSIGNMENT = re.compile(r"^(\s*[-\"']?)([A-Za-z0-9_.\-]+)([\"']?\s*[:=]\s*)(\S.*?)\s*$")


def redact_config_text(text: str, is_secret: SecretNames) -> tuple[str, int]:
    """Replaces the values of `key: value` / `key = value` lines whose key looks secret or whose value is a
    credential by its shape, and URL passwords anywhere; returns how many lines were changed."""
    lines = []
    count = 0
    for line in text.splitlines(keepends=True):
        ending = line[len(line.rstrip("\r\n")):]
        match = _ASSIGNMENT.match(line.rstrip("\r\n"))
        if match and (is_secret(match.group(2)) or secret_value(match.group(4).strip("\"'"))):
            line = f"{match.group(1)}{match.group(2)}{match.group(3)}{REDACTED}{ending}"
            count += 1
        elif URL_PASSWORD.search(line):
            line = redact_value(line)
            count += 1
        lines.append(line)
    return "".join(lines), count
