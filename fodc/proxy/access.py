"""Flask side of access control: every request is checked against its view's required role, and every
control request (allowed or refused) leaves one line in the audit log.

Views mark themselves with @control; everything else is a read. Reads served by the blueprints in
SENSITIVE_BLUEPRINTS (bundles, crash reports, profiles, configuration, MCP) need a viewer token under the
default `--auth sensitive`; a view added to one of them is protected without having to remember it. /health
stays open so probes and systemd checks never need a token.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response, g, jsonify, request

from fodc.proxy.auth import AuditLog, Authorizer, Forbidden, Principal, Unauthorized, bounded
from fodc.refusals import RefusalLimiter
from fodc.times import rfc3339

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/health"})
SENSITIVE_BLUEPRINTS = frozenset({"config", "diagnostics", "incidents", "profiles", "mcp"})

# What program sent a request on the caller's behalf (`fodc mcp` says "mcp:<its client's name>"): audited as
# "client". Said by the caller, so it names, never authorizes.
CLIENT_HEADER = "X-FODC-Client"

# Refused requests by status ("429": refused again too soon, not recorded), for the proxy's /metrics.
REFUSED: Counter[str] = Counter()

View = TypeVar("View", bound=Callable[..., Any])


def control(view: View) -> View:
    """Marks a view as a control action: needs an operator token (unless --auth off) and is audited."""
    view.fodc_control = True  # type: ignore[attr-defined]
    return view


def public(view: View) -> View:
    """Marks a view that never needs a token: the console's page shells and static files, which carry no
    data (the pages' scripts fetch the data through the API with the tab's token)."""
    view.fodc_public = True  # type: ignore[attr-defined]
    return view


def audit_detail(**fields: object) -> None:
    """Lets a control view add what it resolved (job id, target nodes) to its audit line."""
    g.audit_detail = {**getattr(g, "audit_detail", {}), **fields}


def install(app: Flask, authorizer: Authorizer, audit: AuditLog, clock_ms: Callable[[], int]) -> None:
    def is_control() -> bool:
        view = app.view_functions.get(request.endpoint or "")
        return bool(getattr(view, "fodc_control", False))

    limiter = RefusalLimiter()
    limiter_lock = threading.Lock()

    def write_audit(principal: Principal, status: int, reason: str = "", **extra: object) -> None:
        # The body is never read here: a refused request's body stays unread, an allowed one is recorded as
        # the view validated it (json_body), bounded like the rest of the line.
        audit.record({
            "time": rfc3339(clock_ms()), "who": principal.name, "role": principal.role,
            "method": request.method, "path": request.path, "remote": request.remote_addr,
            "request": g.get("request_body"), "body_bytes": request.content_length, "status": status,
            **({"reason": reason} if reason else {}), **extra, **getattr(g, "audit_detail", {}),
            **({"client": bounded(request.headers[CLIENT_HEADER])} if CLIENT_HEADER in request.headers else {}),
        })

    @app.before_request
    def check_access() -> tuple[Response, int] | None:
        if request.path in OPEN_PATHS or getattr(app.view_functions.get(request.endpoint or ""), "fodc_public",
                                                 False):
            return None
        needed = "operator" if is_control() else "viewer"
        try:
            g.principal = authorizer.check(request.headers.get("Authorization"), needed,
                                           sensitive=request.blueprint in SENSITIVE_BLUEPRINTS)
        except Unauthorized as exc:
            return refuse(401, "unauthorized", str(exc), Principal("anonymous", ""))
        except Forbidden as exc:
            who = authorizer.identify(request.headers.get("Authorization")) or Principal("anonymous", "")
            return refuse(403, "forbidden", str(exc), who)
        return None

    def refuse(status: int, error: str, message: str, principal: Principal) -> tuple[Response, int]:
        client = request.remote_addr or "?"
        with limiter_lock:
            recorded, held_back = limiter.admit(client, time.monotonic())
            retry_after = limiter.retry_after(client)
        REFUSED[str(status) if recorded else "429"] += 1
        if not recorded:  # this client is refused too often: counted, neither audited nor logged
            response = jsonify(error="too_many_requests", message=f"too many refused requests from {client}; "
                               f"retry in {retry_after}s with a valid token")
            response.headers["Retry-After"] = str(retry_after)
            response.headers["Connection"] = "close"
            return response, 429
        held = {"refusals_not_recorded": held_back} if held_back else {}
        if is_control():
            write_audit(principal, status, message, **held)
        log.warning("request refused", extra={"fields": {"path": bounded(request.path), "status": status,
                                                         "reason": message, "remote": client, **held}})
        response = jsonify(error=error, message=message)
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="fodc-proxy"'
        if request.content_length:  # the body is not wanted; do not keep the connection to drain it
            response.headers["Connection"] = "close"
        return response, status

    @app.after_request
    def audit_control(response: Response) -> Response:
        principal = getattr(g, "principal", None)
        if principal is not None and is_control():
            write_audit(principal, response.status_code)
        return response
