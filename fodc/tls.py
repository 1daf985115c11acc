"""TLS for the agent-proxy link (mutual: each side proves itself with a certificate) and its files.

The proxy's credentials re-read the certificate files when they change on disk (checked at each new
handshake, by modification time), so a renewed certificate is picked up without a restart; a file that
became unreadable keeps the last good certificate in use and is logged.
"""

from __future__ import annotations

import logging
import os
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


@dataclass(frozen=True, slots=True)
class ServerTls:
    cert: str
    key: str
    client_ca: str | None  # None: agents are not asked for a certificate (TLS, but not mutual)


class _ReloadingServerConfig:
    def __init__(self, tls: ServerTls) -> None:
        self.tls = tls
        self._stamp = self._mtimes()
        self._lock = threading.Lock()

    def _mtimes(self) -> tuple[float, ...]:
        paths = [p for p in (self.tls.cert, self.tls.key, self.tls.client_ca) if p]
        return tuple(os.stat(p).st_mtime for p in paths)

    def build(self) -> grpc.ServerCertificateConfiguration:
        t = self.tls
        pairs = [(read_pem(t.key, "--grpc-tls-key"), read_pem(t.cert, "--grpc-tls-cert"))]
        ca = read_pem(t.client_ca, "--grpc-tls-client-ca") if t.client_ca else None
        return grpc.ssl_server_certificate_configuration(pairs, root_certificates=ca)

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


def server_credentials(tls: ServerTls) -> grpc.ServerCredentials:
    reloading = _ReloadingServerConfig(tls)
    return grpc.dynamic_ssl_server_credentials(reloading.build(), reloading.fetch,
                                               require_client_authentication=tls.client_ca is not None)


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
