"""What SIGHUP changes in a running proxy (fodc/reload.py re-reads the settings and logs the outcome).

Applied at once: the log level, the tokens file (always re-read, its path may change), the gRPC TLS files
(used from the next agent handshake; streams already open stay). Turning gRPC TLS on or off, or mutual TLS,
changes the listener and waits for a restart. Nothing here closes an agent's stream.
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


def apply(runtime: ProxyRuntime, old: ProxySettings, new: ProxySettings,
          changed: dict[str, tuple[Any, Any]]) -> Applied:
    done = Applied()
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
