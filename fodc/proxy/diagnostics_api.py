"""The proxy's /diagnostics endpoints: start a job on many nodes, watch it, download results, cancel;
and the agents' automatic (memory pressure) captures, listed beside the jobs.

POST answers at once with a job id (202); the work runs on the agents, in parallel, each against its own
node. Results are downloaded per node or as one bundle with a manifest.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, send_file
from google.protobuf.message import Message

from fodc.artifact_names import PROFILES
from fodc.proxy.access import audit_detail, control
from fodc.proxy.filters import UnknownValue, check_node, check_role
from fodc.proxy.httpargs import BadRequest, json_body, query_args, whole_number_arg
from fodc.proxy.jobs import Job, Task
from fodc.proxy.profile_summary import NotAProfile, register_errors, summarise_file, summary_args
from fodc.proxy.registry import ONLINE
from fodc.proxy.routes import Route, register_routes
from fodc.proxy.runtime import ProxyRuntime
from fodc.v1 import fodc_pb2 as pb

# operator-facing action -> (file suffix, takes seconds); the agent request is made by _request
ACTIONS: dict[str, tuple[str, bool]] = {
    **{name: (".pb.gz", timed) for name, (_, timed) in PROFILES.items()},
    "config": (".json", False),
}


def _request(action: str, seconds: int) -> Message:
    """The typed agent request behind an operator-facing action."""
    if action == "config":
        return pb.ConfigSnapshotRequest(capture=True)
    return pb.ProfileRequest(kind=action.upper(), seconds=seconds)  # the ProfileKind of that name


class JobNotFound(Exception):
    pass


class JobConflict(Exception):
    pass


def principal_name() -> str:
    principal = getattr(g, "principal", None)
    return principal.name if principal is not None else "anonymous"


def _automatic_captures(runtime: ProxyRuntime) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Every online agent's automatic (memory pressure) captures, newest first, with download paths."""
    answered, missing = runtime.commands.gather(runtime.registry.list(status=ONLINE), pb.AutomaticListRequest(),
                                                min(5.0, runtime.settings.command_timeout))
    captures = []
    for record, entries in answered:
        node_id = record.registration.node_id
        for entry in entries:
            for file in entry["files"]:
                file["url"] = f"/diagnostics/automatic/{node_id}/{file['file']}"
            captures.append({"node_id": node_id, "role": record.registration.role, **entry})
    captures.sort(key=lambda c: c["time"], reverse=True)
    return captures, missing


def resolve_target(body: dict[str, Any], runtime: ProxyRuntime) -> tuple[dict[str, Any], list, list[str]]:
    target = body.get("target", "all")
    if target == "all":
        return {"all": True}, runtime.registry.list(status=ONLINE), []
    if not isinstance(target, dict) or len(target) != 1 or not {"node_ids", "role"} & set(target):
        raise BadRequest('target must be "all", {"node_ids": [...]} or {"role": "..."}')
    if "role" in target:
        check_role(target["role"], "target.role")
        return {"role": target["role"]}, runtime.registry.list(role=target["role"], status=ONLINE), []
    node_ids = target["node_ids"]
    if not isinstance(node_ids, list) or not node_ids or not all(isinstance(n, str) and n for n in node_ids):
        raise BadRequest("target.node_ids must be a non-empty list of node ids")
    for node_id in dict.fromkeys(node_ids):  # a node never registered is a typo: no job, no empty bundle
        check_node(runtime.registry, node_id, parameter="target.node_ids")
    records, unknown = [], []
    for node_id in dict.fromkeys(node_ids):
        found = runtime.registry.list(node_id=node_id, status=ONLINE)
        records.extend(found)
        if not found:
            unknown.append(node_id)
    return {"node_ids": list(dict.fromkeys(node_ids))}, records, unknown


def _params(action: str, raw: Any) -> tuple[dict[str, str], int]:
    """Validated parameters (as the job shows them) and how long the action itself may take."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise BadRequest("params must be a JSON object")
    timed = ACTIONS[action][1]
    allowed = {"seconds"} if timed else set()
    unknown = set(raw) - allowed
    if unknown:
        raise BadRequest(f"action {action!r} takes no parameter {sorted(unknown)[0]!r}")
    if not timed:
        return {}, 0
    seconds = raw.get("seconds", 30)
    if not isinstance(seconds, int) or isinstance(seconds, bool) or not 1 <= seconds <= 3600:
        raise BadRequest("params.seconds must be a whole number of seconds from 1 to 3600")
    return {"seconds": str(seconds)}, seconds


def not_found(exc: JobNotFound) -> tuple[Response, int]:
    return jsonify(error="not_found", message=str(exc)), 404


def conflict(exc: JobConflict) -> tuple[Response, int]:
    return jsonify(error="conflict", message=str(exc)), 409


def task_with_result(job: Job, node_id: str) -> Task:
    """The job's task on `node_id`, which must have a result file."""
    task = job.tasks.get(node_id)
    if task is None:
        raise JobNotFound(f"job {job.job_id} has no node {node_id!r} (nodes: {', '.join(job.tasks)})")
    if not task.file:
        raise JobConflict(f"node {node_id} has no result: {task.state}"
                          + (f" ({task.reason})" if task.reason else ""))
    return task


class DiagnosticsRoutes:
    """The /diagnostics endpoints over one runtime, each view a method (registered from ROUTES): start, list,
    show, download and cancel jobs, and fetch an agent's automatic captures."""

    def __init__(self, runtime: ProxyRuntime) -> None:
        self.runtime = runtime
        self.jobs = runtime.jobs

    def job_or_404(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            recent = [j.job_id for j in self.jobs.list(20)]
            raise UnknownValue("job_id", job_id, recent, 404, f"no diagnostics job {job_id!r} (finished jobs "
                               f"are evicted oldest first; recent: {', '.join(recent) or 'none'})")
        return job

    @control
    def start(self) -> tuple[Response, int]:
        body = json_body({"action": str, "params": dict, "target": (str, dict)})
        action = body.get("action")
        if action not in ACTIONS:
            raise BadRequest(f"action must be one of {', '.join(ACTIONS)}")
        params, duration = _params(action, body.get("params"))
        target, records, unknown = resolve_target(body, self.runtime)
        suffix, _ = ACTIONS[action]
        job = self.jobs.submit(action=action, request=_request(action, duration), params=params, target=target,
                               requested_by=principal_name(), suffix=suffix, records=records, unknown_nodes=unknown,
                               timeout_s=duration + self.runtime.settings.diagnostics_slack)
        audit_detail(job_id=job.job_id, nodes=sorted(job.tasks))
        return jsonify({**job.to_json(), "url": f"/diagnostics/{job.job_id}"}), 202

    def list_jobs(self) -> Response:
        args = query_args({"limit": None, "automatic": ("true", "false")})
        limit = whole_number_arg(args, "limit", 50, 1, 1_000_000)
        automatic: list[dict[str, Any]] = []
        missing: list[dict[str, str]] = []
        if args.get("automatic", "true") == "true":
            automatic, missing = _automatic_captures(self.runtime)
        return jsonify(jobs=[job.summary() for job in self.jobs.list(limit)], automatic=automatic,
                       automatic_missing=missing)

    def automatic_artifact(self, node_id: str, file_name: str) -> Response:
        query_args({})
        records = self.runtime.registry.list(node_id=node_id, status=ONLINE)
        check_node(self.runtime.registry, node_id)
        if not records:
            raise JobNotFound(f"no online agent for node {node_id!r}")
        result = self.runtime.commands.run_all(records[:1], pb.AutomaticFetchRequest(file=file_name),
                                               self.runtime.settings.command_timeout)[0]
        if not result.ok:
            raise JobNotFound(f"node {node_id} cannot provide {file_name!r}: {result.state} ({result.error})")
        return Response(result.data, mimetype="application/octet-stream",
                        headers={"Content-Disposition": f"attachment; filename={node_id}-{file_name}"})

    def show(self, job_id: str) -> Response:
        query_args({})
        return jsonify(self.job_or_404(job_id).to_json())

    def bundle(self, job_id: str) -> Response | tuple[Response, int]:
        job = self.job_or_404(job_id)
        if not job.finished:
            raise JobConflict(f"job {job_id} is still running; the bundle is made once every node has finished")
        try:
            bundle_path = self.jobs.bundle(job)
        except OSError as exc:
            return jsonify(error="unavailable", message=f"cannot build the bundle of job {job_id}: "
                                                        f"{exc.strerror or exc} (retry later)"), 503
        return send_file(bundle_path, mimetype="application/gzip", as_attachment=True,
                         download_name=f"fodc-{job_id}-{job.action}.tar.gz")

    def artifact_summary(self, job_id: str, node_id: str) -> Response:
        sample_type, top = summary_args()
        job = self.job_or_404(job_id)
        task = task_with_result(job, node_id)
        if job.suffix != ".pb.gz":
            raise NotAProfile(f"job {job_id} is a {job.action} job; only profiles have a summary")
        return jsonify(summarise_file(job.directory / task.file, sample_type, top))

    def artifact(self, job_id: str, node_id: str) -> Response:
        job = self.job_or_404(job_id)
        task = task_with_result(job, node_id)
        # The file type is the proxy's own: an agent's content_type is its word only (text/html from a hostile
        # agent would make the proxy serve a page on its own origin).
        mimetype = "application/json" if job.suffix == ".json" else "application/octet-stream"
        return send_file(job.directory / task.file, mimetype=mimetype, as_attachment=True,
                         download_name=f"{node_id}-{job.action}{job.suffix}")

    @control
    def cancel(self, job_id: str) -> tuple[Response, int]:
        job = self.job_or_404(job_id)
        audit_detail(job_id=job_id)
        if job.finished:
            self.jobs.delete(job)
            return jsonify(job_id=job_id, deleted=True), 200
        asked = self.jobs.cancel(job)
        return jsonify(job_id=job_id, cancelling=asked), 202


# (method, rule, view): the endpoint of each is "diagnostics.<view>"
ROUTES: tuple[Route, ...] = (
    ("POST", "/diagnostics", "start"),
    ("GET", "/diagnostics", "list_jobs"),
    ("GET", "/diagnostics/automatic/<node_id>/<file_name>", "automatic_artifact"),
    ("GET", "/diagnostics/<job_id>", "show"),
    ("GET", "/diagnostics/<job_id>/bundle", "bundle"),
    ("GET", "/diagnostics/<job_id>/<node_id>/summary", "artifact_summary"),
    ("GET", "/diagnostics/<job_id>/<node_id>", "artifact"),
    ("DELETE", "/diagnostics/<job_id>", "cancel"),
)


def diagnostics_blueprint(runtime: ProxyRuntime) -> Blueprint:
    bp = Blueprint("diagnostics", __name__)
    bp.register_error_handler(JobNotFound, not_found)
    register_errors(bp)
    bp.register_error_handler(JobConflict, conflict)
    return register_routes(bp, DiagnosticsRoutes(runtime), ROUTES)
