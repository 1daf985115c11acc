"""The proxy's /incidents endpoints: every agent's first-occurrence incidents, cluster-wide, and their bundles.

Incidents live on the agents (beside the node, where they were captured); the proxy asks the online agents
when an operator looks, filters, and fetches a bundle on download. Agents that did not answer are named.
Complete incidents are also copied to the proxy's archive (fodc.proxy.incident_copier): those are listed
even when their agent is offline or gone (`"source": "proxy"`), and their bundles are served from the copy.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify, send_file

from fodc.incident import view as incident_view
from fodc.incident.crashgroups import crash_rows, group
from fodc.proxy.access import audit_detail, control
from fodc.proxy.diagnostics_api import principal_name, resolve_target
from fodc.proxy.filters import check_node, check_role, check_trigger
from fodc.proxy.httpargs import BadRequest, json_body, query_args, text_field, whole_number_arg
from fodc.proxy.profile_summary import NotAProfile, bundle_member, register_errors, summarise, summary_args
from fodc.proxy.registry import ONLINE
from fodc.proxy.routes import Route, register_routes
from fodc.proxy.runtime import ProxyRuntime
from fodc.times import BadTime, now_ms, parse_time_ms, rfc3339
from fodc.v1 import fodc_pb2 as pb

MAX_REASON_CHARS = 300


class IncidentNotFound(Exception):
    pass


def crash_first(incident: dict[str, Any]) -> dict[str, Any]:
    """A crash incident with what the operator reads first at the top: the message, then the failing stack."""
    crash = (incident.get("detail") or {}).get("crash")
    if not isinstance(crash, dict):
        return incident
    return {"summary": incident.get("summary"), "crash": crash, **incident}


def still_collecting(incident: dict[str, Any]) -> Response:
    """409 with Retry-After: when the agent said the bundle would be complete, else a short retry."""
    due_ms = incident.get("complete_by_ms")
    # The agent's word, within reason: a clock far off must not tell clients to come back next year.
    wait_s = min(3600, max(1, math.ceil((due_ms - now_ms()) / 1000))) if isinstance(due_ms, int) else 5
    when = f"complete at about {rfc3339(due_ms)}" if isinstance(due_ms, int) else "complete soon"
    if incident["state"] != "collecting":
        when, wait_s = "not going to be complete", 0
    response = jsonify(error="conflict", message=f"incident {incident['id']} is {incident['state']}: the "
                       f"bundle is written once the window after the trigger has passed ({when})",
                       state=incident["state"], complete_by=rfc3339(due_ms) if isinstance(due_ms, int) else None)
    response.status_code = 409
    if wait_s:
        response.headers["Retry-After"] = str(wait_s)
    return response


def not_found(exc: IncidentNotFound) -> tuple[Response, int]:
    return jsonify(error="not_found", message=str(exc)), 404


def _time_arg(args: dict[str, str], name: str) -> int | None:
    try:
        return parse_time_ms(args[name], name) if name in args else None
    except BadTime as exc:
        raise BadRequest(str(exc)) from None


def _linked(incidents: dict[tuple[str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    """The incidents newest first, each with its own URL and, once complete, its bundle's."""
    for entry in incidents.values():
        entry["url"] = f"/incidents/{entry['node_id']}/{entry['id']}"
        if entry.get("state") == "complete":
            entry["bundle_url"] = entry["url"] + "/bundle"
    return sorted(incidents.values(), key=lambda i: i["at_ms"], reverse=True)


def _capture_outcome(captured: list, records: list, missing: list[dict[str, str]]) -> tuple[int, str]:
    """202 when a node captured; else 409 with why each online target did not, or 404 when none matched."""
    if captured:
        return 202, ""
    if not records:
        return 404, "no online node matched the target"
    return 409, "no node captured: " + "; ".join(f"{m['node_id']}: {m['reason']}" for m in missing)


class IncidentRoutes:
    """The /incidents endpoints over one runtime, each view a method (registered from ROUTES), with the
    lookups they share: the live and archived incidents of the nodes asked for, one incident, its bundle."""

    def __init__(self, runtime: ProxyRuntime) -> None:
        self.runtime = runtime
        self.timeout = runtime.settings.command_timeout

    def collect(self, node_id: str | None = None, role: str | None = None) -> tuple[list[dict[str, Any]], list]:
        """The online agents' incidents, and the archive's copies (those of agents offline or gone too)."""
        records = self.runtime.registry.list(role=role, node_id=node_id, status=ONLINE)
        answered, missing = self.runtime.commands.gather(records, pb.IncidentListRequest(), self.timeout)
        incidents = {}
        for record, entries in answered:
            for entry in entries:
                entry.update(node_id=record.registration.node_id, role=record.registration.role, source="agent")
                incidents[(entry["node_id"], entry["id"])] = entry
        self._add_archived(incidents, node_id, role)
        return _linked(incidents), missing

    def _add_archived(self, incidents: dict[tuple[str, str], dict[str, Any]], node_id: str | None,
                      role: str | None) -> None:
        """Marks the live incidents the archive holds, and adds those only it holds (`"source": "proxy"`)."""
        for entry in self.runtime.incident_archive.entries():
            if (node_id and entry["node_id"] != node_id) or (role and entry.get("role") != role):
                continue
            live = incidents.get((entry["node_id"], entry["id"]))
            if live is not None:
                live["archived"] = True
            else:
                incidents[(entry["node_id"], entry["id"])] = {**entry, "source": "proxy", "archived": True}

    def archived_nodes(self) -> set[str]:
        return {entry["node_id"] for entry in self.runtime.incident_archive.entries()}

    def find(self, node_id: str, incident_id: str) -> dict[str, Any]:
        check_node(self.runtime.registry, node_id, self.archived_nodes())
        incidents, missing = self.collect(node_id=node_id)
        found = next((i for i in incidents if i["id"] == incident_id), None)
        if found is None:
            why = f" (agent: {missing[0]['reason']})" if missing else ""
            raise IncidentNotFound(f"no incident {incident_id!r} on node {node_id!r}{why}")
        return found

    def bundle_source(self, node_id: str, incident_id: str) -> Path | bytes | Response:
        """The complete incident's bundle: the proxy's copy, else fetched from its agent; a 409 if still
        collecting."""
        incident = self.find(node_id, incident_id)
        if incident["state"] != "complete":
            return still_collecting(incident)
        copy = self.runtime.incident_archive.get(node_id, incident_id)
        if copy is not None and copy.bundle.exists():
            return copy.bundle
        records = self.runtime.registry.list(node_id=node_id, status=ONLINE)
        result = self.runtime.commands.run_all(records[:1], pb.IncidentFetchRequest(id=incident_id), self.timeout)[0]
        if not result.ok:
            raise IncidentNotFound(f"node {node_id} cannot provide the bundle: {result.state} ({result.error})")
        return result.data

    def list_incidents(self) -> Response:
        args = query_args({"node_id": None, "role": None, "trigger": None, "since": None, "until": None})
        since, until = _time_arg(args, "since"), _time_arg(args, "until")
        check_role(args.get("role"))
        check_trigger(args.get("trigger"))
        check_node(self.runtime.registry, args.get("node_id"), self.archived_nodes())
        incidents, missing = self.collect(args.get("node_id"), args.get("role"))
        incidents = [i for i in incidents
                     if (not args.get("trigger") or i["trigger"] == args["trigger"])
                     and (since is None or i["at_ms"] >= since) and (until is None or i["at_ms"] <= until)]
        return jsonify(incidents=incidents, missing=missing)

    def crashes(self) -> Response:
        """Every node's crashes (node-crash incidents, and any other with a crash report), grouped by signature."""
        args = query_args({"node_id": None, "role": None, "since": None})
        since = _time_arg(args, "since")
        check_role(args.get("role"))
        check_node(self.runtime.registry, args.get("node_id"), self.archived_nodes())
        incidents, missing = self.collect(args.get("node_id"), args.get("role"))
        rows = crash_rows(i for i in incidents if since is None or i["at_ms"] >= since)
        return jsonify(groups=group(rows), crashes=rows, missing=missing)

    def show(self, node_id: str, incident_id: str) -> Response:
        query_args({})
        return jsonify(crash_first(self.find(node_id, incident_id)))

    def bundle(self, node_id: str, incident_id: str) -> tuple[Response, int] | Response:
        query_args({})
        source = self.bundle_source(node_id, incident_id)
        name = f"fodc-incident-{node_id}-{incident_id}.tar.gz"
        if isinstance(source, Path):
            return send_file(source, mimetype="application/gzip", as_attachment=True, download_name=name)
        if isinstance(source, bytes):
            return Response(source, mimetype="application/gzip",
                            headers={"Content-Disposition": f"attachment; filename={name}"})
        return source

    def profile_summary(self, node_id: str, incident_id: str, file_name: str) -> tuple[Response, int] | Response:
        sample_type, top = summary_args()
        if not file_name.endswith(".pb.gz"):
            raise NotAProfile(f"{file_name!r} is not a profile (profiles end in .pb.gz)")
        source = self.bundle_source(node_id, incident_id)
        if not isinstance(source, Path | bytes):
            return source
        data = bundle_member(source, file_name)
        if data is None:
            raise IncidentNotFound(f"incident {incident_id} has no {file_name}")
        return jsonify(summarise(data, sample_type, top))

    @control
    def capture(self) -> tuple[Response, int]:
        """A manual incident on the target nodes now (operator): each agent freezes its bundle at once."""
        body = json_body({"target": (str, dict), "reason": str})
        reason = text_field(body, "reason")
        if len(reason) > MAX_REASON_CHARS:
            raise BadRequest(f"reason is {len(reason)} characters; at most {MAX_REASON_CHARS}")
        if body.get("target", "all") == "all":
            raise BadRequest('target must name nodes: {"node_ids": [...]} or {"role": "..."}')
        target, records, unknown = resolve_target(body, self.runtime)
        answered, missing = self.runtime.commands.gather(
            records, pb.IncidentCaptureRequest(reason=reason, requested_by=principal_name()), self.timeout)
        captured = []
        for record, incident in answered:
            incident.update(node_id=record.registration.node_id, role=record.registration.role)
            incident["url"] = f"/incidents/{incident['node_id']}/{incident['id']}"
            captured.append(incident)
        audit_detail(nodes=sorted(r.registration.node_id for r in records), unknown_nodes=unknown,
                     incidents=[f"{i['node_id']}/{i['id']}" for i in captured])
        status, message = _capture_outcome(captured, records, missing)
        return jsonify(target=target, incidents=captured, missing=missing, unknown_nodes=unknown,
                       **({"error": "conflict" if records else "not_found", "message": message} if message else {})
                       ), status

    def view(self, node_id: str, incident_id: str) -> tuple[Response, int] | Response:
        """What the console's incident page shows, read from the bundle (fodc.incident.view)."""
        args = query_args({"top": None})
        top = whole_number_arg(args, "top", 10, 1, incident_view.MAX_TOP)
        source = self.bundle_source(node_id, incident_id)
        if not isinstance(source, Path | bytes):
            return source
        try:
            files = incident_view.read_files(source.read_bytes() if isinstance(source, Path) else source)
        except incident_view.BadBundle as exc:
            raise IncidentNotFound(f"the bundle of {incident_id} on {node_id} cannot be read: {exc}") from None
        records = self.runtime.registry.list(node_id=node_id, status=ONLINE)
        answered, _ = self.runtime.commands.gather(records[:1], pb.ConfigHistoryRequest(),
                                                   self.timeout) if records else ([], [])
        history = answered[0][1] if answered else None
        return jsonify(incident=self.find(node_id, incident_id), **incident_view.build(files, top, history))


# (method, rule, view): the endpoint of each is "incidents.<view>"
ROUTES: tuple[Route, ...] = (
    ("GET", "/incidents", "list_incidents"),
    ("GET", "/crashes", "crashes"),
    ("GET", "/incidents/<node_id>/<incident_id>", "show"),
    ("GET", "/incidents/<node_id>/<incident_id>/bundle", "bundle"),
    ("GET", "/incidents/<node_id>/<incident_id>/profiles/<file_name>/summary", "profile_summary"),
    ("POST", "/incidents/capture", "capture"),
    ("GET", "/incidents/<node_id>/<incident_id>/view", "view"),
)


def incidents_blueprint(runtime: ProxyRuntime) -> Blueprint:
    bp = Blueprint("incidents", __name__)
    bp.register_error_handler(IncidentNotFound, not_found)
    register_errors(bp)
    return register_routes(bp, IncidentRoutes(runtime), ROUTES)
