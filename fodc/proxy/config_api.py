"""The proxy's /cluster/config endpoints: node configuration snapshots, history, forced capture and drift.

Nothing is cached here: each request asks the online agents over their command streams (in parallel, one
deadline) and reports by name every node that did not answer, so a missing node is never mistaken for a
node without configuration.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify
from google.protobuf.message import Message

from fodc.nodeconf.drift import (
    DEFAULT_IGNORE,
    ignored_drift,
    last_change_pair,
    node_changes,
    role_drift,
    role_file_diffs,
)
from fodc.proxy.access import audit_detail, control
from fodc.proxy.filters import check_node, check_role
from fodc.proxy.httpargs import BadRequest, json_body, query_args, text_field, whole_number_arg
from fodc.proxy.registry import ONLINE, AgentRecord
from fodc.proxy.runtime import ProxyRuntime
from fodc.v1 import fodc_pb2 as pb

# scope -> the body field naming its target
SCOPES = {"node": "node_id", "role": "role", "all": None}


class NotFound(Exception):
    """No such node; becomes a 404."""


def _node(record: AgentRecord) -> dict[str, str]:
    return {"node_id": record.registration.node_id, "role": record.registration.role, "agent_id": record.agent_id}


MAX_IGNORE_GLOBS, MAX_GLOB_CHARS = 32, 200


def ignore_globs(text: str) -> tuple[str, ...]:
    """The request's extra `ignore` globs (comma-separated), bounded in number and length."""
    globs = tuple(g.strip() for g in text.split(",") if g.strip())
    if len(globs) > MAX_IGNORE_GLOBS or any(len(g) > MAX_GLOB_CHARS for g in globs):
        raise BadRequest(f"ignore takes at most {MAX_IGNORE_GLOBS} globs of at most {MAX_GLOB_CHARS} characters")
    return globs


def config_blueprint(runtime: ProxyRuntime) -> Blueprint:
    bp = Blueprint("config", __name__)
    timeout = runtime.settings.command_timeout

    def ask(targets: list[AgentRecord], request: Message) -> tuple[list, list]:
        return runtime.commands.gather(targets, request, timeout)

    def online(node_id: str | None = None, role: str | None = None) -> list[AgentRecord]:
        return runtime.registry.list(role=role, node_id=node_id, status=ONLINE)

    @bp.errorhandler(NotFound)
    def not_found(exc: NotFound) -> tuple[Response, int]:
        return jsonify(error="not_found", message=str(exc)), 404

    @bp.get("/cluster/config")
    def latest() -> Response:
        args = query_args({"node_id": None, "role": None})
        check_role(args.get("role"))
        check_node(runtime.registry, args.get("node_id"))
        answered, missing = ask(online(args.get("node_id"), args.get("role")), pb.ConfigSnapshotRequest())
        return jsonify(nodes=[{**_node(r), "snapshot": snap} for r, snap in answered], missing=missing)

    @bp.get("/cluster/config/history")
    def history() -> Response:
        args = query_args({"node_id": None, "limit": None})
        if not args.get("node_id"):
            raise BadRequest("node_id is required")
        limit = whole_number_arg(args, "limit", 0, 1, 1_000_000)
        check_node(runtime.registry, args["node_id"])
        targets = online(args["node_id"])
        if not targets:
            raise NotFound(f"no online agent for node {args['node_id']!r}")
        answered, missing = ask(targets, pb.ConfigHistoryRequest(limit=limit))
        return jsonify(nodes=[{**_node(r), "snapshots": snaps} for r, snaps in answered], missing=missing)

    @bp.post("/cluster/config/capture")
    @control
    def capture() -> tuple[Response, int]:
        body = json_body({"scope": str, "node_id": str, "role": str})
        scope = body.get("scope", "all")
        if scope not in SCOPES:
            raise BadRequest(f"invalid scope {scope!r} (choose from {', '.join(SCOPES)})")
        target_field = SCOPES[scope]
        for name in ("node_id", "role"):
            if name in body and name != target_field:
                raise BadRequest(f"scope {scope!r} does not take {name}")
        target = text_field(body, target_field) if target_field else None
        if target_field and not target:
            raise BadRequest(f"scope {scope!r} needs {target_field}")
        if scope == "role":
            check_role(target)
        if scope == "node":
            check_node(runtime.registry, target)
        targets = online(target if scope == "node" else None, target if scope == "role" else None)
        if scope == "node" and not targets:
            raise NotFound(f"no online agent for node {target!r}")
        audit_detail(nodes=sorted(r.registration.node_id for r in targets))
        answered, missing = ask(targets, pb.ConfigSnapshotRequest(capture=True))
        captured = [{**_node(r), "hash": snap["hash"], "captured_at": snap["captured_at"],
                     "confirmed_at": snap["confirmed_at"], "errors": snap.get("errors", {})} for r, snap in answered]
        return jsonify(scope=scope, captured=captured, missing=missing), 200

    @bp.get("/cluster/config/drift")
    def drift() -> Response:
        args = query_args({"role": None, "node_id": None, "ignore": None})
        check_role(args.get("role"))
        check_node(runtime.registry, args.get("node_id"))
        ignore = (*DEFAULT_IGNORE, *runtime.settings.config_drift_ignore, *ignore_globs(args.get("ignore", "")))
        answered, missing = ask(online(args.get("node_id"), args.get("role")), pb.ConfigHistoryRequest())
        by_role: dict[str, dict[str, dict]] = {}
        nodes: dict[str, dict[str, Any]] = {}
        for record, snapshots in answered:
            if not snapshots:
                continue
            node_id, latest = record.registration.node_id, snapshots[-1]
            by_role.setdefault(record.registration.role, {})[node_id] = latest
            entry: dict[str, Any] = {"role": record.registration.role, "to_hash": latest["hash"],
                                     "to": latest["captured_at"], "changes": {}}
            pair = last_change_pair(snapshots)
            if pair is not None:
                entry.update({"from_hash": pair[0]["hash"], "from": pair[0]["captured_at"],
                              "changes": node_changes(*pair)})
            nodes[node_id] = entry
        roles = {}
        for role, latest in sorted(by_role.items()):
            differences = role_drift(latest, ignore)
            roles[role] = {"nodes": sorted(latest), "differences": differences,
                           "ignored": ignored_drift(latest, ignore), "file_diffs": role_file_diffs(latest, differences)}
        return jsonify(roles=roles, nodes=dict(sorted(nodes.items())), missing=missing)

    return bp
