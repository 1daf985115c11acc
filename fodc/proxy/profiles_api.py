"""The proxy's /profiles endpoints: every agent's profile ring (periodic CPU and heap profiles of its node,
kept on the agent's disk), listed cluster-wide, downloaded, or summarised as JSON for a page.

The profiles stay on the agents; the proxy asks the online ones when an operator looks. Agents that did not
answer, or whose ring is off, are named in `missing` with the reason.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from fodc.artifact_names import parse_ring_name
from fodc.proxy.filters import check_node, check_role
from fodc.proxy.httpargs import BadRequest, query_args
from fodc.proxy.profile_summary import register_errors, summarise, summary_args
from fodc.proxy.registry import ONLINE
from fodc.proxy.runtime import ProxyRuntime
from fodc.times import BadTime, parse_time_ms
from fodc.v1 import fodc_pb2 as pb


class RingProfileNotFound(Exception):
    pass


def profiles_blueprint(runtime: ProxyRuntime) -> Blueprint:
    bp = Blueprint("profiles", __name__)
    timeout = runtime.settings.command_timeout
    register_errors(bp)

    @bp.errorhandler(RingProfileNotFound)
    def not_found(exc: RingProfileNotFound) -> tuple[Response, int]:
        return jsonify(error="not_found", message=str(exc)), 404

    @bp.get("/profiles")
    def list_profiles() -> Response:
        args = query_args({"node_id": None, "role": None, "since": None})
        check_role(args.get("role"))
        check_node(runtime.registry, args.get("node_id"))
        request = pb.RingListRequest()
        if "since" in args:
            try:
                request.since_unix_ms = parse_time_ms(args["since"], "since")
            except BadTime as exc:
                raise BadRequest(str(exc)) from None
        records = runtime.registry.list(node_id=args.get("node_id"), role=args.get("role"), status=ONLINE)
        answered, missing = runtime.commands.gather(records, request, timeout)
        profiles = []
        for record, entries in answered:
            node_id = record.registration.node_id
            for entry in entries:
                url = f"/profiles/{node_id}/{entry['name']}"
                profiles.append({"node_id": node_id, "role": record.registration.role, **entry, "url": url,
                                 "summary_url": f"{url}/summary"})
        profiles.sort(key=lambda p: (p["taken_ms"], p["node_id"]), reverse=True)
        return jsonify(profiles=profiles, missing=missing)

    def fetch(node_id: str, name: str) -> bytes:
        if parse_ring_name(name) is None:
            raise BadRequest(f"{name[:100]!r} is not a ring profile name (<unix ms>-cpu|heap[-<n>s].pb.gz)")
        records = runtime.registry.list(node_id=node_id, status=ONLINE)
        if not records:
            raise RingProfileNotFound(f"no online agent for node {node_id!r}")
        result = runtime.commands.run_all(records[:1], pb.RingFetchRequest(name=name), timeout)[0]
        if not result.ok:
            raise RingProfileNotFound(f"node {node_id} cannot provide {name}: {result.state} ({result.error})")
        return result.data

    @bp.get("/profiles/<node_id>/<name>")
    def download(node_id: str, name: str) -> Response:
        query_args({})
        return Response(fetch(node_id, name), mimetype="application/octet-stream",
                        headers={"Content-Disposition": f"attachment; filename={node_id}-{name}"})

    @bp.get("/profiles/<node_id>/<name>/summary")
    def summary(node_id: str, name: str) -> Response:
        sample_type, top = summary_args()
        return jsonify(summarise(fetch(node_id, name), sample_type, top))

    return bp
