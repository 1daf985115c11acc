"""Commands fanned out to many agents: agents whose command stream is not open cost one shared wait."""

from __future__ import annotations

from fodc.model import Address, Registration
from fodc.proxy.commands import CommandRunner
from fodc.proxy.links import LinkTable, RequestLink
from fodc.proxy.registry import AgentRegistry
from fodc.v1 import fodc_pb2 as pb


class RecordingLinks(LinkTable):
    """The real link table, noting how long each lookup was allowed to wait."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, agent_id: str, timeout_s: float) -> RequestLink | None:
        self.waits.append(timeout_s)
        return super().wait(agent_id, timeout_s)


def test_a_fan_out_waits_for_missing_command_streams_once_not_once_per_agent():
    registry = AgentRegistry(30, 300, 20)
    records = [registry.register(Registration(node_id=f"n{i}", role="liaison", primary=Address("10.0.0.1", 100 + i)),
                                 0)[0] for i in range(6)]
    links = RecordingLinks()
    links.put(RequestLink(records[2].agent_id))  # only this agent has its command stream open
    runner = CommandRunner(links, link_wait_s=0.3)
    results = runner.run_all(records, pb.IncidentListRequest(), timeout_s=0.5)
    assert [r.error for r in results if r.record is not records[2]] == ["agent has no command stream open"] * 5
    assert results[2].state == "timed_out"  # it had a stream but never answered
    assert len(links.waits) == 6 and sum(links.waits) <= 0.3  # one budget for the whole fan-out
    alone = CommandRunner(links, link_wait_s=0.05).start(records[0], pb.IncidentListRequest(), 0.1)
    assert links.waits[-1] == 0.05 and alone.collect(0).error == "agent has no command stream open"


def test_an_agent_of_the_previous_release_is_sent_nothing_and_each_request_is_counted():
    registry = AgentRegistry(30, 300, 20)
    old, _ = registry.register(Registration(node_id="old", role="liaison", primary=Address("10.0.0.1", 100),
                                            agent_version="0.9.0", typed_commands=False), 0)
    links = RecordingLinks()
    links.put(RequestLink(old.agent_id))
    counted: list[str] = []
    runner = CommandRunner(links, link_wait_s=0.3, on_unsupported=counted.append)
    answered, missing = runner.gather([old], pb.ConfigSnapshotRequest(capture=True), 0.5)
    assert answered == [] and [m["state"] for m in missing] == ["unsupported"]
    assert "0.9.0 is of the previous release" in missing[0]["reason"] and "upgrade" in missing[0]["reason"]
    assert counted == ["config_snapshot"] and links.waits == []  # no stream looked up, nothing sent
