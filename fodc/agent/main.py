"""fodc-agent entry point: parse settings, start the runtime, say READY, run until SIGTERM/SIGINT; SIGHUP
reloads the settings (fodc/agent/reloading.py says what changes without a restart)."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Sequence

from fodc.agent import reloading
from fodc.agent.runtime import AgentRuntime
from fodc.agent.settings import AgentSettings, parse_settings
from fodc.logs import setup_logging
from fodc.reload import SettingsReload
from fodc.systemd import Notifier

log = logging.getLogger("fodc.agent")


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    settings = parse_settings(args)
    setup_logging(settings.log_level, settings.log_format)
    notifier = Notifier()
    try:
        runtime = AgentRuntime(settings, notifier)
    except OSError as exc:
        log.error("cannot start: %s", exc, extra={"fields": {"http_listen_addr": str(settings.http_listen_addr)}})
        sys.exit(1)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: runtime.request_stop())
    runtime.install_capture_signal()
    reloader = SettingsReload(AgentSettings, args, settings,
                              lambda old, new, changed: reloading.apply(runtime, old, new, changed))
    signal.signal(signal.SIGHUP, lambda *_: reloader.hangup())  # systemctl reload fodc-agent
    if os.environ.get("FODC_TEST_HOOKS") == "1":
        runtime.install_stall_hook()
        if os.environ.get("FODC_TEST_CLOCK_OFFSET_FILE"):
            runtime.install_clock_hook(os.environ["FODC_TEST_CLOCK_OFFSET_FILE"])
    runtime.start()
    reloader.start()
    notifier.ready(runtime.status_line())
    log.info("agent ready", extra={"fields": {
        "node_id": settings.node_id, "node_role": settings.node_role, "proxy": str(settings.proxy_addr),
        "http_port": runtime.http.port}})
    try:
        runtime.run_main_loop()
    finally:
        runtime.shutdown()


if __name__ == "__main__":
    main()
