"""Runs a typed request on agents over their command streams and gathers each one's result by command id.

The proxy side of StreamCommands: start the request on every target first, then read each agent's replies
(state changes and artifact chunks) within one deadline. A target that times out is sent a cancel so it
stops working for nobody; every target ends with one of the states below and a reason, never silence.
An agent of the previous release (string action names) is sent nothing: it ends "unsupported", counted.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from google.protobuf.message import Message

from fodc.proxy.agent_answers import RECORD_LISTS, BadAnswer, Checked, check_result
from fodc.proxy.agent_refusals import Refusals
from fodc.proxy.answer_stream import ListAnswerReader
from fodc.proxy.links import LinkBusy, LinkClosed, LinkTable, PendingReply, ReplyTimeout, RequestLink, new_request_id
from fodc.proxy.registry import AgentRecord
from fodc.times import now_ms
from fodc.v1 import fodc_pb2 as pb

DONE, FAILED, CANCELLED, REJECTED, TIMED_OUT, UNREACHABLE, UNSUPPORTED = (
    "done", "failed", "cancelled", "rejected", "timed_out", "unreachable", "unsupported")

_FINAL = {pb.CommandReply.DONE: DONE, pb.CommandReply.FAILED: FAILED, pb.CommandReply.CANCELLED: CANCELLED,
          pb.CommandReply.REJECTED: REJECTED}

StateListener = Callable[[str, dict[str, str]], None]

# request message type -> its field in Command.body ("profile", "incident_list", ...)
_BODY_FIELDS = {f.message_type.full_name: f.name for f in pb.Command.DESCRIPTOR.oneofs_by_name["body"].fields
                if f.message_type is not None}


# An agent's own words (a reply's error, its Progress and ArtifactInfo texts) are kept and shown up to this.
MAX_AGENT_TEXT = 1000


def described(message: Message) -> dict[str, str]:
    """A reply's Progress or ArtifactInfo as the text fields a job shows and keeps (unset fields left out)."""
    return {field.name: str(value)[:MAX_AGENT_TEXT] for field, value in message.ListFields()}


def request_name(request: Message) -> str:
    """The Command.body field a typed request travels in; also its name in logs and metrics."""
    return _BODY_FIELDS[request.DESCRIPTOR.full_name]


def unsupported_reason(record: AgentRecord) -> str:
    version = record.registration.agent_version or "unknown"
    return (f"agent {version[:64]} is of the previous release: it streams metrics but runs no diagnostics, "
            "incident or configuration command of this proxy; upgrade the agent")


@dataclass
class CommandResult:
    record: AgentRecord
    command_id: str
    state: str
    error: str = ""
    data: bytes = b""
    meta: dict[str, str] = field(default_factory=dict)
    size: int = 0
    sha256: str = ""

    @property
    def ok(self) -> bool:
        return self.state == DONE


class Sink(Protocol):
    """Where an artifact's chunks go as they arrive: a file, or a reader that checks them (answer_stream)."""

    def write(self, data: bytes, /) -> int: ...


@dataclass
class RunningCommand:
    record: AgentRecord
    command_id: str
    link: RequestLink | None
    pending: PendingReply | None
    max_bytes: int
    failure: str = ""
    failed_state: str = UNREACHABLE

    def cancel(self) -> bool:
        """Asks the agent to stop; the agent answers CANCELLED on the same id."""
        if self.link is None:
            return False
        return self.link.post(pb.Command(command_id=self.command_id, cancel=pb.CancelAction()))

    def collect(self, deadline: float, on_state: StateListener = lambda _s, _m: None,
                sink: Sink | None = None) -> CommandResult:
        """Reads replies until a final state, the deadline, or the link closing.

        The artifact goes to `sink` when given (large results), else into the result's `data`."""
        if self.pending is None or self.link is None:
            return CommandResult(self.record, self.command_id, self.failed_state, self.failure)
        buffer = bytearray()
        digest = hashlib.sha256()
        size = 0
        try:
            for reply in self.pending.chunks(timeout_s=max(0.05, deadline - time.monotonic())):
                if reply.state == pb.CommandReply.CHUNK:
                    if reply.offset != size:
                        return self._fail(f"artifact chunk at offset {reply.offset}, expected {size}")
                    if size + len(reply.data) > self.max_bytes:
                        self.cancel()
                        return self._fail(f"artifact larger than the proxy's limit of {self.max_bytes} bytes")
                    size += len(reply.data)
                    digest.update(reply.data)
                    if sink is not None:
                        sink.write(reply.data)
                    else:
                        buffer += reply.data
                elif reply.state in _FINAL:
                    return CommandResult(self.record, self.command_id, _FINAL[reply.state],
                                         reply.error[:MAX_AGENT_TEXT], bytes(buffer), described(reply.artifact),
                                         size, digest.hexdigest())
                else:
                    on_state(pb.CommandReply.State.Name(reply.state).lower(), described(reply.progress))
                if time.monotonic() > deadline:
                    raise ReplyTimeout("deadline passed")
            return self._fail("reply ended without a final state")
        except ReplyTimeout:
            self.cancel()
            return CommandResult(self.record, self.command_id, TIMED_OUT, "no result before the deadline; "
                                 "the agent was asked to cancel")
        except LinkClosed as exc:
            return self._fail(f"agent disconnected: {exc}")
        finally:
            self.link.forget(self.command_id)

    def _fail(self, reason: str) -> CommandResult:
        return CommandResult(self.record, self.command_id, FAILED, reason)


class CommandRunner:
    def __init__(self, links: LinkTable, *, max_artifact_bytes: int = 64 * 1024 * 1024,
                 link_wait_s: float = 3.0, refusals: Refusals | None = None,
                 on_unsupported: Callable[[str], None] = lambda _name: None) -> None:
        self.links = links
        self.refusals = refusals or Refusals()
        self.max_artifact_bytes = max_artifact_bytes
        self.link_wait_s = link_wait_s
        self.on_unsupported = on_unsupported

    def start(self, record: AgentRecord, request: Message, timeout_s: float, max_bytes: int | None = None,
              link_deadline: float | None = None) -> RunningCommand:
        """Sends the request; an agent without a command stream yet is waited for up to link_wait_s, or until
        `link_deadline` (monotonic) when the caller starts many: a fan-out waits once, not once per agent."""
        command_id = new_request_id("c")
        limit = max_bytes or self.max_artifact_bytes
        name = request_name(request)
        if not record.registration.typed_commands:
            self.on_unsupported(name)
            return RunningCommand(record, command_id, None, None, limit, unsupported_reason(record), UNSUPPORTED)
        wait_s = self.link_wait_s if link_deadline is None else max(0.0, link_deadline - time.monotonic())
        link = self.links.wait(record.agent_id, wait_s)
        if link is None:
            return RunningCommand(record, command_id, None, None, limit, "agent has no command stream open")
        command = pb.Command(command_id=command_id, timeout_ms=int(timeout_s * 1000))
        getattr(command, name).CopyFrom(request)
        try:
            return RunningCommand(record, command_id, link, link.send(command_id, command), limit)
        except (LinkBusy, LinkClosed) as exc:
            return RunningCommand(record, command_id, None, None, limit, str(exc))

    def gather(self, targets: list[AgentRecord], request: Message,
               timeout_s: float) -> tuple[list[tuple[AgentRecord, Any]], list[dict[str, str]]]:
        """Runs a request whose answer is a result message on every target: (record, checked result as plain
        data) for those that answered, and for the others node id, role, agent id, state and reason. Each
        answer is checked (see fodc.proxy.agent_answers): an unusable one fails its agent only, bad records
        are left out and counted."""
        answered, missing = [], []
        name = request_name(request)
        readers: dict[str, ListAnswerReader] = {}

        def reader(command: RunningCommand) -> ListAnswerReader | None:
            if name not in RECORD_LISTS:
                return None
            readers[command.command_id] = ListAnswerReader(*RECORD_LISTS[name], now_ms())
            return readers[command.command_id]
        for result in self.run_all(targets, request, timeout_s, reader):
            payload = None
            if result.ok:
                try:
                    payload = self._checked(name, result, readers.get(result.command_id))
                except BadAnswer as exc:
                    kind = "unreadable_answer" if exc.unreadable else "answer"
                    result.state, result.error = FAILED, f"agent sent an unusable answer: {str(exc)[:200]}"
                    self.refusals.refuse(kind, str(exc), action=name, node_id=result.record.registration.node_id)
            if result.ok:
                answered.append((result.record, payload))
            else:
                missing.append({"node_id": result.record.registration.node_id,
                                "role": result.record.registration.role, "agent_id": result.record.agent_id,
                                "state": result.state, "reason": result.error})
        return answered, missing

    def _checked(self, name: str, result: CommandResult, reader: ListAnswerReader | None) -> Checked:
        """The answer checked (read as it arrived when `reader` is given), its refused records counted."""
        node_id = result.record.registration.node_id
        if reader is None:
            payload, refused = check_result(name, result.data, now_ms())
        else:
            payload, refused, over_budget = reader.finish()
            if over_budget:
                self.refusals.refuse("answer_budget", over_budget[0], len(over_budget), action=name, node_id=node_id)
        if refused:
            self.refusals.refuse("answer_record", refused[0], len(refused), action=name, node_id=node_id)
        return payload

    def run_all(self, targets: list[AgentRecord], request: Message, timeout_s: float,
                sink_for: Callable[[RunningCommand], Sink | None] = lambda _command: None) -> list[CommandResult]:
        """Starts the request on every target at once, then gathers the results within timeout_s (each into
        the sink `sink_for` gives it, if any)."""
        deadline = time.monotonic() + timeout_s
        links_by = time.monotonic() + min(self.link_wait_s, timeout_s)
        running = [self.start(record, request, timeout_s, link_deadline=links_by) for record in targets]
        return [command.collect(deadline, sink=sink_for(command)) for command in running]
