"""Who may do what on the proxy's HTTP API: bearer tokens with roles, and an audit trail of control actions.

Tokens live in a file named by --auth-tokens-file, one per line: `<name> <role> sha256:<hex of the token>`
(only the hash is stored, so the file is not a secret). Roles: `viewer` reads, `operator` reads and runs
control actions (diagnostics, forced config capture). --auth picks what is protected:
- `sensitive` (default): control actions need an operator token, and reads of what can carry the node's
  secrets (incident bundles and crash reports, profiles, configuration, the MCP endpoint) need a viewer token;
  cluster status, /metrics, /metrics-windows and /health stay open for dashboards and Prometheus;
- `control`: only control actions need a token, every read is open (the documented switch back);
- `all`: every read needs a viewer token too (/health stays open);
- `off` (lab use: nothing is checked; logged at start and shown in /health, never silent).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import stat
import threading
from dataclasses import dataclass

log = logging.getLogger(__name__)

ROLES = ("viewer", "operator")
MODES = ("sensitive", "control", "all", "off")
DEFAULT_MODE = "sensitive"
_RANK = {"viewer": 1, "operator": 2}
_LINE = re.compile(r"^(?P<name>[A-Za-z0-9_.@-]+)\s+(?P<role>\S+)\s+sha256:(?P<hash>[0-9a-fA-F]{64})$")
TOKEN_LINE = _LINE  # one line of the tokens file (also written by `fodc token`)


class TokenFileError(Exception):
    pass


class Unauthorized(Exception):
    """No or unknown token: 401."""


class Forbidden(Exception):
    """A known token whose role does not allow this: 403."""


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: str


ANONYMOUS = Principal("anonymous", "")
AUTH_OFF = Principal("auth-off", "operator")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


MAX_TOKENS_FILE_BYTES = 1 << 20


def _check_tokens_file_mode(path: str, st: os.stat_result) -> None:
    """Refuse, like ssh does, a tokens file that others may write: whoever can write it can add an operator."""
    if st.st_mode & 0o022:
        raise TokenFileError(f"{path}: writable by group or others (mode {stat.S_IMODE(st.st_mode):04o}); anyone "
                             f"who can write it can make themselves an operator: chmod go-w {path}")
    if st.st_uid not in (0, os.geteuid()):
        raise TokenFileError(f"{path}: owned by uid {st.st_uid}, neither root nor this process; "
                             f"chown root {path}")


def load_tokens(path: str) -> dict[str, Principal]:
    """sha256 hex -> principal; any bad line is an error naming the line (the proxy will not start)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            _check_tokens_file_mode(path, os.fstat(file.fileno()))
            text = file.read(MAX_TOKENS_FILE_BYTES + 1)
    except OSError as exc:
        raise TokenFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(text) > MAX_TOKENS_FILE_BYTES:
        raise TokenFileError(f"{path}: larger than {MAX_TOKENS_FILE_BYTES} bytes; is it the right file?")
    tokens: dict[str, Principal] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise TokenFileError(f"{path}:{number}: expected '<name> <role> sha256:<64 hex digits>'")
        if match["role"] not in ROLES:
            raise TokenFileError(f"{path}:{number}: unknown role {match['role']!r} (choose from {', '.join(ROLES)})")
        tokens[match["hash"].lower()] = Principal(match["name"], match["role"])
    return tokens


class Authorizer:
    def __init__(self, mode: str, tokens: dict[str, Principal]) -> None:
        self.mode = mode
        self.tokens = tokens

    def identify(self, authorization: str | None) -> Principal | None:
        """The token's holder, or None for a missing or unknown token."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = hash_token(token.strip())
        return next((p for h, p in self.tokens.items() if hmac.compare_digest(h, digest)), None)

    def check(self, authorization: str | None, needed: str, sensitive: bool = False) -> Principal:
        """The caller behind the Authorization header, if allowed `needed` ("viewer" or "operator");
        `sensitive`: a read of data that may carry the node's secrets (bundles, profiles, configuration)."""
        if self.mode == "off":
            return AUTH_OFF
        if needed == "viewer" and (self.mode == "control" or (self.mode == "sensitive" and not sensitive)):
            return self.identify(authorization) or ANONYMOUS
        if not authorization:
            raise Unauthorized("this endpoint needs 'Authorization: Bearer <token>'")
        principal = self.identify(authorization)
        if principal is None:
            raise Unauthorized("unknown token" if self.tokens else "no tokens are configured on this proxy "
                               "(--auth-tokens-file)")
        if _RANK[principal.role] < _RANK[needed]:
            raise Forbidden(f"token {principal.name!r} has role {principal.role!r}; this needs {needed!r}")
        return principal


AUDIT_KEEP = 4  # rotated audit files kept beside the current one: <path>.1 (newest) .. <path>.4
_MAX_TEXT = 256  # characters of one string in an audit line
_MAX_ITEMS = 32  # items of one list or object in an audit line


def bounded(value: object, depth: int = 0) -> object:
    """`value` cut to a size an audit line can afford: long strings, lists and objects are shortened and say
    by how much; deeper than 4 levels becomes a marker. A client never controls how long a line gets."""
    if isinstance(value, str):
        return value if len(value) <= _MAX_TEXT else f"{value[:_MAX_TEXT]}…(+{len(value) - _MAX_TEXT} chars)"
    if isinstance(value, bool | int | float) or value is None:
        return value
    if depth >= 4:
        return "…(nested too deep)"
    if isinstance(value, dict):
        items = list(value.items())
        out = {bounded(str(k), depth + 1): bounded(v, depth + 1) for k, v in items[:_MAX_ITEMS]}
        if len(items) > _MAX_ITEMS:
            out["…"] = f"+{len(items) - _MAX_ITEMS} more"
        return out
    if isinstance(value, list | tuple | set | frozenset):
        seq = list(value)
        out_list = [bounded(v, depth + 1) for v in seq[:_MAX_ITEMS]]
        if len(seq) > _MAX_ITEMS:
            out_list.append(f"…(+{len(seq) - _MAX_ITEMS} more)")
        return out_list
    return bounded(str(value), depth)


class AuditLog:
    """One JSON line per control request (allowed or refused): who, what, when, target, outcome.

    Lines are bounded (see `bounded`; a request body is never written as it came) and the file is rotated at
    `max_bytes` with AUDIT_KEEP older files kept, so the log takes at most (AUDIT_KEEP + 1) x max_bytes."""

    def __init__(self, path: str, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def record(self, entry: dict[str, object]) -> None:
        line = (json.dumps(bounded(entry), sort_keys=True, ensure_ascii=False) + "\n").encode()
        try:
            with self._lock:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                try:
                    if os.fstat(fd).st_size + len(line) > self.max_bytes:
                        os.close(fd)
                        self._rotate()
                        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                    os.write(fd, line)
                finally:
                    os.close(fd)
        except OSError as exc:  # the action still happened; say loudly that its record did not
            log.error("cannot write the audit log", extra={"fields": {"path": self.path, "reason": str(exc),
                                                                      "entry": bounded(entry)}})

    def _rotate(self) -> None:
        for number in range(AUDIT_KEEP - 1, 0, -1):
            older = f"{self.path}.{number}"
            if os.path.exists(older):
                os.replace(older, f"{self.path}.{number + 1}")
        os.replace(self.path, f"{self.path}.1")
