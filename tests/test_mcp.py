"""`fodc mcp` driven by the MCP SDK's own client over stdio, against a real proxy (--auth all), agents, simulated
nodes and Debian's Prometheus as a real Go pprof target. Every tool's answer is compared with what the proxy's
HTTP API says to the same question."""

from __future__ import annotations

import hashlib
import json
import secrets
import ssl
import time
import urllib.request
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, Implementation, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from procs import (
    BIN,
    REPO,
    free_port,
    http_json,
    start_agent,
    start_https_proxy,
    start_prometheus,
    start_proxy,
    wait_for,
)

from fodc.mcp.fit import finish
from fodc.sim.launcher import start_sim_node

VIEWER = secrets.token_hex(16)
OPERATOR = secrets.token_hex(16)
CLIENT = Implementation(name="pytest-assistant", version="1.0")
READ_TOOLS = {"cluster_overview", "node_detail", "query_window", "list_incidents", "triage_incident", "config",
              "config_drift", "list_profiles", "profile_top", "snapshot_manifest"}
CONTROL_TOOLS = {"take_profile", "capture_config"}


def api(proxy, path: str, token: str = VIEWER, method: str = "GET", body=None):
    status, answer = http_json(f"{proxy.url}{path}", method=method, body=body,
                               headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert status in (200, 201, 202), (path, status, answer)
    return answer


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Proxy with viewer and operator tokens; hot-1 (pprof: Prometheus, a profile ring), hot-2; an incident."""
    tmp = tmp_path_factory.mktemp("mcp")
    daemons, nodes = [], []
    tokens = tmp / "tokens"
    tokens.write_text("".join(f"{name} {role} sha256:{hashlib.sha256(token.encode()).hexdigest()}\n"
                              for name, role, token in (("vera", "viewer", VIEWER), ("otto", "operator", OPERATOR))))
    try:
        prometheus, prom_url = start_prometheus(tmp, "global: {scrape_interval: 1s}\nscrape_configs: []\n")
        daemons.append(prometheus)
        proxy = start_proxy(tmp, "--auth", "all", "--auth-tokens-file", str(tokens), "--command-timeout", "10s")
        daemons.append(proxy)
        for node_id, flag, pprof in (("hot-1", "4G", prom_url), ("hot-2", "8G", "")):
            pid_file = tmp / f"{node_id}.pid"
            node = start_sim_node("datanode-hot", free_port(), extra_args=["--pid-file", str(pid_file),
                                                                           f"--max-memory={flag}"])
            nodes.append(node)
            wait_for(pid_file.exists, what="pid file")
            daemons.append(start_agent(
                tmp, proxy.grpc_addr, "datanode-hot", node_id, "--node-pid-file", str(pid_file),
                "--node-metrics-url", node.metrics_url, "--scrape-interval", "1s", "--scrape-timeout", "1s",
                "--node-pprof-url", pprof, "--incident-after", "1s", "--profile-every", "120s",
                "--profile-cpu-seconds", "1"))
        wait_for(lambda: len(api(proxy, "/cluster?status=online")["nodes"]) == 2, 30, what="agents online")
        api(proxy, "/incidents/capture", OPERATOR, "POST", {"target": {"node_ids": ["hot-1"]}, "reason": "mcp"})

        def incident():
            found = [i for i in api(proxy, "/incidents?node_id=hot-1")["incidents"] if i["state"] == "complete"]
            return found[0] if found else None
        yield {"proxy": proxy, "tmp": tmp, "incident": wait_for(incident, 60, interval=0.5, what="an incident")}
    finally:
        for daemon in reversed(daemons):
            daemon.stop()
        for node in nodes:
            node.stop()


class Session:
    """One `fodc mcp` process and the SDK client talking to it (all calls made inside anyio.run)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def call(self, tool: str, **arguments: Any) -> Any:
        """The tool's JSON answer; AssertionError with the text when it is a tool error."""
        result = await self.client.call_tool(tool, arguments)
        text = result.content[0].text
        assert not result.is_error, f"{tool}: {text}"
        return json.loads(text)

    async def error(self, tool: str, **arguments: Any) -> str:
        result = await self.client.call_tool(tool, arguments)
        assert result.is_error, f"{tool} should have failed: {result.content[0].text[:300]}"
        return result.content[0].text


def run_mcp(proxy, token: str, body, *extra: str) -> Any:
    """Runs `body(session)` against a fresh `fodc mcp` with this token; returns what it returns."""
    params = StdioServerParameters(command=str(BIN / "fodc"), args=["--proxy", proxy.url, "mcp", *extra],
                                   env={"FODC_TOKEN": token})

    async def main() -> Any:
        async with Client(params, client_info=CLIENT, read_timeout_seconds=120) as client:
            return await body(Session(client))
    return anyio.run(main)


def run_mcp_http(proxy, token: str, body) -> Any:
    """Runs `body(session)` against the proxy's own /mcp with this bearer token."""
    async def main() -> Any:
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
        async with http, Client(streamable_http_client(f"{proxy.url}/mcp", http_client=http),
                                client_info=CLIENT, read_timeout_seconds=120) as client:
            return await body(Session(client))
    return anyio.run(main)


def test_tools_resources_prompts_match_the_api(cluster):
    proxy, incident = cluster["proxy"], cluster["incident"]

    async def body(s: Session) -> None:
        tools = {t.name: t for t in (await s.client.list_tools()).tools}
        assert set(tools) == READ_TOOLS | CONTROL_TOOLS
        window_schema = tools["query_window"].input_schema
        assert window_schema["required"] == ["name"]
        assert window_schema["properties"]["agg"]["enum"] == ["last", "min", "max", "avg"]

        overview = await s.call("cluster_overview")
        nodes = api(proxy, "/cluster")["nodes"]
        assert {(n["node_id"], n["status"]) for n in overview["nodes"]} == \
            {(n["node_id"], n["status"]) for n in nodes}
        assert overview["summary"]["by_role"]["datanode-hot"]["online"] == 2

        detail = await s.call("node_detail", node_id="hot-1")
        assert detail["node"]["agent_id"] == next(n["agent_id"] for n in nodes if n["node_id"] == "hot-1")
        assert incident["id"] in [i["id"] for i in detail["incidents"]]

        listed = await s.call("list_incidents", node_id="hot-1")
        assert [i["id"] for i in listed["incidents"]] == \
            [i["id"] for i in api(proxy, "/incidents?node_id=hot-1")["incidents"]]

        triage = await s.call("triage_incident", node_id="hot-1", incident_id=incident["id"], top=5)
        view = api(proxy, f"/incidents/hot-1/{incident['id']}/view?top=5")
        assert triage["incident"]["id"] == incident["id"] and triage["split"] == view["split"]
        assert [c["series"] for c in triage["changes"]] == [c["series"] for c in view["changes"]]
        assert all("points" not in c for c in triage["changes"])
        assert triage["config_hash"] == view["config"]["hash"]

        config = await s.call("config", role="datanode-hot")
        by_node = {n["node_id"]: n for n in api(proxy, "/cluster/config?role=datanode-hot")["nodes"]}
        assert {n["node_id"]: n["hash"] for n in config["nodes"]} == \
            {k: n["snapshot"]["hash"] for k, n in by_node.items()}
        assert {n["flags"]["max-memory"] for n in config["nodes"]} == {"4G", "8G"}
        drift = await s.call("config_drift", role="datanode-hot")
        assert drift["roles"] == api(proxy, "/cluster/config/drift?role=datanode-hot")["roles"]
        assert drift["roles"]["datanode-hot"]["differences"]["flag.max-memory"] == {"hot-1": "4G", "hot-2": "8G"}

        # A closed range in the past: the tool and the API see the same points.
        wait_for(lambda: api(proxy, "/metrics-windows?node_id=hot-1&name=banyandb_system_cpu_state&start=20s")
                 ["series"], 20, what="window points")
        end_ms = int(time.time() * 1000) - 2000
        start_ms = end_ms - 60_000
        window = await s.call("query_window", name="banyandb_system_cpu_state", node_id="hot-1",
                              since=str(start_ms), until=str(end_ms), step="2s", agg="max", points=60)
        raw = api(proxy, f"/metrics-windows?node_id=hot-1&name=banyandb_system_cpu_state&start={start_ms}"
                         f"&end={end_ms}&step=2s&agg=max")["series"]
        assert len(window["series"]) == len(raw) > 0
        for got in window["series"]:
            want = next(r for r in raw if r["labels"] == got["labels"])
            values = [p[1] for p in want["points"]]
            assert got["stats"]["points"] == len(values)
            assert (got["stats"]["min"], got["stats"]["max"], got["stats"]["last"]) == \
                (min(values), max(values), values[-1])

        manifest = await s.call("snapshot_manifest", since="5m")
        assert set(manifest["files"]) == {"health.json", "cluster.json", "config.json", "config-drift.json",
                                          "incidents.json", "jobs.json", "window.json", "metrics.txt"}
        assert manifest["errors"] == {} and all(f["size"] > 0 for f in manifest["files"].values())

        resources = {str(r.uri) for r in (await s.client.list_resources()).resources}
        assert "fodc://docs/runbook" in resources
        runbook = await s.client.read_resource("fodc://docs/runbook")
        assert runbook.contents[0].text == (REPO / "docs" / "runbook.md").read_text()
        bundle = await s.client.read_resource(f"fodc://incidents/hot-1/{incident['id']}/manifest")
        assert json.loads(bundle.contents[0].text)["id"] == incident["id"]

        prompts = {p.name for p in (await s.client.list_prompts()).prompts}
        assert prompts == {"investigate_incident", "why_is_node_slow"}
        prompt = await s.client.get_prompt("investigate_incident", {"node_id": "hot-1", "incident_id": "x1"})
        text = prompt.messages[0].content.text
        assert "triage_incident node_id=hot-1 incident_id=x1" in text and "fodc://docs/runbook" in text
    run_mcp(proxy, VIEWER, body)


def test_results_are_capped_and_say_what_was_left_out(cluster):
    proxy = cluster["proxy"]

    async def body(s: Session) -> None:
        one = await s.call("cluster_overview", limit=1)
        assert len(one["nodes"]) == 1 and one["left_out"]["nodes"].startswith("1 of 2 not shown")
        window = await s.call("query_window", name="banyandb_*", since="30s", step="1s", max_series=3, points=2)
        assert len(window["series"]) == 3 and "series" in window["left_out"]
        assert all(len(s["points"]) <= 2 for s in window["series"])
        assert "points" in window["left_out"]
        listed = await s.call("list_incidents", limit=1)
        assert len(listed["incidents"]) == 1
    run_mcp(proxy, VIEWER, body)


def test_the_character_budget_halves_the_longest_list():
    result = {"small": [1, 2], "big": [{"n": i, "pad": "x" * 50} for i in range(1000)]}
    text = finish(result, {}, max_chars=5000)
    assert len(text) <= 5000
    answer = json.loads(text)
    assert answer["small"] == [1, 2] and 0 < len(answer["big"]) < 1000
    assert "cut to" in answer["left_out"]["big"]


def test_bad_arguments_are_tool_errors_and_the_server_goes_on(cluster):
    proxy = cluster["proxy"]

    async def body(s: Session) -> None:
        assert "step" in await s.error("query_window", name="x", step="soon")
        assert "limit" in await s.error("cluster_overview", limit=0)  # refused by the schema
        assert "name" in await s.error("query_window")  # a required argument missing
        assert "role" in (await s.error("cluster_overview", role="nope")).lower()
        assert "no node" in await s.error("node_detail", node_id="ghost")
        assert "404" in await s.error("triage_incident", node_id="hot-1", incident_id="nope")
        assert await s.error("query_window", name="x" * 5000)  # longer than the schema allows
        # One path segment each: no way to another API path (the proxy sees /profiles/hot-1/..%2F../summary).
        assert "404" in await s.error("profile_top", node_id="hot-1", name="../../cluster")
        assert "drop_tables" in await s.error("drop_tables")
        # Still serving after all of that.
        assert (await s.call("cluster_overview"))["summary"]["total"] == 2
    run_mcp(proxy, VIEWER, body)


def test_viewer_is_refused_control_and_operator_is_audited_by_client_name(cluster):
    proxy, tmp = cluster["proxy"], cluster["tmp"]

    async def viewer(s: Session) -> None:
        assert "403" in await s.error("capture_config", role="datanode-hot")
    run_mcp(proxy, VIEWER, viewer)

    async def viewer_only(s: Session) -> set[str]:
        return {t.name for t in (await s.client.list_tools()).tools}
    assert run_mcp(proxy, VIEWER, viewer_only, "--viewer") == READ_TOOLS

    async def operator(s: Session) -> tuple[Any, Any]:
        assert "exactly one" in await s.error("capture_config")
        captured = await s.call("capture_config", role="datanode-hot")
        job = await s.call("take_profile", kind="heap", node_ids=["hot-1"], wait=60, top=5)
        return captured, job
    captured, job = run_mcp(proxy, OPERATOR, operator)
    assert sorted(c["node_id"] for c in captured["captured"]) == ["hot-1", "hot-2"]
    assert job["finished"] and job["tasks"][0]["state"] == "done", job
    summary = api(proxy, f"/diagnostics/{job['job_id']}/hot-1/summary?top=5")
    assert job["tasks"][0]["summary"]["top"] == summary["top"] and summary["top"]
    assert "flame" not in job["tasks"][0]["summary"]

    audit = [json.loads(line) for line in Path(tmp / "proxy-audit.log").read_text().splitlines()]
    mine = [a for a in audit if a.get("client") == "mcp:pytest-assistant/1.0"]
    assert {(a["path"], a["who"], a["status"]) for a in mine} >= {
        ("/cluster/config/capture", "vera", 403), ("/cluster/config/capture", "otto", 200),
        ("/diagnostics", "otto", 202)}, mine


def test_ring_profiles_listed_and_summarised(cluster):
    proxy = cluster["proxy"]
    # The agent takes its first ring profiles about 30 s after it starts.
    profiles = wait_for(lambda: [p for p in api(proxy, "/profiles?node_id=hot-1")["profiles"] if p["kind"] == "heap"],
                        90, interval=1, what="a heap profile in hot-1's ring")

    async def body(s: Session) -> tuple[Any, Any]:
        # An argument is one path segment: a name carrying its own path and query cannot lift the top bound.
        smuggled = f"{profiles[0]['name']}/summary?top=500#"
        assert "404" in await s.error("profile_top", node_id="hot-1", name=smuggled)
        return await s.call("list_profiles", node_id="hot-1"), \
            await s.call("profile_top", node_id="hot-1", name=profiles[0]["name"], top=5)
    listed, top = run_mcp(proxy, VIEWER, body)
    assert profiles[0]["name"] in [p["name"] for p in listed["profiles"]]
    want = api(proxy, f"/profiles/hot-1/{profiles[0]['name']}/summary?top=5")
    assert top["top"] == want["top"] and top["total"] == want["total"] and "flame" not in top


def test_the_proxy_serves_mcp_over_http_behind_its_auth(cluster):
    proxy, tmp, incident = cluster["proxy"], cluster["tmp"], cluster["incident"]
    status, answer = http_json(f"{proxy.url}/mcp", "POST", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert status == 401, answer
    viewer_auth = {"Authorization": f"Bearer {VIEWER}", "Accept": "application/json, text/event-stream"}
    for junk in ("not json", {"jsonrpc": "2.0", "id": 1, "method": "no/such"}, ["x"] * 3):
        status, answer = http_json(f"{proxy.url}/mcp", "POST", junk, headers=viewer_auth)
        assert 400 <= status < 500 or (status == 200 and "error" in answer), (junk, status, answer)
    status, _ = http_json(f"{proxy.url}/mcp", "POST", "x" * (2 * 1024 * 1024), headers=viewer_auth)
    assert status == 413

    async def viewer(s: Session) -> None:
        assert {t.name for t in (await s.client.list_tools()).tools} == READ_TOOLS
        overview = await s.call("cluster_overview")
        assert sorted(n["node_id"] for n in overview["nodes"]) == \
            sorted(n["node_id"] for n in api(proxy, "/cluster")["nodes"])
        listed = await s.call("list_incidents", node_id="hot-1")
        assert incident["id"] in [i["id"] for i in listed["incidents"]]
        bundle = await s.client.read_resource(f"fodc://incidents/hot-1/{incident['id']}/manifest")
        assert json.loads(bundle.contents[0].text)["id"] == incident["id"]
        assert "capture_config" in await s.error("capture_config", role="datanode-hot")  # not offered
        assert "limit" in await s.error("cluster_overview", limit=10_000)
    run_mcp_http(proxy, VIEWER, viewer)

    async def operator(s: Session) -> Any:
        assert {t.name for t in (await s.client.list_tools()).tools} == READ_TOOLS | CONTROL_TOOLS
        return await s.call("capture_config", node_id="hot-2")
    captured = run_mcp_http(proxy, OPERATOR, operator)
    assert [c["node_id"] for c in captured["captured"]] == ["hot-2"]
    audit = [json.loads(line) for line in Path(tmp / "proxy-audit.log").read_text().splitlines()]
    assert any(a["path"] == "/cluster/config/capture" and a["who"] == "otto" and a["status"] == 200 and
               a.get("client", "").startswith("mcp-http:") and a["client"].endswith("from 127.0.0.1")
               for a in audit), audit[-3:]


def test_over_https_both_ways(tmp_path, daemons):
    """With --http-tls-*: stdio verifies the proxy with --ca; /mcp's own calls to the API go over TLS too."""
    proxy, ca = start_https_proxy(tmp_path, ca_name="mcp")
    daemons.append(proxy)
    url = f"https://localhost:{proxy.ports['http']}"
    context = ssl.create_default_context(cafile=str(ca.path))

    def up():
        with urllib.request.urlopen(f"{url}/health", timeout=2, context=context) as answer:
            return answer.status == 200
    wait_for(up, 30, what="proxy up over https")

    async def over_http() -> Any:
        async with httpx2.AsyncClient(verify=context) as http, \
                Client(streamable_http_client(f"{url}/mcp", http_client=http), client_info=CLIENT) as client:
            return await Session(client).call("cluster_overview")
    assert anyio.run(over_http)["summary"]["total"] == 0

    async def over_stdio() -> Any:
        params = StdioServerParameters(command=str(BIN / "fodc"), args=["--proxy", url, "--ca", str(ca.path), "mcp"])
        async with Client(params, client_info=CLIENT) as client:
            return await Session(client).call("cluster_overview")
    assert anyio.run(over_stdio)["summary"]["total"] == 0
