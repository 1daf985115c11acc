"""fodc-proxy entry point: Flask on gunicorn, one gthread worker that also hosts the gRPC server.

One worker keeps the registry in one process; the gRPC server is created in the worker after the fork
because grpc does not survive fork. systemd readiness comes from the worker once both servers serve, not
from gunicorn's master (which would say READY before anything is listening).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from fodc.logs import setup_logging
from fodc.proxy.httpworker import worker_class
from fodc.proxy.settings import ProxySettings, parse_settings
from fodc.reload import Applied, SettingsReload
from fodc.systemd import Notifier

log = logging.getLogger("fodc.proxy")


def _gunicorn_logconfig(level: str, fmt: str) -> dict[str, Any]:
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    formatter = "fodc.logs.JsonFormatter" if fmt == "json" else "fodc.logs.TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"fodc": {"()": formatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "fodc", "stream": "ext://sys.stderr"}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level.upper(), "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "WARNING", "handlers": ["stderr"], "propagate": False},
        },
    }


class ProxyApplication(BaseApplication):
    def __init__(self, settings: ProxySettings, notifier: Notifier, argv: Sequence[str] = ()) -> None:
        self.settings = settings
        self.notifier = notifier
        self.argv = list(argv)  # what SIGHUP re-reads the settings from, with the config file and environment
        self.runtime: Any = None
        self.reloader: SettingsReload[ProxySettings] | None = None
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        bind = str(s.http_listen_addr)
        if bind.startswith(":"):
            bind = "0.0.0.0" + bind
        options = {
            "bind": [bind],
            "workers": 1,
            "worker_class": worker_class(s.http_client_timeout),  # gthread that keeps slow clients off threads
            "threads": s.http_threads,
            "worker_connections": s.http_max_connections,
            "timeout": 60,
            "graceful_timeout": 10,
            "keepalive": 5,
            "limit_request_line": 8190,
            "limit_request_fields": 100,
            "preload_app": False,
            "proc_name": "fodc-proxy",
            "control_socket_disable": True,  # would write under $HOME, which the unit makes read-only
            "logconfig_dict": _gunicorn_logconfig(s.log_level, s.log_format),
            "post_worker_init": self._post_worker_init,
            "worker_exit": self._worker_exit,
        }
        if s.http_tls_cert:
            options.update(certfile=s.http_tls_cert, keyfile=s.http_tls_key)
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        # Runs in the worker, after the fork and gunicorn's own signal set-up (which leaves SIGHUP deadly): from
        # here on, before the slow imports below, a SIGHUP is a reload, taken up once the runtime runs.
        self.reloader = SettingsReload(ProxySettings, self.argv, self.settings, self._apply_reload)
        signal.signal(signal.SIGHUP, lambda *_: self.reloader.hangup() if self.reloader else None)
        from fodc.proxy.api import create_app
        from fodc.proxy.runtime import ProxyRuntime

        setup_logging(self.settings.log_level, self.settings.log_format)
        self.runtime = ProxyRuntime(self.settings, self.notifier)
        self.runtime.start()
        return create_app(self.runtime)

    def _apply_reload(self, old: ProxySettings, new: ProxySettings, changed: dict[str, Any]) -> Applied:
        from fodc.proxy import reloading

        return reloading.apply(self.runtime, old, new, changed, self.cfg)

    def run(self) -> None:
        try:
            ProxyArbiter(self).run()
        except RuntimeError as exc:
            print(f"fodc-proxy: {exc}", file=sys.stderr)
            sys.exit(1)

    def _post_worker_init(self, worker: Any) -> None:
        if self.reloader is not None:  # the master forwards SIGHUP to this worker (ProxyArbiter)
            self.reloader.start()
        if os.environ.get("FODC_TEST_HOOKS") == "1":
            self.runtime.install_stall_hook()
        self.notifier.ready(f"serving; {self.runtime.status_line()}")
        log.info("proxy ready", extra={"fields": {
            "http": str(self.settings.http_listen_addr), "grpc": str(self.settings.grpc_listen_addr),
            "worker_pid": os.getpid()}})

    def _worker_exit(self, server: Any, worker: Any) -> None:
        if self.reloader is not None:
            self.reloader.stop()
        if self.runtime is not None:
            self.runtime.stop()


class ProxyArbiter(Arbiter):
    """gunicorn's master, except that SIGHUP reloads the settings in the worker instead of replacing the
    worker (which would drop every agent's streams)."""

    def handle_hup(self) -> None:
        if self.log is not None:  # set up by the time any signal is handled
            self.log.info("SIGHUP: the worker reloads the settings")
        for pid in list(self.WORKERS):
            self.kill_worker(pid, signal.SIGHUP)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    settings = parse_settings(args)
    setup_logging(settings.log_level, settings.log_format)
    notifier = Notifier(take_from_environment=True)
    ProxyApplication(settings, notifier, args).run()


if __name__ == "__main__":
    main()
