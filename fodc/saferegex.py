"""Regular expressions that come from outside (an HTTP query, a gRPC request), compiled by RE2.

Python's `re` backtracks: `(\\w+)+X` against a 40-character metric name takes longer than the universe, and it
holds the GIL meanwhile, so one query froze a whole agent (heartbeats, /health, SIGTERM). RE2 matches in time
linear in the text and refuses constructs that need backtracking (backreferences, look-around), so every
pattern a client may send goes through here, on the proxy (to give a clear 400) and on the agent (which
must never trust the proxy to have checked). Never compile a client's pattern with `re`.
"""

from __future__ import annotations

from typing import Protocol

import re2

# Longer patterns are a mistake or an attack; a family-name selector is a few dozen characters.
MAX_PATTERN_CHARS = 1024
# RE2's own cap on the compiled program (its default is 8 MiB); `a{1000}{1000}`-style blow-ups are refused.
MAX_PROGRAM_BYTES = 1 << 20


class PatternError(ValueError):
    """A pattern that cannot be used; the message is one line naming the reason."""


class FullMatcher(Protocol):
    def fullmatch(self, text: str) -> object | None: ...


def _options() -> re2.Options:
    options = re2.Options()
    options.max_mem = MAX_PROGRAM_BYTES
    options.log_errors = False  # a client's typo is answered with a 400, not written to the daemon's stderr
    return options


_OPTIONS = _options()


def compile_pattern(pattern: str) -> FullMatcher:
    """The pattern compiled by RE2 (its syntax: https://github.com/google/re2/wiki/Syntax), or PatternError."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PatternError(f"pattern of {len(pattern)} characters (at most {MAX_PATTERN_CHARS})")
    if "\x00" in pattern:
        raise PatternError("pattern contains a NUL character")
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise PatternError(" ".join(str(reason).split()) or "invalid pattern") from None
