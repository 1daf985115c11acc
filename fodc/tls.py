"""TLS for the agent-proxy link (mutual: each side proves itself with a certificate), for the agent's own HTTP
endpoint, and their files.

Server credentials re-read the certificate files when they change on disk (checked at each new handshake,
by modification time), so a renewed certificate is picked up without a restart; a file that became
unreadable keeps the last good certificate in use and is logged.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from dataclasses import dataclass

import grpc

log = logging.getLogger(__name__)


class TlsFileError(Exception):
    """A certificate or key file cannot be read; the message names the option and the file."""


def read_pem(path: str, option: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise TlsFileError(f"{option}: cannot read {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN " not in data:
        raise TlsFileError(f"{option}: {path} is not a PEM file")
    return data


def pem_problems(*files: tuple[str | None, str]) -> list[str]:
    """The first unreadable file of a TLS set as an error line naming its option (one line: the set is
    unusable either way); no line when every file given reads as PEM."""
    for path, option in files:
        if path:
            try:
                read_pem(path, option)
            except TlsFileError as exc:
                return [f"argument {exc}"]
    return []


@dataclass(frozen=True, slots=True)
class ServerTls:
    cert: str
    key: str
    client_ca: str | None  # None: agents are not asked for a certificate (TLS, but not mutual)


def _mtimes(tls: ServerTls) -> tuple[float, ...]:
    return tuple(os.stat(p).st_mtime for p in (tls.cert, tls.key, tls.client_ca) if p)


def _certificate_configuration(tls: ServerTls) -> grpc.ServerCertificateConfiguration:
    pairs = [(read_pem(tls.key, "--grpc-tls-key"), read_pem(tls.cert, "--grpc-tls-cert"))]
    ca = read_pem(tls.client_ca, "--grpc-tls-client-ca") if tls.client_ca else None
    return grpc.ssl_server_certificate_configuration(pairs, root_certificates=ca)


class ReloadingServerConfig:
    """The proxy's gRPC certificate: re-read before a handshake when its files changed, or when `replace`
    (SIGHUP) names other files; handshakes in progress keep the configuration they began with."""

    def __init__(self, tls: ServerTls) -> None:
        self.tls = tls
        self._stamp = self._mtimes()
        self._lock = threading.Lock()

    def _mtimes(self) -> tuple[float, ...]:
        return _mtimes(self.tls)

    def build(self) -> grpc.ServerCertificateConfiguration:
        return _certificate_configuration(self.tls)

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """Called by gRPC before each handshake: a new configuration when the files changed, else None."""
        with self._lock:
            try:
                stamp = self._mtimes()
                if stamp == self._stamp:
                    return None
                config = self.build()
            except (OSError, TlsFileError) as exc:
                log.error("cannot reload the TLS certificate; keeping the previous one", extra={"fields": {
                    "reason": str(exc)}})
                return None
            self._stamp = stamp
            log.info("TLS certificate files changed; reloaded")
            return config

    def replace(self, tls: ServerTls) -> None:
        """Other files (or the same, read again) from the next handshake on; checked now, so a bad file
        raises TlsFileError and the files in force stay."""
        _certificate_configuration(tls)
        with self._lock:
            self.tls = tls
            self._stamp = ()  # differs from any real stamp: the next handshake rebuilds


def server_credentials(tls: ServerTls) -> grpc.ServerCredentials:
    return reloading_server_credentials(tls)[0]


def reloading_server_credentials(tls: ServerTls) -> tuple[grpc.ServerCredentials, ReloadingServerConfig]:
    """The gRPC server credentials and the object that `replace`s their files on SIGHUP."""
    reloading = ReloadingServerConfig(tls)
    # gRPC takes None from the fetch callback as "no change"; types-grpcio's stub does not say so.
    credentials = grpc.dynamic_ssl_server_credentials(reloading.build(), reloading.fetch,  # type: ignore[arg-type]
                                                      require_client_authentication=tls.client_ca is not None)
    return credentials, reloading


def https_server_context(tls: ServerTls, options: tuple[str, str, str]) -> ssl.SSLContext:
    """An HTTPS server context (TLS 1.2 or later); with a client CA every client must present a certificate
    it signed. `options` name the cert, key and CA options in errors."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    for path, option in zip((tls.cert, tls.key, tls.client_ca), options, strict=True):
        if path:
            read_pem(path, option)  # a clear error naming the option for a missing or non-PEM file
    try:
        context.load_cert_chain(tls.cert, tls.key)
        if tls.client_ca:
            context.load_verify_locations(cafile=tls.client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except ssl.SSLError as exc:
        raise TlsFileError(f"{options[0]}: {tls.cert} with {tls.key}: {exc.reason or exc}") from None
    return context


class ReloadingHttpsContext:
    """The HTTPS context for the next handshake, rebuilt when a certificate file changed on disk."""

    def __init__(self, tls: ServerTls, options: tuple[str, str, str]) -> None:
        self.tls = tls
        self.options = options
        self._context = https_server_context(tls, options)
        self._stamp: tuple[float, ...] | None = _mtimes(tls)
        self._lock = threading.Lock()

    def current(self) -> ssl.SSLContext:
        with self._lock:
            try:
                stamp: tuple[float, ...] | None = _mtimes(self.tls)
            except OSError:
                stamp = None  # a file is gone: keep serving with what was loaded, say so once
            if stamp == self._stamp:
                return self._context
            self._stamp = stamp  # a failed reload is not retried (nor logged) at every handshake
            try:
                if stamp is None:
                    raise TlsFileError(f"{self.options[0]}: a certificate file is missing")
                self._context = https_server_context(self.tls, self.options)
            except TlsFileError as exc:
                log.error("cannot reload the HTTPS certificate; keeping the previous one", extra={"fields": {
                    "reason": str(exc)}})
            else:
                log.info("HTTPS certificate files changed; reloaded", extra={"fields": {"cert": self.tls.cert}})
            return self._context


@dataclass(frozen=True, slots=True)
class ClientTls:
    ca: str
    cert: str | None
    key: str | None
    server_name: str | None


def channel_credentials(tls: ClientTls) -> grpc.ChannelCredentials:
    cert = read_pem(tls.cert, "--proxy-tls-cert") if tls.cert else None
    key = read_pem(tls.key, "--proxy-tls-key") if tls.key else None
    return grpc.ssl_channel_credentials(read_pem(tls.ca, "--proxy-tls-ca"), private_key=key, certificate_chain=cert)
