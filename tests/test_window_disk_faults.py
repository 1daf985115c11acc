"""The on-disk window when the disk misbehaves under a running agent: its directory removed (`rm -rf`), and a
disk that fills up and frees again. Real agent, simulated node, proxy; the agent is killed with SIGKILL and
must come back with every point it held (less at most the interim interval)."""

from __future__ import annotations

import json
import re
import shutil
import time

import pytest
from disks import fill_disk
from procs import free_port, http_get, http_json, start_agent, start_proxy, wait_for

from fodc.sim.launcher import start_sim_node

FAMILY = "banyandb_system_cpu_state"
INTERIM = 3


@pytest.fixture
def node():
    sim = start_sim_node("datanode-hot", free_port(), series=200, seed=7)
    yield sim
    sim.stop()


def window_points(proxy) -> dict[str, set[int]]:
    status, body = http_json(f"{proxy.url}/metrics-windows?start=0&name={FAMILY}", timeout=30)
    assert status == 200 and body["missing_agents"] == [], body
    return {json.dumps(s["labels"], sort_keys=True): {t for t, _ in s["points"]} for s in body["series"]}


def agent_metric(agent, name: str, labels: str = "") -> float:
    text = http_get(f"{agent.url}/metrics")[2].decode()
    match = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else -1.0


class Life:
    """One agent on fixed ports and a fixed window directory, started again after each kill."""

    def __init__(self, tmp_path, daemons, proxy, node, window):
        self.tmp_path, self.daemons, self.proxy = tmp_path, daemons, proxy
        self.ports = {"http": free_port(), "node": free_port()}
        self.args = ["--node-metrics-url", node.metrics_url, "--scrape-interval", "200ms", "--scrape-timeout",
                     "200ms", "--window-dir", str(window), "--window-block-scrapes", "5",
                     "--window-interim-scrapes", str(INTERIM), "--window-file-bytes", "24KiB",
                     "--window-dir-bytes", "8MiB"]

    def start(self):
        agent = start_agent(self.tmp_path, self.proxy.grpc_addr, "datanode-hot", "hot-disk", *self.args,
                            node_port=self.ports["node"], http_port=self.ports["http"])
        self.daemons.append(agent)
        wait_for(lambda: self.proxy.cluster(node_id="hot-disk", status="online"), 30, what="agent online")
        return agent


def assert_kept_after_sigkill(life, agent):
    """Kills the agent, starts it again, and checks every point it held is back but the last interim ones."""
    held = window_points(life.proxy)
    agent.kill9()
    life.start()
    recovered = window_points(life.proxy)
    assert set(recovered) == set(held)
    for key, stamps in held.items():
        missing = sorted(stamps - recovered[key])
        assert len(missing) <= INTERIM, (key, len(missing), len(stamps), missing[:10])
        assert missing == sorted(stamps)[len(stamps) - len(missing):], (key, missing[:10])


def archives(window) -> list:
    return sorted(window.glob("*.archive")) if window.is_dir() else []


def test_a_window_dir_removed_under_a_running_agent_is_made_again_with_what_memory_held(tmp_path, daemons, node):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    window = tmp_path / "window"
    life = Life(tmp_path, daemons, proxy, node, window)
    earlier = life.start()
    wait_for(lambda: agent_metric(earlier, "fodc_agent_window_disk_chunks_written_total") >= 2, 30,
             what="sealed blocks on disk")
    earlier.kill9()
    agent = life.start()  # this life holds blocks it read back at start as well as its own
    wait_for(lambda: agent_metric(agent, "fodc_agent_window_recovered_samples") > 0
             and agent_metric(agent, "fodc_agent_window_disk_chunks_written_total") >= 1, 30,
             what="blocks read back, and a block of this life on disk")
    shutil.rmtree(window)
    wait_for(lambda: agent_metric(agent, "fodc_agent_window_disk_vanished_total") >= 1, 30,
             what="the vanished directory noticed")
    wait_for(lambda: archives(window) and (window / "window.interim").exists(), 30, what="the directory made again")
    assert agent_metric(agent, "fodc_agent_window_disk_rewritten_blocks_total") >= 2
    written = agent_metric(agent, "fodc_agent_window_disk_chunks_written_total")
    wait_for(lambda: agent_metric(agent, "fodc_agent_window_disk_chunks_written_total") >= written + 2, 30,
             what="blocks sealed after the removal written")
    assert_kept_after_sigkill(life, agent)


def test_blocks_that_failed_on_a_full_disk_are_written_once_it_has_room(tmp_path, daemons, node, small_disk):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    window = small_disk("window-disk", "4m") / "window"
    life = Life(tmp_path, daemons, proxy, node, window)
    agent = life.start()
    wait_for(lambda: archives(window), 30, what="a sealed block on disk")
    filler = fill_disk(window.parent)
    wait_for(lambda: agent_metric(agent, "fodc_agent_window_disk_errors_total", '{operation="archive"}') >= 2, 30,
             what="two blocks refused by the full disk")
    assert agent_metric(agent, "fodc_agent_window_disk_pending_blocks") >= 1
    filler.unlink()
    wait_for(lambda: agent_metric(agent, "fodc_agent_window_disk_pending_blocks") == 0, 30,
             what="the refused blocks written")
    assert agent_metric(agent, "fodc_agent_window_disk_rewritten_blocks_total") >= 1
    assert agent_metric(agent, "fodc_agent_window_disk_lost_blocks_total") == 0
    time.sleep(0.5)  # a flush or two after the disk came back
    assert_kept_after_sigkill(life, agent)
