"""The fleet's crashes: GET /crashes and `fodc crashes` group one panic on many nodes into one signature."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import test_incidents
from procs import BIN, http_json, wait_for
from test_incidents import complete, watched_node

from fodc.incident.crashgroups import crash_rows, group

cluster = test_incidents.cluster
FIXTURES = Path(__file__).parent / "fixtures" / "gocrash"


def _incident(node, at_ms, signature, message="boom", trigger="node-crash", role="datanode-hot"):
    return {"id": f"{at_ms}-{trigger}", "node_id": node, "role": role, "trigger": trigger, "at": str(at_ms),
            "at_ms": at_ms, "detail": {"crash": {"kind": "panic", "message": message, "signature": signature,
                                                 "top_frames": ["main.a (a.go:1)", "main.b (b.go:2)",
                                                                "main.c (c.go:3)", "main.d (d.go:4)"]}}}


def test_crashes_with_one_signature_are_one_group_counted_by_nodes():
    incidents = [_incident("n1", 100, "s1"), _incident("n2", 300, "s1"), _incident("n1", 200, "s1"),
                 _incident("n3", 250, "s2", "other"), _incident("n4", 50, "s1", role="liaison"),
                 {"id": "x", "node_id": "n5", "trigger": "node-down", "at_ms": 400, "detail": {}}]
    rows = crash_rows(incidents)
    assert [r["at_ms"] for r in rows] == [300, 250, 200, 100, 50]  # node-down without a crash left out
    assert rows[0]["top_frames"] == ["main.a (a.go:1)", "main.b (b.go:2)", "main.c (c.go:3)"]
    groups = group(rows)
    assert [(g["signature"], g["node_count"], g["count"]) for g in groups] == [("s1", 3, 4), ("s2", 1, 1)]
    assert groups[0]["nodes"] == ["n1", "n2", "n4"] and groups[0]["roles"] == ["datanode-hot", "liaison"]
    assert (groups[0]["first_at_ms"], groups[0]["last_at_ms"]) == (50, 300)
    assert group([]) == [] and crash_rows([{"detail": {"crash": "not a dict"}}]) == []
    odd = crash_rows([{"id": "x", "at_ms": "soon", "detail": {"crash": {"signature": ["a"], "top_frames": "abc",
                                                                       "message": 7}}}])
    assert odd[0]["top_frames"] == [] and odd[0]["message"] == "7" and group(odd)[0]["signature"] == "['a']"


def test_the_same_panic_on_three_nodes_is_one_signature_with_three_nodes(cluster, daemons):
    proxy, _, tmp_path = cluster
    text = (FIXTURES / "nil_map_write.txt").read_text()
    nodes = {name: watched_node(cluster, daemons, name) for name in ("hot-a", "hot-b", "hot-c")}
    wait_for(lambda: len(proxy.cluster(status="online")) == 3, 30, what="three agents online")
    for node in nodes.values():
        node.fault("crash", text=text)
    for name, node in nodes.items():
        assert node.popen.wait(10) == 2
        complete(proxy, "node-crash", name)

    status, body = http_json(f"{proxy.url}/crashes")
    assert status == 200, body
    assert len(body["crashes"]) == 3 and len(body["groups"]) == 1
    only = body["groups"][0]
    assert (only["node_count"], only["count"], only["kind"]) == (3, 3, "panic")
    assert only["nodes"] == ["hot-a", "hot-b", "hot-c"] and only["message"] == "assignment to entry in nil map"
    assert only["top_frames"][0].endswith("(*tsTable).mustAddDataPoints (tstable.go:287)")
    assert http_json(f"{proxy.url}/crashes?node_id=hot-b")[1]["groups"][0]["nodes"] == ["hot-b"]
    assert http_json(f"{proxy.url}/crashes?role=liaison")[1]["groups"] == []
    assert http_json(f"{proxy.url}/crashes?since=2099-01-01T00:00:00Z")[1]["crashes"] == []
    assert http_json(f"{proxy.url}/crashes?since=soon")[0] == 400
    assert http_json(f"{proxy.url}/crashes?role=cook")[0] == 400

    table = subprocess.run([str(BIN / "fodc"), "--proxy", proxy.url, "crashes"], capture_output=True, text=True,
                           timeout=60)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert len(lines) == 2 and lines[1].startswith("3 nodes") and "assignment to entry in nil map" in lines[1]
    assert all(len(line) <= 100 for line in lines)
    each = subprocess.run([str(BIN / "fodc"), "--proxy", proxy.url, "crashes", "--each"], capture_output=True,
                          text=True, timeout=60)
    assert each.returncode == 0 and len(each.stdout.splitlines()) == 4
    as_json = subprocess.run([str(BIN / "fodc"), "--proxy", proxy.url, "--json", "crashes", "--node", "hot-c"],
                             capture_output=True, text=True, timeout=60)
    assert json.loads(as_json.stdout)["crashes"][0]["node_id"] == "hot-c"
