"""The agent's --remote-write-* options: declared here as one group, checked into RemoteWriteSettings.

Kept apart from the rest of the agent's options so the sender's limits sit next to their checks; the agent's
settings module adds the group and stores the result (None when no --remote-write-url is given: off).
"""

from __future__ import annotations

import argparse
import ssl
from dataclasses import dataclass

from fodc import config
from fodc.remotewrite.client import Auth, check_url
from fodc.remotewrite.sender import SenderOptions
from fodc.tls import TlsFileError, read_pem

DEFAULT_STATE_FILE = "/var/lib/fodc/agent/remote-write.json"
MAX_SHARDS = 64
MAX_SAMPLES_PER_SEND = 50_000
MAX_SECRET_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class RemoteWriteSettings:
    urls: tuple[str, ...]
    sender: SenderOptions
    auth: Auth | None
    tls_ca: str | None
    tls_cert: str | None
    tls_key: str | None
    state_file: str | None  # None: memory only

    def tls_context(self) -> ssl.SSLContext | None:
        """The client TLS context for https receivers (None: the system's CAs, no client certificate)."""
        if not (self.tls_ca or self.tls_cert):
            return None
        context = ssl.create_default_context(cafile=self.tls_ca)
        if self.tls_cert:
            context.load_cert_chain(self.tls_cert, self.tls_key)
        return context


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("remote-write (push the window to a Prometheus-compatible TSDB; off unless a "
                                      "URL is given; file_sd scraping of the proxy needs none of this)")
    group.add_argument("--remote-write-url", action="append", dest="remote_write_urls", default=None,
                       help="a Prometheus remote-write 1.0 endpoint, e.g. http://vm:8428/api/v1/write; repeat for "
                       "several (each gets every sample and its own cursor)")
    group.add_argument("--remote-write-interval", type=config.duration, default=0.0,
                       help="send one scrape per source in each slot this long (0: every scrape); an incident's "
                       "window is always sent at full resolution")
    group.add_argument("--remote-write-timeout", type=config.positive_duration, default=30.0,
                       help="deadline of one send, whole (connect, request and answer)")
    group.add_argument("--remote-write-shards", type=config.positive_int, default=2,
                       help=f"concurrent senders per receiver (1..{MAX_SHARDS}); a series always uses the same one")
    group.add_argument("--remote-write-max-samples-per-send", type=config.positive_int, default=2000,
                       help=f"samples in one request at most (1..{MAX_SAMPLES_PER_SEND})")
    group.add_argument("--remote-write-max-backoff", type=config.positive_duration, default=30.0,
                       help="longest pause between retries of a failed send (exponential backoff with jitter)")
    group.add_argument("--remote-write-state-file", default=DEFAULT_STATE_FILE,
                       help="where each receiver's position in the window is kept, so sending resumes there after "
                       "a restart ('' or off: memory only)")
    group.add_argument("--remote-write-bearer-token-file", default=None,
                       help="file holding a bearer token sent as 'Authorization: Bearer ...'")
    group.add_argument("--remote-write-basic-auth-user", default=None,
                       help="user name for basic auth (with --remote-write-basic-auth-password-file)")
    group.add_argument("--remote-write-basic-auth-password-file", default=None,
                       help="file holding the basic-auth password")
    group.add_argument("--remote-write-tls-ca", default=None,
                       help="CA certificate (PEM) that signed the receiver's certificate (default: the system's)")
    group.add_argument("--remote-write-tls-cert", default=None,
                       help="this agent's client certificate (PEM), for receivers that ask for one")
    group.add_argument("--remote-write-tls-key", default=None, help="the private key (PEM) of --remote-write-tls-cert")


def _secret(parser: config.OneLineErrorParser, option: str, path: str) -> str:
    """The first line of a secret file: files, not flags, so secrets stay out of ps and the journal."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        parser.error(f"argument {option}: cannot read {path}: {exc.strerror or exc}")
    if len(data) > MAX_SECRET_BYTES:
        parser.error(f"argument {option}: {path} is larger than {MAX_SECRET_BYTES} bytes")
    text = data.decode("utf-8", errors="replace").splitlines()[0].strip() if data.strip() else ""
    if not text or not text.isprintable():
        parser.error(f"argument {option}: {path} holds no usable secret (empty, or not printable text)")
    return text


def from_namespace(parser: config.OneLineErrorParser, ns: argparse.Namespace, *,
                   scrape_interval_s: float) -> RemoteWriteSettings | None:
    """The checked settings, or None when no URL is given; a bad value ends the parse with one line."""
    urls = tuple(u.strip() for u in ns.remote_write_urls or () if u.strip())
    if not urls:
        return None
    for url in urls:
        try:
            check_url(url)
        except ValueError as exc:
            parser.error(f"argument --remote-write-url: {exc}")
    if len(set(urls)) != len(urls):
        parser.error("argument --remote-write-url: the same URL is given twice")
    if ns.remote_write_shards > MAX_SHARDS:
        parser.error(f"argument --remote-write-shards: {ns.remote_write_shards} is more than {MAX_SHARDS}")
    if ns.remote_write_max_samples_per_send > MAX_SAMPLES_PER_SEND:
        parser.error(f"argument --remote-write-max-samples-per-send: {ns.remote_write_max_samples_per_send} is "
                     f"more than {MAX_SAMPLES_PER_SEND}")
    if ns.remote_write_interval and ns.remote_write_interval < 0.001:
        parser.error("argument --remote-write-interval: shorter than a millisecond")
    auth = None
    if ns.remote_write_bearer_token_file and ns.remote_write_basic_auth_user:
        parser.error("argument --remote-write-bearer-token-file: bearer token and basic auth exclude each other")
    if ns.remote_write_bearer_token_file:
        auth = Auth(bearer_token=_secret(parser, "--remote-write-bearer-token-file",
                                         ns.remote_write_bearer_token_file))
    elif ns.remote_write_basic_auth_user:
        password = (_secret(parser, "--remote-write-basic-auth-password-file",
                            ns.remote_write_basic_auth_password_file)
                    if ns.remote_write_basic_auth_password_file else None)
        auth = Auth(basic_user=ns.remote_write_basic_auth_user, basic_password=password)
    elif ns.remote_write_basic_auth_password_file:
        parser.error("argument --remote-write-basic-auth-password-file: needs --remote-write-basic-auth-user")
    if bool(ns.remote_write_tls_cert) != bool(ns.remote_write_tls_key):
        parser.error("argument --remote-write-tls-cert: --remote-write-tls-cert and --remote-write-tls-key go "
                     "together")
    try:
        for path, option in ((ns.remote_write_tls_ca, "--remote-write-tls-ca"),
                             (ns.remote_write_tls_cert, "--remote-write-tls-cert"),
                             (ns.remote_write_tls_key, "--remote-write-tls-key")):
            if path:
                read_pem(path, option)
    except TlsFileError as exc:
        parser.error(f"argument {exc}")
    state_file = ns.remote_write_state_file.strip()
    if state_file.lower() in ("", "off"):
        state_file = None
    elif not state_file.startswith("/"):
        parser.error(f"argument --remote-write-state-file: {state_file!r} must be an absolute path, or '' or off")
    interval_ms = int(round(ns.remote_write_interval * 1000))
    sender = SenderOptions(
        interval_ms=interval_ms, timeout_s=ns.remote_write_timeout, shards=ns.remote_write_shards,
        max_samples=ns.remote_write_max_samples_per_send,
        round_samples=max(20 * ns.remote_write_max_samples_per_send, 20_000),
        max_backoff_s=ns.remote_write_max_backoff, poll_s=min(1.0, max(0.1, scrape_interval_s / 2)),
        lateness_ms=int((2 * scrape_interval_s + 5) * 1000))
    return RemoteWriteSettings(urls, sender, auth, ns.remote_write_tls_ca or None, ns.remote_write_tls_cert or None,
                               ns.remote_write_tls_key or None, state_file)
