"""Who may read the agent's HTTP endpoint: basic auth against bcrypt hashes, bearer tokens against sha256 hashes.

Like node_exporter's web config, the files hold hashes only, never a password or token:
- --http-auth-users-file: `user:<bcrypt hash>` per line (what `htpasswd -nbBC 10 user PASSWORD` prints);
- --http-auth-tokens-file: `<name> sha256:<hex of the token>` per line (`printf %s "$TOKEN" | sha256sum`).

Every comparison takes the same time whether the user or token exists: an unknown user is checked against a
dummy bcrypt hash, and a token's digest is compared with every known digest by hmac.compare_digest. A bcrypt
check costs tens of milliseconds on purpose, so a credential that passed is remembered (its sha256, in a
small bounded table) and Prometheus' scrape every 15 s costs a dictionary lookup. No sockets, no clock here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import bcrypt

MAX_FILE_BYTES = 1 << 20
MAX_HEADER_CHARS = 4096  # an Authorization header longer than this is refused unread
_USER_LINE = re.compile(r"^(?P<user>[^:\s]{1,128}):(?P<hash>\$2[aby]\$\d\d\$[./A-Za-z0-9]{53})$")
_TOKEN_LINE = re.compile(r"^(?P<name>[A-Za-z0-9_.@-]{1,128})\s+sha256:(?P<hash>[0-9a-fA-F]{64})$")
# Checked for an unknown user, so that it costs what a known user's wrong password costs.
_DUMMY_HASH = bcrypt.hashpw(b"fodc-agent-no-such-user", bcrypt.gensalt(rounds=10))
REMEMBERED = 256  # credentials that passed, kept so a bcrypt check is paid once per credential


class CredentialFileError(Exception):
    """A credentials file cannot be used; the message names the option, the file and the line."""


def read_credential_file(path: str, option: str) -> list[tuple[int, str]]:
    """The numbered non-empty, non-comment lines of `path`, refused if others may write it (whoever can write it
    can let themselves in) or if it is implausibly big."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            st = os.fstat(file.fileno())
            if st.st_mode & 0o022:
                raise CredentialFileError(f"{option}: {path} is writable by group or others (mode "
                                          f"{stat.S_IMODE(st.st_mode):04o}): chmod go-w {path}")
            text = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise CredentialFileError(f"{option}: cannot read {path}: {exc.strerror or exc}") from None
    if len(text) > MAX_FILE_BYTES:
        raise CredentialFileError(f"{option}: {path} is larger than {MAX_FILE_BYTES} bytes; is it the right file?")
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1)
            if line.strip() and not line.lstrip().startswith("#")]


def load_users(path: str, option: str = "--http-auth-users-file") -> dict[str, bytes]:
    """user -> bcrypt hash."""
    users: dict[str, bytes] = {}
    for number, line in read_credential_file(path, option):
        match = _USER_LINE.match(line)
        if not match:
            raise CredentialFileError(f"{option}: {path}:{number}: expected 'user:<bcrypt hash>' "
                                      "(htpasswd -nbB user PASSWORD)")
        users[match["user"]] = match["hash"].encode()
    return users


def load_tokens(path: str, option: str = "--http-auth-tokens-file") -> dict[str, str]:
    """sha256 hex -> the token's name."""
    tokens: dict[str, str] = {}
    for number, line in read_credential_file(path, option):
        match = _TOKEN_LINE.match(line)
        if not match:
            raise CredentialFileError(f"{option}: {path}:{number}: expected '<name> sha256:<64 hex digits>'")
        tokens[match["hash"].lower()] = match["name"]
    return tokens


@dataclass(frozen=True, slots=True)
class Verdict:
    """Who passed (`who` set), or why not (`reason`: missing, malformed, wrong)."""

    who: str = ""
    reason: str = ""
    remembered: bool = False  # passed on a credential already checked once (no bcrypt cost)


@dataclass
class Credentials:
    users: dict[str, bytes] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    _passed: OrderedDict[bytes, str] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def enabled(self) -> bool:
        return bool(self.users or self.tokens)

    def schemes(self) -> list[str]:
        return (["Basic"] if self.users else []) + (["Bearer"] if self.tokens else [])

    def remembered(self, authorization: str | None) -> Verdict | None:
        """The verdict for a credential that already passed, without checking it again; else None."""
        if not authorization or len(authorization) > MAX_HEADER_CHARS:
            return None
        with self._lock:
            who = self._passed.get(self._key(authorization))
        return Verdict(who=who, remembered=True) if who is not None else None

    def check(self, authorization: str | None) -> Verdict:
        if not authorization:
            return Verdict(reason="missing")
        if len(authorization) > MAX_HEADER_CHARS:
            return Verdict(reason="malformed")
        known = self.remembered(authorization)
        if known is not None:
            return known
        scheme, _, value = authorization.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic" and self.users:
            verdict = self._check_basic(value.strip())
        elif scheme == "bearer" and self.tokens:
            verdict = self._check_bearer(value.strip())
        else:
            return Verdict(reason="malformed")
        if verdict.who:
            self._remember(authorization, verdict.who)
        return verdict

    def _check_basic(self, value: str) -> Verdict:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return Verdict(reason="malformed")
        user, colon, password = decoded.partition(":")
        if not colon:
            return Verdict(reason="malformed")
        hashed = self.users.get(user)
        # The same bcrypt work for an unknown user, so a reply's time does not tell which users exist.
        ok = bcrypt.checkpw(password.encode(), hashed if hashed is not None else _DUMMY_HASH)
        return Verdict(who=user) if ok and hashed is not None else Verdict(reason="wrong")

    def _check_bearer(self, value: str) -> Verdict:
        digest = hashlib.sha256(value.encode()).hexdigest()
        who = ""
        for known, name in self.tokens.items():  # every one compared: the time does not depend on which matched
            if hmac.compare_digest(known, digest):
                who = name
        return Verdict(who=who) if who else Verdict(reason="wrong")

    @staticmethod
    def _key(authorization: str) -> bytes:
        return hashlib.sha256(authorization.encode("utf-8", "surrogateescape")).digest()

    def _remember(self, authorization: str, who: str) -> None:
        with self._lock:
            self._passed[self._key(authorization)] = who
            while len(self._passed) > REMEMBERED:
                self._passed.popitem(last=False)


def _signature(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class CredentialFiles:
    """The credentials in force, re-read when a file changes (a stat per request): a password or token
    added, changed or revoked takes effect without a restart. A file that no longer loads keeps the
    credentials already in force; the caller logs the error `current()` returns with them."""

    def __init__(self, users_file: str | None, tokens_file: str | None) -> None:
        self.users_file = users_file
        self.tokens_file = tokens_file
        self._lock = threading.Lock()
        self._stamp = self._signatures()
        self._credentials = self._load()  # at start a bad file is an error for the caller (the agent stops)

    def _signatures(self) -> tuple[object, ...]:
        return tuple(_signature(p) if p else None for p in (self.users_file, self.tokens_file))

    def _load(self) -> Credentials:
        return Credentials(users=load_users(self.users_file) if self.users_file else {},
                           tokens=load_tokens(self.tokens_file) if self.tokens_file else {})

    def current(self) -> tuple[Credentials, str | None]:
        """(the credentials to check against, an error to log if a changed file could not be loaded)."""
        with self._lock:
            stamp = self._signatures()
            if stamp == self._stamp:
                return self._credentials, None
            self._stamp = stamp
            try:
                self._credentials = self._load()
            except CredentialFileError as exc:
                return self._credentials, f"{exc}; keeping the credentials loaded before"
            return self._credentials, None
