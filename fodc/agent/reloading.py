"""What SIGHUP changes in a running agent (fodc/reload.py re-reads the settings and logs the outcome).

Applied at once: the log level and the proxy TLS files (read again for the next connection to the proxy; the
streams open now stay, so a reload never drops the agent from the proxy). Turning TLS to the proxy on or off
waits for a restart, like every option not declared reloadable.
"""

from __future__ import annotations

from typing import Any

from fodc.agent.runtime import AgentRuntime
from fodc.agent.settings import AgentSettings
from fodc.reload import Applied, set_log_level

PROXY_TLS = ("proxy-tls-ca", "proxy-tls-cert", "proxy-tls-key", "proxy-tls-server-name")


def apply(runtime: AgentRuntime, old: AgentSettings, new: AgentSettings,
          changed: dict[str, tuple[Any, Any]]) -> Applied:
    done = Applied()
    if "log-level" in changed:
        set_log_level(new.log_level)
    if (old.proxy_tls is None) != (new.proxy_tls is None):
        done.restart += [name for name in PROXY_TLS if name in changed]
    elif new.proxy_tls is not None:
        runtime.session.tls = new.proxy_tls  # each connection attempt reads these files (ProxySession._channel)
        done.notes.append("proxy TLS files: read again at the next connection to the proxy")
    return done
