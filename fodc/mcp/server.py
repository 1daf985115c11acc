"""FODC's Model Context Protocol server: the proxy's HTTP API as tools an AI assistant can call, the runbook and
incident manifests as resources, and prompts that chain the tools the way docs/runbook.md does.

Every tool is a thin reader of one or two API calls (through fodc.cli.client, as the CLI), its arguments typed
and bounded by the input schema, its answer cut to fit a model's context (fodc.mcp.fit). Whatever the proxy
refuses comes back as a tool error with the proxy's reason; nothing a caller sends can stop the server.
"""

from __future__ import annotations

import copy
import json
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from pydantic import Field

import fodc
from fodc import __version__
from fodc.cli.client import CliError, ProxyClient
from fodc.cli.profile import FINAL, KINDS
from fodc.cli.snapshot import save_part, snapshot_parts
from fodc.mcp.fit import finish, head, stats, thin
from fodc.proxy.access import CLIENT_HEADER

# Argument types: every string and number bounded, so a hostile call is refused by the schema itself.
NodeId = Annotated[str, Field(min_length=1, max_length=128, description="a node id, as fodc cluster lists it")]
Role = Annotated[str, Field(min_length=1, max_length=64, description="a node role, e.g. datanode-hot, liaison")]
When = Annotated[str, Field(min_length=1, max_length=64, description="a duration ago (90s, 15m, 2h, 7d), "
                            "RFC 3339, unix seconds or unix ms")]
Limit = Annotated[int, Field(ge=1, le=200, description="at most this many entries")]

RUNBOOK_URI = "fodc://docs/runbook"
# Where docs/runbook.md is: the source tree, or where the Debian packages put it.
RUNBOOK_PATHS = (Path(fodc.__file__).resolve().parent.parent / "docs" / "runbook.md",
                 Path("/usr/share/fodc-proxy/runbook.md"), Path("/usr/share/fodc-cli/runbook.md"))
CONTROL_TOOLS = ("take_profile", "capture_config")
MAX_POINTS_PER_SERIES = 60


def client_name(ctx: Context | None) -> str:
    """The MCP client's own name (from its initialize/_meta), for the proxy's audit line."""
    try:
        params = ctx.session.client_params if ctx is not None else None
        info = params.client_info if params is not None else None
        return f"{info.name[:64]}/{(info.version or '')[:32]}" if info is not None else "unnamed"
    except (AttributeError, LookupError, ValueError):  # outside a request: no session
        return "unnamed"


class Tools:
    """Each MCP tool is one method here (its docstring is the description the model reads, its signature the
    input schema); build_server registers them from the tables below. The methods share one way to the
    proxy: the client of each call, with the MCP client's name for the audit line, and the proxy's refusal
    turned into a tool error."""

    def __init__(self, base: ProxyClient,
                 client_for: Callable[[ProxyClient, Context | None], ProxyClient] | None = None) -> None:
        self.base = base
        self.client_for = client_for

    def api(self, ctx: Context | None) -> ProxyClient:
        if self.client_for is not None:
            return self.client_for(self.base, ctx)
        client = copy.copy(self.base)
        client.extra_headers = {**self.base.extra_headers, CLIENT_HEADER: f"mcp:{client_name(ctx)}"}
        return client

    def _get(self, ctx: Context | None, path: str, params: dict[str, str | None] | None = None) -> Any:
        try:
            return self.api(ctx).get(path, params)
        except CliError as exc:
            raise ToolError(str(exc)) from None

    def _send(self, ctx: Context | None, path: str, body: Any) -> Any:
        try:
            return self.api(ctx).send("POST", path, body)
        except CliError as exc:
            raise ToolError(str(exc)) from None

    def cluster_overview(self, ctx: Context, role: Role | None = None, limit: Limit = 50) -> str:
        """Every node the proxy knows: counts online/unconnected by role, and per node its role, status, last
        heartbeat and notes (e.g. 'node not answering')."""
        body = self._get(ctx, "/cluster", {"role": role})
        left: dict[str, str] = {}
        nodes = [{"node_id": n["node_id"], "role": n["role"], "status": n["status"],
                  "last_heartbeat": n["last_heartbeat"], "notes": n.get("notes")} for n in body["nodes"]]
        return finish({"summary": body["summary"], "nodes": head(nodes, limit, "nodes", left)}, left)

    def node_detail(self, ctx: Context, node_id: NodeId, incidents: Annotated[int, Field(ge=0, le=50)] = 5) -> str:
        """One node: registration (addresses, labels, host, agent version, capabilities, runtime, notes) and
        its newest incidents."""
        body = self._get(ctx, "/cluster", {"node_id": node_id})
        if not body["nodes"]:
            raise ToolError(f"no node {node_id!r} (see cluster_overview)")
        found = self._get(ctx, "/incidents", {"node_id": node_id})
        left: dict[str, str] = {}
        listed = [_incident_line(i) for i in found["incidents"]]
        return finish({"node": body["nodes"][0], "incidents": head(listed, incidents, "incidents", left)}, left)

    def query_window(self, ctx: Context,
                     name: Annotated[str, Field(min_length=1, max_length=512, description=(
                         "series names or globs, comma-separated, or ~REGEX"))],
                     node_id: NodeId | None = None, role: Role | None = None, since: When = "15m",
                     until: When | None = None,
                     step: Annotated[str, Field(min_length=1, max_length=16, description=(
                         "downsampling step, e.g. 30s, 1m (a bare number is seconds)"))] = "1m",
                     agg: Literal["last", "min", "max", "avg"] = "avg",
                     max_series: Annotated[int, Field(ge=1, le=100)] = 20,
                     points: Annotated[int, Field(ge=2, le=MAX_POINTS_PER_SERIES)] = 30) -> str:
        """The agents' flight-recorder window, downsampled: per series its node, labels, summary statistics
        (first, last, min, max, mean) and at most `points` [unix_ms, value] points; never raw points."""
        body = self._get(ctx, "/metrics-windows", {"name": name, "node_id": node_id, "role": role, "start": since,
                                                   "end": until, "step": step, "agg": agg})
        left: dict[str, str] = {}
        series = sorted((_window_series(s, points) for s in body["series"]),
                        key=lambda s: (s["name"], s["node_id"], json.dumps(s["labels"], sort_keys=True)))
        thinned = sum(1 for s in series if s["stats"]["points"] > len(s["points"]))
        if thinned:
            left["points"] = f"{thinned} series thinned to {points} evenly spaced points (stats use them all)"
        return finish({"step": step, "agg": agg, "series": head(series, max_series, "series", left),
                       "missing_agents": body.get("missing_agents", [])}, left)

    def list_incidents(self, ctx: Context, node_id: NodeId | None = None, role: Role | None = None,
                       trigger: Annotated[str, Field(min_length=1, max_length=128)] | None = None,
                       since: When | None = None, until: When | None = None, limit: Limit = 20) -> str:
        """Incidents (first occurrences frozen by the agents), newest first: id, node, role, trigger, time,
        onset, summary, state, and where the bundle is kept."""
        body = self._get(ctx, "/incidents", {"node_id": node_id, "role": role, "trigger": trigger, "since": since,
                                             "until": until})
        left: dict[str, str] = {}
        listed = [_incident_line(i) for i in body["incidents"]]
        return finish({"incidents": head(listed, limit, "incidents", left), "missing": body["missing"]}, left)

    def triage_incident(self, ctx: Context, node_id: NodeId,
                        incident_id: Annotated[str, Field(min_length=1, max_length=128)],
                        top: Annotated[int, Field(ge=1, le=50)] = 10) -> str:
        """Triage of one incident from its bundle: trigger and onset, what could not be collected, the series
        that changed most at the onset (before/after, without their points), series that stopped or started,
        crash report, configuration changes since the previous snapshot, and the node's last log lines."""
        view = self._get(ctx, f"/incidents/{seg(node_id)}/{seg(incident_id)}/view", {"top": str(top)})
        left: dict[str, str] = {}
        changes = [{k: v for k, v in c.items() if k != "points"} for c in view["changes"]]
        if any(c.get("points") for c in view["changes"]):
            left["changes.points"] = "each change's points left out (query_window shows the series)"
        config = view.get("config") or {}
        if config:
            left["config"] = "the full configuration snapshot left out: its hash is shown (config tool)"
        result = {"incident": view["incident"], "split": view["split"], "compared": view["compared"],
                  "changes": changes, "stopped": view["stopped"], "started": view["started"],
                  "crash": view.get("crash"), "errors": view["manifest"].get("errors", {}),
                  "config_hash": config.get("hash"), "config_previous": view.get("config_previous"),
                  "config_changes": view.get("config_changes"), "profiles": view.get("profiles", []),
                  "log_tail": view["log_tail"]}
        return finish(result, left)

    def config(self, ctx: Context, node_id: NodeId | None = None, role: Role | None = None,
               flags: Annotated[bool, Field(description="include each node's flags")] = True,
               limit: Limit = 20) -> str:
        """The nodes' latest configuration snapshots: when captured, hash, process, flags (when asked) and what
        could not be read."""
        body = self._get(ctx, "/cluster/config", {"node_id": node_id, "role": role})
        left: dict[str, str] = {}
        nodes = [_config_line(node, flags) for node in body["nodes"]]
        return finish({"nodes": head(nodes, limit, "nodes", left), "missing": body["missing"]}, left)

    def config_drift(self, ctx: Context, role: Role | None = None, node_id: NodeId | None = None,
                     ignore: Annotated[list[Annotated[str, Field(max_length=128)]], Field(max_length=16)] = [],  # noqa: B006
                     ) -> str:
        """Configuration drift between nodes of the same role: per role the settings whose values differ,
        with each node's value (expected per-node differences such as ports are ignored); `ignore` adds globs
        like 'flag.max-*'."""
        body = self._get(ctx, "/cluster/config/drift", {"role": role, "node_id": node_id,
                                                        "ignore": ",".join(ignore) or None})
        return finish(body, {})

    def list_profiles(self, ctx: Context, node_id: NodeId | None = None, role: Role | None = None,
                      since: When | None = None, limit: Limit = 20) -> str:
        """The agents' periodic profiles (CPU and heap ring), newest first: node, kind, length, size, name (give
        the name to profile_top)."""
        body = self._get(ctx, "/profiles", {"node_id": node_id, "role": role, "since": since})
        left: dict[str, str] = {}
        listed = [{k: p.get(k) for k in ("node_id", "role", "name", "kind", "taken", "seconds", "size")}
                  for p in body["profiles"]]
        return finish({"profiles": head(listed, limit, "profiles", left), "missing": body["missing"]}, left)

    def profile_top(self, ctx: Context, node_id: NodeId,
                    name: Annotated[str, Field(min_length=1, max_length=128, description="as list_profiles")],
                    sample_type: Annotated[str, Field(min_length=1, max_length=64)] | None = None,
                    top: Annotated[int, Field(ge=1, le=50)] = 15) -> str:
        """`pprof top` of one ring profile: sample types, total, and the top functions by flat and cum."""
        body = self._get(ctx, f"/profiles/{seg(node_id)}/{seg(name)}/summary",
                         {"sample_type": sample_type, "top": str(top)})
        return finish(_top_only(body), {"flame": "the flame tree left out (the console draws it)"})

    def take_profile(self, ctx: Context, kind: Literal[KINDS],  # type: ignore[valid-type]
                     node_ids: Annotated[list[NodeId], Field(max_length=50)] | None = None,
                     role: Role | None = None,
                     seconds: Annotated[int, Field(ge=1, le=300, description="CPU profile length")] = 10,
                     wait: Annotated[int, Field(ge=1, le=600, description="seconds to wait for it")] = 60,
                     top: Annotated[int, Field(ge=1, le=30)] = 10) -> str:
        """Run a diagnostics job (needs an operator token; audited with this MCP client's name): profile
        `kind` on the given nodes, or a role, or every node; waits for it and returns each node's state and,
        for a profile, its top functions."""
        if node_ids and role:
            raise ToolError("give node_ids or role, not both")
        target: Any = {"node_ids": node_ids} if node_ids else {"role": role} if role else "all"
        body: dict[str, Any] = {"action": kind, "target": target}
        if kind == "cpu":
            body["params"] = {"seconds": seconds}
        job = self._finished_job(ctx, self._send(ctx, "/diagnostics", body),
                                 time.monotonic() + wait + (seconds if kind == "cpu" else 0))
        left: dict[str, str] = {}
        tasks = [self._task_line(ctx, job["job_id"], task, kind, top) for task in job["tasks"]]
        finished = all(t["state"] in FINAL for t in job["tasks"])
        return finish({"job_id": job["job_id"], "state": job["state"], "finished": finished,
                       "tasks": head(tasks, 50, "tasks", left)}, left)

    def _finished_job(self, ctx: Context, job: dict[str, Any], deadline: float) -> dict[str, Any]:
        """The job once every task is final, or as it stands at the deadline."""
        while not all(t["state"] in FINAL for t in job["tasks"]) and time.monotonic() < deadline:
            time.sleep(0.5)
            job = self._get(ctx, f"/diagnostics/{seg(job['job_id'])}")
        return job

    def _task_line(self, ctx: Context, job_id: str, task: dict[str, Any], kind: str, top: int) -> dict[str, Any]:
        """One node's task of a job, with its profile's top functions when it has one (or why not)."""
        entry = {k: task.get(k) for k in ("node_id", "role", "state", "reason", "size")}
        if task["state"] == "done" and kind != "config":
            try:
                path = f"/diagnostics/{seg(job_id)}/{seg(task['node_id'])}/summary"
                entry["summary"] = _top_only(self._get(ctx, path, {"top": str(top)}))
            except ToolError as exc:
                entry["summary_error"] = str(exc)
        return entry

    def capture_config(self, ctx: Context, node_id: NodeId | None = None, role: Role | None = None,
                       all_nodes: bool = False) -> str:
        """Capture a fresh configuration snapshot (needs an operator token; audited with this MCP client's
        name) of one node, a role, or every node (all_nodes): returns each node's hash and unreadable
        parts."""
        chosen = [x for x in (node_id, role, all_nodes or None) if x]
        if len(chosen) != 1:
            raise ToolError("give exactly one of node_id, role, all_nodes")
        body = {"scope": "all"} if all_nodes else {"scope": "node", "node_id": node_id} if node_id else \
            {"scope": "role", "role": role}
        answer = self._send(ctx, "/cluster/config/capture", body)
        left: dict[str, str] = {}
        captured = [{k: c.get(k) for k in ("node_id", "role", "captured_at", "hash", "errors")}
                    for c in answer["captured"]]
        return finish({"scope": answer["scope"], "captured": head(captured, 50, "captured", left),
                       "missing": answer["missing"]}, left)

    def snapshot_manifest(self, ctx: Context, since: When = "15m",
                          name: Annotated[str, Field(max_length=512)] | None = None, role: Role | None = None) -> str:
        """What `fodc snapshot` would archive now: each part (health, cluster, config, drift, incidents, jobs,
        window, metrics) with its API path, size and sha256, or why it failed. Nothing is written."""
        files: dict[str, dict[str, object]] = {}
        errors: dict[str, str] = {}
        with tempfile.TemporaryDirectory(prefix="fodc-mcp-") as tmp:
            for part, path, params in snapshot_parts(since, name, role):
                try:
                    save_part(self.api(ctx), Path(tmp), part, path, params, files, errors)
                except CliError as exc:
                    raise ToolError(str(exc)) from None
        return finish({"format": "fodc-snapshot/1", "since": since, "files": files, "errors": errors}, {})

    def incident_manifest(self, node_id: str, incident_id: str, ctx: Context) -> str:
        try:
            view = self.api(ctx).get(f"/incidents/{seg(node_id[:128])}/{seg(incident_id[:128])}/view", {"top": "1"})
        except CliError as exc:
            raise ResourceError(str(exc)) from None
        return finish({**view["manifest"], "files": view["files"]}, {})


# The tools in the order a client lists them; the control ones only on an operator's server.
READ_TOOLS = ("cluster_overview", "node_detail", "query_window", "list_incidents", "triage_incident", "config",
              "config_drift", "list_profiles", "profile_top")
LAST_TOOLS = ("snapshot_manifest",)


def runbook() -> str:
    for path in RUNBOOK_PATHS:
        if path.is_file():
            return path.read_text()
    raise ResourceError("the runbook is not installed here (docs/runbook.md)")


def investigate_incident(node_id: str, incident_id: str) -> str:
    return (f"Investigate FODC incident {incident_id} on node {node_id}, following the runbook "
            f"({RUNBOOK_URI}).\n"
            f"1. node_detail node_id={node_id}: its role, status and notes.\n"
            f"2. triage_incident node_id={node_id} incident_id={incident_id}: trigger, onset, what was not "
            "collected, the series that changed most, crash report, config changes, log tail.\n"
            "3. query_window on the top changed series for this node, from a little before the onset to now, "
            "to see whether it recovered.\n"
            "4. config_drift for the node's role: does its configuration differ from its peers?\n"
            "5. list_profiles for the node around the onset, and profile_top of the nearest CPU and heap "
            "profiles.\n"
            "Then say what happened first, the likely cause, the evidence for it, and what to check next.")


def why_is_node_slow(node_id: str) -> str:
    return (f"Find out why BanyanDB node {node_id} is slow, following the runbook ({RUNBOOK_URI}).\n"
            f"1. node_detail node_id={node_id}: status, notes, capabilities (KTM), recent incidents.\n"
            f"2. query_window node_id={node_id} for CPU, memory, GC and request latency series "
            "(e.g. name=\"banyandb_system_cpu*,go_gc*,go_memstats*\", since=1h) and compare with a peer of "
            "the same role.\n"
            f"3. list_incidents node_id={node_id} since=24h; triage_incident the newest.\n"
            "4. config_drift for its role.\n"
            f"5. list_profiles node_id={node_id} and profile_top of the newest cpu and heap profiles.\n"
            "Then name the bottleneck (CPU, memory/GC, disk, configuration) with the numbers that show it.")


def build_server(base: ProxyClient, control: bool = True,
                 client_for: Callable[[ProxyClient, Context | None], ProxyClient] | None = None) -> MCPServer:
    """The server over `base` (a ProxyClient with the proxy URL, token and TLS). `control=False` leaves the
    control tools out (a viewer's server); `client_for` gives the client of one request (default: `base` with
    the MCP client's name in X-FODC-Client)."""
    server = MCPServer("fodc", version=__version__, instructions=(
        "Diagnostics of an Apache SkyWalking BanyanDB cluster from FODC's proxy. Start with cluster_overview "
        "and list_incidents; follow the runbook resource (fodc://docs/runbook). Results are capped: a "
        "'left_out' key says what was cut; narrow the query to see it."))
    tools = Tools(base, client_for)
    for name in (*READ_TOOLS, *(CONTROL_TOOLS if control else ()), *LAST_TOOLS):
        server.tool()(getattr(tools, name))
    server.resource(RUNBOOK_URI, name="runbook", mime_type="text/markdown",
                    description="From an alert to the first occurrence: what to do, in order (docs/runbook.md)",
                    )(runbook)
    server.resource("fodc://incidents/{node_id}/{incident_id}/manifest", name="incident-manifest",
                    mime_type="application/json",
                    description="An incident bundle's manifest: trigger, onset, files and what was not collected",
                    )(tools.incident_manifest)
    server.prompt(name="investigate_incident", description="Investigate incident X step by step, per the runbook",
                  )(investigate_incident)
    server.prompt(name="why_is_node_slow", description="Why is node N slow: the runbook's checks for one node",
                  )(why_is_node_slow)
    return server


def seg(text: str) -> str:
    """One URL path segment: a '/' or '..' in an argument never reaches another API path."""
    return urllib.parse.quote(text, safe="")


def _incident_line(incident: dict[str, Any]) -> dict[str, Any]:
    return {k: incident.get(k) for k in ("id", "node_id", "role", "trigger", "at", "onset", "summary", "state",
                                         "kept")}


def _top_only(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k != "flame"}


def _window_series(series: dict[str, Any], points: int) -> dict[str, Any]:
    """One series of a window answer as the model reads it: statistics of all its points, a few of them."""
    values = [p[1] for p in series["points"]]
    return {"name": series["name"], "node_id": series["node_id"], "role": series["node_role"],
            "labels": series.get("labels", {}), "type": series.get("type"), "stats": stats(values),
            "points": thin(series["points"], points)}


def _config_line(node: dict[str, Any], flags: bool) -> dict[str, Any]:
    snap = node["snapshot"]
    entry = {"node_id": node["node_id"], "role": node["role"], "captured_at": snap.get("captured_at"),
             "hash": snap.get("hash"), "pid": (snap.get("process") or {}).get("pid"),
             "errors": snap.get("errors") or {}}
    if flags:
        entry["flags"] = snap.get("flags") or {}
    return entry
