"""`/mcp`: the MCP server (fodc.mcp.server) over streamable HTTP, inside the Flask/gunicorn proxy.

The SDK's streamable-HTTP app is ASGI; the proxy is WSGI. The app runs stateless with JSON responses (one POST,
one JSON answer, no server-held session or SSE stream), so each request is a plain call: the Flask view hands
the request to the app on one event loop thread of the worker and waits for its answer. The view sits behind
the API's access control like any read: a viewer's token reaches a server without the control tools, an
operator's one with them. The tools call the proxy's own API on loopback with the caller's token, so every
call is checked and audited exactly as if the caller had made it (the audit line's client says
"mcp-http:<MCP client>").
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from typing import Any

from flask import Blueprint, Response, g, request

from fodc.cli.client import ProxyClient
from fodc.config import HostPort
from fodc.proxy.access import CLIENT_HEADER

MAX_BODY = 1024 * 1024
ANSWER_TIMEOUT_S = 900.0  # take_profile may wait up to its own bounded limits (10 min + a CPU profile)


def self_url(listen: HostPort, tls: bool) -> str:
    """The proxy's own API on loopback (a wildcard listen address is reached through 127.0.0.1)."""
    host = listen.host if listen.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{host}:{listen.port}"


class _Bridge:
    """One asyncio loop thread holding both servers' session managers open; `call` runs one request."""

    def __init__(self, apps: dict[str, Any], managers: list[Any]) -> None:
        self.apps = apps
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        threading.Thread(target=self._run, args=(managers, started), name="mcp-http", daemon=True).start()
        started.wait(30)

    def _run(self, managers: list[Any], started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)

        async def hold() -> None:
            from contextlib import AsyncExitStack
            async with AsyncExitStack() as stack:
                for manager in managers:
                    await stack.enter_async_context(manager.run())
                started.set()
                await asyncio.Event().wait()  # for the worker's life
        self.loop.run_until_complete(hold())

    def call(self, which: str, scope: dict[str, Any], body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        future = asyncio.run_coroutine_threadsafe(self._call(self.apps[which], scope, body), self.loop)
        return future.result(ANSWER_TIMEOUT_S)

    @staticmethod
    async def _call(app: Any, scope: dict[str, Any], body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        answer: dict[str, Any] = {"status": 500, "headers": [], "body": []}
        sent = False
        finished = asyncio.Event()

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await finished.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["headers"] = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message["headers"]]
            elif message["type"] == "http.response.body":
                answer["body"].append(message.get("body", b""))
                if not message.get("more_body"):
                    finished.set()
        await app(scope, receive, send)
        finished.set()
        return answer["status"], answer["headers"], b"".join(answer["body"])


def mcp_blueprint(listen: HostPort, tls: bool) -> Blueprint:
    """The /mcp view (not public: a viewer token at least); the SDK and both servers are made on the first
    request, so a worker never pays for an unused MCP endpoint at start."""
    bp = Blueprint("mcp", __name__)
    state: dict[str, _Bridge] = {}
    lock = threading.Lock()
    base_url = self_url(listen, tls)

    def bridge() -> _Bridge:
        with lock:
            if "bridge" not in state:
                state["bridge"] = _make_bridge(base_url, tls)
            return state["bridge"]

    @bp.route("/mcp", methods=["GET", "POST", "DELETE"])
    def mcp() -> Response:
        if (request.content_length or 0) > MAX_BODY:
            return Response('{"error":"too_large"}', 413, content_type="application/json")
        body = request.get_data(cache=False)[:MAX_BODY + 1]
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.items()
                   if k.lower() != CLIENT_HEADER.lower()]
        headers.append((b"x-fodc-remote", (request.remote_addr or "?").encode()))
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": request.method,
                 "scheme": request.scheme, "path": "/mcp", "raw_path": b"/mcp", "root_path": "",
                 "query_string": request.query_string, "headers": headers,
                 "client": (request.remote_addr or "", 0), "server": (listen.host or "127.0.0.1", listen.port)}
        role = getattr(g, "principal", None)
        which = "operator" if role is not None and role.role == "operator" else "viewer"
        status, answer_headers, answer = bridge().call(which, scope, body)
        response = Response(answer, status)
        for key, value in answer_headers:
            if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                response.headers[key] = value
        return response

    return bp


def _make_bridge(base_url: str, tls: bool) -> _Bridge:
    from mcp.server.transport_security import TransportSecuritySettings

    from fodc.mcp.server import build_server, client_name

    # The SDK logs every stateless request's session start and end at INFO: one line per request is noise.
    logging.getLogger("mcp").setLevel(logging.WARNING)
    base = ProxyClient(base_url, None, 60.0)
    if tls:  # our own listener on loopback: the certificate names the proxy's public name, not 127.0.0.1
        base.context = ssl.create_default_context()
        base.context.check_hostname = False
        base.context.verify_mode = ssl.CERT_NONE

    def client_for(client: ProxyClient, ctx: Any) -> ProxyClient:
        """The caller's own token and name, for each call the tools make."""
        import copy
        headers = (ctx.headers if ctx is not None else None) or {}
        mine = copy.copy(client)
        auth = headers.get("authorization", "")
        mine.token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        remote = headers.get("x-fodc-remote", "?")
        mine.extra_headers = {CLIENT_HEADER: f"mcp-http:{client_name(ctx)} from {remote}"}
        return mine

    apps, managers = {}, []
    # Access control is the proxy's (a bearer token, never a cookie), so the SDK's Host/Origin check is off.
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    for which in ("viewer", "operator"):
        server = build_server(base, control=which == "operator", client_for=client_for)
        apps[which] = server.streamable_http_app(streamable_http_path="/mcp", json_response=True,
                                                 stateless_http=True, transport_security=security)
        managers.append(server.session_manager)
    return _Bridge(apps, managers)
