"""Faults at cluster scale: a silently frozen proxy, an agent killed while it streams a large window."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

from procs import free_port, http_get, http_json, start_agent, start_proxy, wait_for

from fodc.sim.launcher import start_sim_node


def test_an_agent_notices_a_frozen_proxy_and_comes_back_when_it_thaws(tmp_path, daemons):
    """SIGSTOP makes the proxy a black hole (no FIN, no RST): only keepalive or the send deadline can tell."""
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    agent = start_agent(tmp_path, proxy.grpc_addr, "liaison", "frozen-peer", "--send-timeout", "3s")
    daemons.append(agent)
    wait_for(lambda: proxy.cluster(status="online"), what="agent online")
    registered_before = agent.log().count("registered with proxy")
    worker = proxy.worker_pid()  # the gunicorn worker holds the gRPC server; the master would not matter
    os.kill(worker, signal.SIGSTOP)
    try:
        wait_for(lambda: "proxy stream ended; reconnecting" in agent.log()
                 or "stream to the proxy is stuck" in agent.log(), 60, interval=0.5,
                 what="the agent noticing the frozen proxy")
    finally:
        os.kill(worker, signal.SIGCONT)
    wait_for(lambda: agent.log().count("registered with proxy") > registered_before, 60, interval=0.5,
             what="the agent registered again")
    nodes = wait_for(lambda: (n := proxy.cluster()) and all(x["status"] == "online" for x in n) and n, 30,
                     what="online again")
    assert [n["node_id"] for n in nodes] == ["frozen-peer"]  # one entry, not a stale duplicate


def test_an_agent_killed_during_a_large_window_answer_is_named_and_the_answer_stays_valid(tmp_path, daemons):
    proxy = start_proxy(tmp_path, "--metrics-timeout", "10s")
    daemons.append(proxy)
    nodes, agents = [], {}
    try:
        for node_id in ("big-1", "big-2"):
            node = start_sim_node("datanode-hot", free_port(), series=3000)
            nodes.append(node)
            agents[node_id] = start_agent(tmp_path, proxy.grpc_addr, "datanode-hot", node_id, "--node-metrics-url",
                                          node.metrics_url, "--scrape-interval", "0.5s", "--scrape-timeout", "0.5s")
            daemons.append(agents[node_id])
        wait_for(lambda: len(proxy.cluster(status="online")) == 2, what="agents online")
        time.sleep(6)  # a dozen scrapes of 3,000 series each: tens of thousands of points per agent
        killer = threading.Timer(0.05, agents["big-2"].kill9)
        killer.start()
        status, _, body = http_get(f"{proxy.url}/metrics-windows?start={int(time.time()) - 600}", timeout=60)
        killer.join()
    finally:
        for node in nodes:
            node.stop()
    assert status == 200
    answer = json.loads(body)  # complete, valid JSON whatever the moment of the kill
    by_node = {s["node_id"] for s in answer["series"]}
    assert "big-1" in by_node
    missing = {m["node_id"]: m["reason"] for m in answer["missing_agents"]}
    if "big-2" in missing:
        assert missing["big-2"]
    else:  # the whole answer was out before the kill landed
        assert answer["agents_answered"] == 2
    assert proxy.cluster(node_id="big-1")[0]["status"] == "online"


def test_an_agent_clock_jump_loses_neither_the_agent_nor_a_scrape(tmp_path, daemons):
    """A backward jump: scrapes carry on along the window's own timeline (monotonic pace), said in /cluster and
    not a node down; a forward jump is simply later points, and the host clock is followed again."""
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    offset = tmp_path / "clock-offset"
    offset.write_text("0")
    node = start_sim_node("liaison", free_port(), series=50)
    try:
        agent = start_agent(tmp_path, proxy.grpc_addr, "liaison", "jumpy", "--node-metrics-url", node.metrics_url,
                            "--scrape-interval", "0.3s", "--scrape-timeout", "0.3s", "--incident-node-down-for",
                            "1s", "--incident-check-interval", "0.3s",
                            env={"FODC_TEST_HOOKS": "1", "FODC_TEST_CLOCK_OFFSET_FILE": str(offset)})
        daemons.append(agent)
        wait_for(lambda: proxy.cluster(status="online"), what="agent online")

        def points() -> list[int]:
            status, _, body = http_get(f"{proxy.url}/metrics-windows?node_id=jumpy&name=banyandb_system_cpu_state"
                                       f"&start=1&end={int(time.time()) + 7200}")
            return sorted({t for s in json.loads(body)["series"] for t, _ in s["points"]})
        before = wait_for(lambda: (p := points()) and p[-1], what="points")

        offset.write_text("-3600")  # the agent's clock goes back an hour
        runtime = wait_for(lambda: (r := proxy.cluster(node_id="jumpy")[0]["runtime"]).get("clock_steps_back")
                           and r, 20, what="the step back reported")
        assert runtime["clock_steps_back"] == "1" and float(runtime["clock_behind_s"]) > 3500
        carried = wait_for(lambda: len([t for t in points() if t > before]) >= 5 and points(), 20,
                           what="scrapes kept after the step back")
        assert "refused" not in runtime.get("scrape_last_error", "") and runtime["scrape_targets_up"] == "1/1"
        assert all(t < before + 600_000 for t in carried)  # the old timeline: no hour-long hole, no overlap
        assert proxy.cluster(node_id="jumpy")[0]["status"] == "online"  # liveness uses the proxy's clock only

        offset.write_text("3600")  # and an hour forward: later points, accepted at once
        after = wait_for(lambda: (n := points()[-1]) > before + 3_000_000 and n, 20, what="points after the jump")
        assert after > carried[-1]
        wait_for(lambda: proxy.cluster(node_id="jumpy")[0]["runtime"].get("clock_behind_s") == "0.0", 20,
                 what="the host clock followed again")
        status, body = http_json(f"{proxy.url}/incidents?node_id=jumpy&trigger=node-down")
        assert status == 200 and body["incidents"] == []  # the node never went down
    finally:
        node.stop()
