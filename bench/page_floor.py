"""The floor for bench_proxy: a file's bytes served by the proxy's own HTTP stack (gunicorn, one worker of the
proxy's worker class and thread count, Flask), so the page's cost can be read as a ratio to moving its bytes.

Run: python bench/page_floor.py FILE PORT   (serves GET /page until killed)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from flask import Flask, Response
from gunicorn.app.base import BaseApplication

from fodc.proxy.httpworker import worker_class
from fodc.proxy.settings import parse_settings


class FloorApplication(BaseApplication):
    def __init__(self, page: Path, port: int) -> None:
        self.page, self.port = page, port
        super().__init__()

    def load_config(self) -> None:
        s = parse_settings(["--config", "/dev/null"])  # the proxy's defaults: threads, client timeout
        for key, value in {"bind": [f"127.0.0.1:{self.port}"], "workers": 1, "threads": s.http_threads,
                           "worker_class": worker_class(s.http_client_timeout),
                           "worker_connections": s.http_max_connections, "keepalive": 5,
                           "control_socket_disable": True, "loglevel": "warning"}.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        app = Flask("page_floor")
        body = self.page.read_bytes()

        @app.get("/page")
        def page() -> Response:
            return Response(body, content_type="text/plain; version=0.0.4; charset=utf-8")

        @app.get("/health")
        def health() -> str:
            return "ok"
        return app


if __name__ == "__main__":
    FloorApplication(Path(sys.argv[1]), int(sys.argv[2])).run()
