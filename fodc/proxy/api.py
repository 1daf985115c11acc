"""The proxy's HTTP API (Flask): thin views over the runtime. Every error is a JSON object with a reason."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, jsonify, request, stream_with_context
from prometheus_client import generate_latest
from werkzeug.exceptions import HTTPException

from fodc import expfmt
from fodc.config import ROLES
from fodc.heap import release_free_heap
from fodc.names import selection_pattern
from fodc.notes import node_notes
from fodc.proxy import access, filters
from fodc.proxy.config_api import config_blueprint
from fodc.proxy.console.views import console_blueprint
from fodc.proxy.diagnostics_api import diagnostics_blueprint
from fodc.proxy.downsample import AGGREGATIONS, step_millis
from fodc.proxy.exposition import PageWriter
from fodc.proxy.fanout import Collection
from fodc.proxy.filters import check_node, check_role
from fodc.proxy.httpargs import BadRequest, query_args
from fodc.proxy.incidents_api import incidents_blueprint
from fodc.proxy.mcp_endpoint import mcp_blueprint
from fodc.proxy.profiles_api import profiles_blueprint
from fodc.proxy.registry import ONLINE, UNCONNECTED, AgentRecord
from fodc.proxy.runtime import ProxyRuntime
from fodc.proxy.series_table import TableMismatch
from fodc.proxy.windows import stream_windows
from fodc.saferegex import PatternError
from fodc.times import BadTime, now_ms, parse_time_ms, rfc3339

DEFAULT_WINDOW_MS = 3600 * 1000


def node_json(record: AgentRecord) -> dict[str, Any]:
    reg = record.registration
    return {
        "agent_id": record.agent_id,
        "node_id": reg.node_id,
        "role": reg.role,
        "status": record.status,
        "primary_address": {"ip": reg.primary.ip, "port": reg.primary.port},
        "secondary_addresses": {name: {"ip": a.ip, "port": a.port} for name, a in sorted(reg.secondary.items())},
        "labels": dict(sorted(reg.labels.items())),
        "hostname": reg.hostname,
        "host_id": reg.host_id,
        "agent_version": reg.agent_version,
        "capabilities": dict(sorted(record.capabilities.items())),
        "runtime": dict(sorted(record.runtime.items())),
        "incidents_total": dict(sorted(record.incidents_total.items())),
        "notes": node_notes(record.runtime, record.incidents_total),
        "registered_at": rfc3339(record.registered_at_ms),
        "last_heartbeat": rfc3339(record.last_heartbeat_ms),
        "unconnected_since": rfc3339(record.unconnected_since_ms),
    }


def metrics_page(runtime: ProxyRuntime, collection: Collection) -> Iterator[str]:
    """The /metrics page in pieces: each agent's block as soon as it has answered completely, then the
    proxy's own families (which count this fan-out's missing agents too)."""
    writer = PageWriter(runtime.refusals)
    for record, chunks in collection.whole_replies():
        try:
            block = writer.agent_block(record, chunks, collection.tables.get(record.agent_id))
        except TableMismatch as exc:
            collection.refuse(record, f"series table: {exc}")
            continue
        if block:
            yield block
    yield generate_latest(runtime.metrics.registry).decode()


def create_app(runtime: ProxyRuntime) -> Flask:
    app = Flask("fodc.proxy")
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    app.json.sort_keys = False  # type: ignore[attr-defined]

    @app.errorhandler(BadRequest)
    def bad_request(exc: BadRequest) -> tuple[Response, int]:
        return jsonify(error="bad_request", message=str(exc)), 400

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        code = exc.code or 500
        return jsonify(error=(exc.name or "error").lower().replace(" ", "_"),
                       message=exc.description or "", path=request.path), code

    @app.errorhandler(Exception)
    def internal_error(exc: Exception) -> tuple[Response, int]:
        app.logger.exception("unhandled error in %s", request.path)
        return jsonify(error="internal_error", message=f"{type(exc).__name__}: {exc}"), 500

    filters.install(app)
    access.install(app, runtime.authorizer, runtime.audit, now_ms)
    app.register_blueprint(config_blueprint(runtime))
    app.register_blueprint(diagnostics_blueprint(runtime))
    app.register_blueprint(incidents_blueprint(runtime))
    app.register_blueprint(console_blueprint(runtime.settings.auth))
    app.register_blueprint(profiles_blueprint(runtime))
    app.register_blueprint(mcp_blueprint(runtime.settings.http_listen_addr, bool(runtime.settings.http_tls_cert)))

    @app.get("/health")
    def health() -> Response:
        counts = runtime.registry.counts()
        return jsonify(status="ok", agents=counts, uptime_seconds=round(time.time() - runtime.started_at, 3),
                       auth=runtime.settings.auth)

    @app.get("/cluster")
    def cluster() -> Response:
        args = query_args({"role": None, "node_id": None, "status": (ONLINE, UNCONNECTED)})
        check_role(args.get("role"))
        check_node(runtime.registry, args.get("node_id"))
        records = runtime.registry.list(role=args.get("role"), node_id=args.get("node_id"),
                                        status=args.get("status"))
        by_role: dict[str, dict[str, int]] = {role: {ONLINE: 0, UNCONNECTED: 0} for role in ROLES}
        for record in records:
            by_role.setdefault(record.key.role, {ONLINE: 0, UNCONNECTED: 0})[record.status] += 1
        return jsonify(
            nodes=[node_json(r) for r in records],
            summary={
                "total": len(records),
                ONLINE: sum(r.status == ONLINE for r in records),
                UNCONNECTED: sum(r.status == UNCONNECTED for r in records),
                "by_role": by_role,
            },
        )

    @app.get("/metrics")
    def metrics() -> Response:
        args = query_args({"node_id": None, "role": None})
        check_role(args.get("role"))
        check_node(runtime.registry, args.get("node_id"))
        targets = runtime.fanout.targets(node_id=args.get("node_id"), role=args.get("role"))
        collection = runtime.fanout.collect("metrics", targets, latest_only=True)
        response = Response(stream_with_context(metrics_page(runtime, collection)), mimetype=None,
                            content_type=expfmt.CONTENT_TYPE_LATEST)
        # The agents' answers and the page's pieces are garbage now (freed by reference counts: no collection
        # needed): give their pages back, or the worker keeps the peak of its largest page for good. After the
        # last byte went out (gunicorn closes the body after writing its end), so the reader does not wait.
        response.call_on_close(functools.partial(release_free_heap, collect=False))
        return response

    @app.get("/metrics-windows")
    def metrics_windows() -> Response:
        args = query_args({"node_id": None, "role": None, "start": None, "end": None, "name": None,
                           "name_regex": None, "step": None, "agg": AGGREGATIONS})
        check_role(args.get("role"))
        check_node(runtime.registry, args.get("node_id"))
        try:
            step_ms = step_millis(args["step"]) if "step" in args else 0
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        try:
            start_ms = parse_time_ms(args["start"], "start") if "start" in args else 0
            end_ms = parse_time_ms(args["end"], "end") if "end" in args else 0
        except BadTime as exc:
            raise BadRequest(str(exc)) from None
        if start_ms and end_ms and start_ms > end_ms:
            raise BadRequest("start must not be after end")
        if not start_ms:
            # A whole day of thousands of series is gigabytes once decoded: ask for more explicitly.
            start_ms = (end_ms or now_ms()) - DEFAULT_WINDOW_MS
        if "name" in args and "name_regex" in args:
            raise BadRequest("give name or name_regex, not both (name=~REGEX is name_regex=REGEX)")
        param, selection = ("name_regex", "~" + args["name_regex"]) if "name_regex" in args else \
            ("name", args.get("name", ""))
        try:
            name_regex = selection_pattern(selection) or ""
        except PatternError as exc:
            raise BadRequest(f"invalid {param} {args[param]!r}: {exc}") from None
        targets = runtime.fanout.targets(node_id=args.get("node_id"), role=args.get("role"))
        agg = args.get("agg", "last")
        collection = runtime.fanout.collect("metrics-windows", targets, latest_only=False, start_ms=start_ms,
                                            end_ms=end_ms, name_regex=name_regex, step_ms=step_ms,
                                            agg=agg)
        too_large = collection.refusal()
        if too_large:
            raise BadRequest(f"too many points: {too_large}")
        unconnected = runtime.registry.list(role=args.get("role"), node_id=args.get("node_id"), status=UNCONNECTED)
        pieces = stream_windows(collection, step_ms, agg, unconnected)
        return Response(stream_with_context(pieces), content_type="application/json")

    return app
