"""The agent's --remote-write-* options: one section of the agent's declarations (fodc/options.py), checked
into RemoteWriteSettings.

Kept apart from the rest of the agent's options so the sender's limits sit next to their checks; the agent's
settings hold the section, and `settings.remote_write` is the result (None when no --remote-write-url is given:
off).
"""

from __future__ import annotations

import argparse
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fodc import config
from fodc.options import Section, absolute_path_or_off, declare, optional_text
from fodc.remotewrite.client import Auth, Client, check_url
from fodc.remotewrite.sender import SenderOptions
from fodc.tls import pem_problems

DEFAULT_STATE_FILE = "/var/lib/fodc/agent/remote-write.json"
MAX_SHARDS = 64
MAX_SAMPLES_PER_SEND = 50_000
MAX_SECRET_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class RemoteWriteSettings:
    """The agent's remote-write: receivers and credentials, the senders' limits, the state file."""

    access: Access
    sender: SenderOptions
    state_file: str | None  # None: memory only

    @property
    def urls(self) -> tuple[str, ...]:
        return self.access.urls


def _url(value: str) -> str:
    value = value.strip()
    check_url(value)  # ValueError with the reason
    return value


def _positive_int_up_to(most: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        number = config.positive_int(value)
        if number > most:
            raise argparse.ArgumentTypeError(f"{number} is more than {most}")
        return number
    return parse


def _interval(value: str) -> float:
    seconds = config.duration(value)
    if seconds and seconds < 0.001:
        raise argparse.ArgumentTypeError("shorter than a millisecond")
    return seconds


class SecretError(ValueError):
    """A secret file that cannot be used; str() names the option."""


def read_secret(option: str, path: str) -> str:
    """The first line of a secret file: files, not flags, so secrets stay out of ps and the journal."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise SecretError(f"argument {option}: cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_SECRET_BYTES:
        raise SecretError(f"argument {option}: {path} is larger than {MAX_SECRET_BYTES} bytes")
    secret = data.decode("utf-8", errors="replace").splitlines()[0].strip() if data.strip() else ""
    if not secret or not secret.isprintable():
        raise SecretError(f"argument {option}: {path} holds no usable secret (empty, or not printable text)")
    return secret


@dataclass(frozen=True, slots=True)
class Access:
    """Where to push and how to get in: what the agent's senders and the proxy's self-metrics push share."""

    urls: tuple[str, ...]
    timeout_s: float
    auth: Auth | None
    tls_ca: str | None
    tls_cert: str | None
    tls_key: str | None

    def tls_context(self) -> ssl.SSLContext | None:
        """The client TLS context for https receivers (None: the system's CAs, no client certificate)."""
        if not (self.tls_ca or self.tls_cert):
            return None
        context = ssl.create_default_context(cafile=self.tls_ca)
        if self.tls_cert:
            context.load_cert_chain(self.tls_cert, self.tls_key)
        return context

    def client(self, url: str, tls: ssl.SSLContext | None) -> Client:
        return Client(url, timeout_s=self.timeout_s, auth=self.auth, tls=tls)


@dataclass(frozen=True, slots=True)
class RemoteWriteAccess(Section):
    """The receivers and the credentials, declared once for both daemons (their role variables are
    fodc_agent_remote_write_* and fodc_proxy_remote_write_*)."""

    urls: tuple[str, ...] = declare(
        "remote-write-url", _url, None, "a Prometheus remote-write 1.0 endpoint; repeat for several",
        repeat=True, example="http://vm:8428/api/v1/write", role_var="{role}_remote_write_urls", role_type="list",
        role_default=[])
    timeout: float = declare(
        "remote-write-timeout", config.positive_duration, "30s",
        "deadline of one send, whole (connect, request and answer)")
    bearer_token_file: str | None = declare(
        "remote-write-bearer-token-file", optional_text, None,
        "file holding a bearer token sent as 'Authorization: Bearer ...'", example="/etc/fodc/remote-write-token",
        role_var="{role}_remote_write_bearer_token_file")
    basic_auth_user: str | None = declare(
        "remote-write-basic-auth-user", optional_text, None,
        "user name for basic auth (with remote-write-basic-auth-password-file)", example="fodc",
        role_var="{role}_remote_write_basic_auth_user")
    basic_auth_password_file: str | None = declare(
        "remote-write-basic-auth-password-file", optional_text, None, "file holding the basic-auth password",
        example="/etc/fodc/remote-write-password", role_var="{role}_remote_write_basic_auth_password_file")
    tls_ca: str | None = declare(
        "remote-write-tls-ca", optional_text, None,
        "CA certificate (PEM) that signed the receiver's certificate (default: the system's)",
        example="/etc/fodc/tls/remote-write-ca.crt", role_var="{role}_remote_write_tls_ca")
    tls_cert: str | None = declare(
        "remote-write-tls-cert", optional_text, None,
        "client certificate (PEM), for receivers that ask for one",
        example="/etc/fodc/tls/remote-write.crt", role_var="{role}_remote_write_tls_cert")
    tls_key: str | None = declare(
        "remote-write-tls-key", optional_text, None, "the private key (PEM) of remote-write-tls-cert",
        example="/etc/fodc/tls/remote-write.key", role_var="{role}_remote_write_tls_key")

    def problems(self) -> Iterator[str]:
        if not self.urls:
            return
        if len(set(self.urls)) != len(self.urls):
            yield "argument --remote-write-url: the same URL is given twice"
        if self.bearer_token_file and self.basic_auth_user:
            yield "argument --remote-write-bearer-token-file: bearer token and basic auth exclude each other"
        elif self.basic_auth_password_file and not self.basic_auth_user:
            yield "argument --remote-write-basic-auth-password-file: needs --remote-write-basic-auth-user"
        for path, option in ((self.bearer_token_file, "--remote-write-bearer-token-file"),
                             (self.basic_auth_password_file, "--remote-write-basic-auth-password-file")):
            if path:
                try:
                    read_secret(option, path)
                except SecretError as exc:
                    yield str(exc)
        if bool(self.tls_cert) != bool(self.tls_key):
            yield "argument --remote-write-tls-cert: --remote-write-tls-cert and --remote-write-tls-key go together"
            return
        yield from pem_problems((self.tls_ca, "--remote-write-tls-ca"), (self.tls_cert, "--remote-write-tls-cert"),
                                (self.tls_key, "--remote-write-tls-key"))

    def access(self) -> Access | None:
        """The checked receivers and credentials (problems() passed; secrets read now), or None without a URL."""
        if not self.urls:
            return None
        auth = None
        if self.bearer_token_file:
            auth = Auth(bearer_token=read_secret("--remote-write-bearer-token-file", self.bearer_token_file))
        elif self.basic_auth_user:
            password = (read_secret("--remote-write-basic-auth-password-file", self.basic_auth_password_file)
                        if self.basic_auth_password_file else None)
            auth = Auth(basic_user=self.basic_auth_user, basic_password=password)
        return Access(self.urls, self.timeout, auth, self.tls_ca, self.tls_cert, self.tls_key)


@dataclass(frozen=True, slots=True)
class RemoteWriteOptions(RemoteWriteAccess):
    title = ("Remote-write (push the window to a Prometheus-compatible TSDB; off unless a URL is given; file_sd "
             "scraping of the proxy needs none of this)")
    interval: float = declare(
        "remote-write-interval", _interval, "0",
        "send one scrape per source in each slot this long (0: every scrape); an incident's window is always "
        "sent at full resolution", role_var="fodc_agent_remote_write_interval")
    shards: int = declare(
        "remote-write-shards", _positive_int_up_to(MAX_SHARDS), "2",
        f"concurrent senders per receiver (1..{MAX_SHARDS}); a series always uses the same one")
    max_samples_per_send: int = declare(
        "remote-write-max-samples-per-send", _positive_int_up_to(MAX_SAMPLES_PER_SEND), "2000",
        f"samples in one request at most (1..{MAX_SAMPLES_PER_SEND})")
    max_backoff: float = declare(
        "remote-write-max-backoff", config.positive_duration, "30s",
        "longest pause between retries of a failed send (exponential backoff with jitter)")
    state_file: str | None = declare(
        "remote-write-state-file", absolute_path_or_off, DEFAULT_STATE_FILE,
        "where each receiver's position in the window is kept, so sending resumes there after a restart "
        "('' or off: memory only)")

    def settings(self, scrape_interval_s: float) -> RemoteWriteSettings | None:
        """The checked settings (problems() passed), or None when no URL is given."""
        access = self.access()
        if access is None:
            return None
        sender = SenderOptions(
            interval_ms=int(round(self.interval * 1000)), timeout_s=self.timeout, shards=self.shards,
            max_samples=self.max_samples_per_send, round_samples=max(20 * self.max_samples_per_send, 20_000),
            max_backoff_s=self.max_backoff, poll_s=min(1.0, max(0.1, scrape_interval_s / 2)),
            lateness_ms=int((2 * scrape_interval_s + 5) * 1000))
        return RemoteWriteSettings(access, sender, self.state_file)


@dataclass(frozen=True, slots=True)
class ProxyRemoteWriteOptions(RemoteWriteAccess):
    title = ("Remote-write of the proxy's own metrics (fodc_proxy_*, fodc_incidents_total) to a Prometheus-"
             "compatible TSDB; off unless a URL is given")
    interval: float = declare(
        "remote-write-interval", config.positive_duration, "15s",
        "how often the proxy's own metrics are pushed (a snapshot each time)",
        role_var="fodc_proxy_remote_write_interval")
