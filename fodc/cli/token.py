"""`fodc token add|list|revoke`: the proxy's API tokens file without hand-editing (run on the proxy host).

The file holds `<name> <role> sha256:<hex>` lines (fodc.proxy.auth); the secret itself is printed once by
`add` and stored nowhere. The proxy notices the change within seconds (or at once on SIGHUP) and logs it.
Changes are written to a temporary file in the same directory and renamed over the old one, keeping its mode
and owner, so the proxy never reads half a file.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

from fodc.cli.client import EXIT_OK, EXIT_USAGE, CliError
from fodc.cli.output import print_json, table
from fodc.durablefile import atomic_file
from fodc.proxy.auth import ROLES, TOKEN_LINE, TokenFileError, hash_token, load_tokens

DEFAULT_FILE = "/etc/fodc/tokens"


def add_parser(sub: argparse._SubParsersAction) -> None:
    token = sub.add_parser("token", help="add, list or revoke the proxy's API tokens (edits the tokens file)",
                           description="Manage the proxy's tokens file (--auth-tokens-file). The running proxy "
                           "re-reads it within seconds of a change, or at once on SIGHUP.")
    token.add_argument("what", choices=["add", "list", "revoke"], help="add NAME --role R: make a token and print "
                       "it once; list: names and roles; revoke NAME: remove it")
    token.add_argument("name", nargs="?", metavar="NAME", help="who or what holds the token (letters, digits, "
                       "_.@-)")
    token.add_argument("--role", choices=ROLES, help="viewer: reads; operator: reads and control actions")
    token.add_argument("--file", default=os.environ.get("FODC_TOKENS_FILE", DEFAULT_FILE),
                       help=f"the tokens file (env FODC_TOKENS_FILE; default {DEFAULT_FILE})")
    token.set_defaults(func=run)


def run(args: argparse.Namespace, _client: object = None) -> int:
    path = Path(args.file)
    if args.what == "list":
        entries = _entries(path)
        if args.json:
            print_json({"tokens": [{"name": n, "role": r, "sha256_prefix": h[:12]} for n, r, h in entries]})
        else:
            print(table([[n, r, h[:12]] for n, r, h in entries], ["name", "role", "sha256"]))
        return EXIT_OK
    if not args.name:
        raise CliError(f"token {args.what} needs a NAME", EXIT_USAGE)
    if args.what == "add":
        return _add(path, args.name, args.role)
    return _revoke(path, args.name)


def _entries(path: Path) -> list[tuple[str, str, str]]:
    if not path.exists():
        return []
    try:
        load_tokens(str(path))  # the whole file must be valid before anything is added to it
        lines = path.read_text().splitlines()
    except (TokenFileError, OSError) as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    found = [TOKEN_LINE.match(line.strip()) for line in lines]
    return [(m["name"], m["role"], m["hash"].lower()) for m in found if m]


def _add(path: Path, name: str, role: str | None) -> int:
    if role is None:
        raise CliError("token add needs --role viewer|operator", EXIT_USAGE)
    if TOKEN_LINE.match(f"{name} {role} sha256:{'0' * 64}") is None:
        raise CliError(f"invalid token name {name!r}: letters, digits and _.@- only", EXIT_USAGE)
    if any(n == name for n, _, _ in _entries(path)):
        raise CliError(f"a token named {name!r} exists in {path}; revoke it first", EXIT_USAGE)
    secret = secrets.token_urlsafe(32)
    old = path.read_text() if path.exists() else ""
    separator = "" if not old or old.endswith("\n") else "\n"
    _replace(path, f"{old}{separator}{name} {role} sha256:{hash_token(secret)}\n")
    print(secret)
    print(f"fodc: token {name!r} ({role}) added to {path}; the secret above is shown only this once",
          file=sys.stderr)
    return EXIT_OK


def _revoke(path: Path, name: str) -> int:
    names = [n for n, _, _ in _entries(path)]
    if name not in names:
        raise CliError(f"no token named {name!r} in {path} (names: {', '.join(names) or 'none'})", EXIT_USAGE)
    kept = [line for line in path.read_text().splitlines(keepends=True)
            if not ((m := TOKEN_LINE.match(line.strip())) and m["name"] == name)]
    _replace(path, "".join(kept))
    print(f"fodc: token {name!r} revoked in {path}", file=sys.stderr)
    return EXIT_OK


def _replace(path: Path, text: str) -> None:
    """Writes `text` to a temporary file beside `path` and renames it over `path` (mode and owner kept; a new
    file is 0640: it holds hashes only, but nobody else should be able to change it)."""
    try:
        st = path.stat() if path.exists() else None
        with atomic_file(path, st.st_mode & 0o7777 if st else 0o640) as sink:
            sink.write(text.encode())
            if st is not None and os.geteuid() == 0:
                os.fchown(sink.fileno(), st.st_uid, st.st_gid)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}", EXIT_USAGE) from None
