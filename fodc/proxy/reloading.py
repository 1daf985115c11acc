"""What SIGHUP changes in a running proxy (fodc/reload.py re-reads the settings and logs the outcome).

Applied at once: the log level, the tokens file (always re-read, its path may change), the gRPC TLS files
(used from the next agent handshake; streams already open stay), the HTTPS files (each new connection reads
them). Turning TLS on or off, or mutual TLS, changes a listener and waits for a restart. Nothing here closes an
agent's stream.
"""

from __future__ import annotations

import logging
from typing import Any

from fodc.proxy.runtime import ProxyRuntime
from fodc.proxy.settings import ProxySettings
from fodc.reload import Applied, set_log_level
from fodc.tls import TlsFileError

log = logging.getLogger(__name__)
GRPC_TLS = ("grpc-tls-cert", "grpc-tls-key", "grpc-tls-client-ca")
HTTP_TLS = ("http-tls-cert", "http-tls-key")


def apply(runtime: ProxyRuntime, old: ProxySettings, new: ProxySettings, changed: dict[str, tuple[Any, Any]],
          http_config: Any = None) -> Applied:
    """`http_config` is the worker's gunicorn Config, whose certfile/keyfile each new HTTPS connection reads."""
    done = Applied()
    if bool(old.http_tls_cert) != bool(new.http_tls_cert) or http_config is None:
        done.restart += [name for name in HTTP_TLS if name in changed]
    elif new.http_tls_cert:
        http_config.set("certfile", new.http_tls_cert)
        http_config.set("keyfile", new.http_tls_key)
        done.notes.append("HTTPS files: read at each new connection")
    if "log-level" in changed:
        set_log_level(new.log_level)
    if runtime.token_watch is not None:
        runtime.token_watch.path = new.auth_tokens_file
        done.notes.append(f"tokens file {new.auth_tokens_file} re-read ({runtime.token_watch.reread('SIGHUP')} "
                          "tokens)")
    before, after = old.grpc_tls, new.grpc_tls
    if runtime.grpc_tls_files is not None and after is not None and before is not None \
            and bool(before.client_ca) == bool(after.client_ca):
        try:
            runtime.grpc_tls_files.replace(after)
        except TlsFileError as exc:
            done.restart += [name for name in GRPC_TLS if name in changed]
            log.error("SIGHUP: gRPC TLS files not reloaded; the ones in force stay", extra={"fields": {
                "reason": str(exc)}})
        else:
            done.notes.append("gRPC TLS files re-read (from the next agent connection)")
    else:
        done.restart += [name for name in GRPC_TLS if name in changed]
    return done
