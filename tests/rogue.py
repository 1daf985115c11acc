"""A rogue agent for attack tests: speaks FODC's gRPC protocol to a real proxy, but sends whatever a test says.

Every stream is fed from a bounded queue and read on its own thread, so a test can register, heartbeat, open
request streams with any hello and answer requests with crafted replies, then check what the proxy did.
Nothing waits without a deadline.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import grpc
from google.protobuf.message import Message
from procs import http_get

from fodc.v1 import fodc_pb2 as pb
from fodc.v1 import fodc_pb2_grpc as pb_grpc

_END = object()


class Stream:
    """One bidirectional call: `send` queues outbound messages, inbound ones land in `inbox` (or `on_message`)."""

    def __init__(self, open_call: Callable[[Iterator[Any]], Iterator[Any]],
                 on_message: Callable[[Stream, Any], None] | None = None) -> None:
        self._outbox: queue.Queue[Any] = queue.Queue(maxsize=1024)
        self.inbox: queue.Queue[Any] = queue.Queue()
        self.ended = threading.Event()
        self.error: grpc.RpcError | None = None
        self._on_message = on_message
        self.call = open_call(self._outbound())
        self._reader = threading.Thread(target=self._read, name="rogue-reader", daemon=True)
        self._reader.start()

    def _outbound(self) -> Iterator[Any]:
        while True:
            item = self._outbox.get()
            if item is _END:
                return
            yield item

    def _read(self) -> None:
        try:
            for message in self.call:
                if self._on_message is not None:
                    self._on_message(self, message)
                else:
                    self.inbox.put(message)
        except grpc.RpcError as exc:
            self.error = exc
        finally:
            self.ended.set()

    def send(self, message: Any) -> None:
        self._outbox.put(message, timeout=10)

    def receive(self, timeout: float = 10.0) -> Any:
        return self.inbox.get(timeout=timeout)

    def wait_ended(self, timeout: float) -> bool:
        return self.ended.wait(timeout)

    @property
    def code(self) -> grpc.StatusCode | None:
        return self.error.code() if self.error is not None else None

    @property
    def details(self) -> str:
        return (self.error.details() or "") if self.error is not None else ""

    def close(self) -> None:
        with contextlib.suppress(queue.Full):
            self._outbox.put_nowait(_END)
        self.call.cancel()
        self._reader.join(5)


def registration(node_id: str = "rogue", role: str = "liaison", ip: str = "127.0.0.9", port: int = 17912,
                 **fields: Any) -> pb.Registration:
    fields.setdefault("command_protocol", pb.COMMAND_PROTOCOL_TYPED)
    return pb.Registration(node_id=node_id, role=role, primary=pb.Address(ip=ip, port=port), **fields)


class RogueAgent:
    """Registers like an agent (or not), then misbehaves as told. close() ends every stream it opened."""

    def __init__(self, grpc_addr: str, channel: grpc.Channel | None = None) -> None:
        self.channel = channel or grpc.insecure_channel(grpc_addr, options=[("grpc.use_local_subchannel_pool", 1)])
        self._own_channel = channel is None
        self.stub = pb_grpc.FODCServiceStub(self.channel)
        self.streams: list[Stream] = []
        self.agent_id = ""
        self.secret = ""
        self.control: Stream | None = None

    # ---- registration stream
    def register(self, reg: pb.Registration | None = None, timeout: float = 10.0) -> pb.RegistrationResult:
        """Opens RegisterAgent and registers; the stream stays open (heartbeats are up to the test)."""
        self.control = self.open(self.stub.RegisterAgent)
        self.control.send(pb.AgentMessage(register=reg or registration()))
        result = self.control.receive(timeout).registration
        if result.accepted:
            self.agent_id, self.secret = result.agent_id, result.stream_secret
        return result

    def heartbeat(self, runtime: dict[str, str] | None = None, capabilities: dict[str, str] | None = None,
                  timeout: float = 10.0, incidents_total: dict[str, int] | None = None) -> pb.ProxyMessage:
        assert self.control is not None, "register first"
        self.control.send(pb.AgentMessage(heartbeat=pb.Heartbeat(
            runtime=runtime or {}, capabilities=capabilities or {}, incidents_total=incidents_total or {})))
        return self.control.receive(timeout)

    # ---- request streams
    def open(self, method: Callable[..., Iterator[Any]],
             on_message: Callable[[Stream, Any], None] | None = None) -> Stream:
        stream = Stream(lambda requests: method(requests), on_message)
        self.streams.append(stream)
        return stream

    def serve_metrics(self, answer: Callable[[pb.MetricsRequest], Iterable[pb.MetricsReply]],
                      agent_id: str | None = None, secret: str | None = None) -> Stream:
        """Opens StreamMetrics with a hello (our own id and secret unless told otherwise); answers each
        request with what `answer` returns for it."""
        return self._serve(self.stub.StreamMetrics, pb.MetricsReply, answer, agent_id, secret)

    def serve_commands(self, answer: Callable[[pb.Command], Iterable[pb.CommandReply]],
                       agent_id: str | None = None, secret: str | None = None) -> Stream:
        """The same for StreamCommands; cancels are ignored."""
        def starts_only(command: pb.Command) -> Iterable[pb.CommandReply]:
            return answer(command) if command.WhichOneof("body") != "cancel" else []
        return self._serve(self.stub.StreamCommands, pb.CommandReply, starts_only, agent_id, secret)

    def _serve(self, method: Callable[..., Iterator[Any]], hello_type: type, answer: Callable[[Any], Iterable[Any]],
               agent_id: str | None, secret: str | None) -> Stream:
        def reply(stream: Stream, request: Any) -> None:
            for message in answer(request):
                stream.send(message)
        stream = self.open(method, reply)
        stream.send(hello_type(agent_id=self.agent_id if agent_id is None else agent_id,
                               stream_secret=self.secret if secret is None else secret))
        return stream

    def close(self) -> None:
        for stream in self.streams:
            stream.close()
        if self._own_channel:
            self.channel.close()


CHUNK_BYTES = 1024 * 1024  # below the 4 MiB gRPC message limit, as the agent chunks


def command_answer(command_id: str, data: bytes) -> list[pb.CommandReply]:
    """What a well-formed agent sends for an action's result: accepted, the data in chunks, done."""
    chunks = [pb.CommandReply(command_id=command_id, state=pb.CommandReply.CHUNK,
                              data=data[offset:offset + CHUNK_BYTES], offset=offset)
              for offset in range(0, max(len(data), 1), CHUNK_BYTES)]
    return [pb.CommandReply(command_id=command_id, state=pb.CommandReply.ACCEPTED), *chunks,
            pb.CommandReply(command_id=command_id, state=pb.CommandReply.DONE)]


def typed_answers(by_request: dict[str, Message | bytes]) -> Callable[[pb.Command], list[pb.CommandReply]]:
    """Answers each request (by its Command.body field) with the result message (or raw bytes) given for it;
    other requests are rejected."""
    def answer(command: pb.Command) -> list[pb.CommandReply]:
        name = command.WhichOneof("body")
        if name not in by_request:
            return [pb.CommandReply(command_id=command.command_id, state=pb.CommandReply.REJECTED,
                                    error="unknown request")]
        payload = by_request[name]
        data = payload if isinstance(payload, bytes) else payload.SerializeToString()
        return command_answer(command.command_id, data)
    return answer


def metrics_reply(request: pb.MetricsRequest, families: list[pb.MetricFamily], done: bool = True,
                  seq: int = 0) -> pb.MetricsReply:
    return pb.MetricsReply(request_id=request.request_id, seq=seq, families=families, done=done)


def gauge(name: str, value: float, labels: dict[str, str] | None = None, help_text: str = "") -> pb.MetricFamily:
    return pb.MetricFamily(name=name, type="gauge", help=help_text, series=[pb.Series(
        labels=[pb.Label(name=k, value=v) for k, v in (labels or {}).items()], timestamps_ms=[1], values=[value])])


def refused(proxy: Any, kind: str) -> float:
    """fodc_proxy_refused_agent_input_total{kind} from the proxy's own metrics (no agent has role datanode-cold
    in these tests, so the page holds only the proxy's own families)."""
    status, _, page = http_get(f"{proxy.url}/metrics?role=datanode-cold", timeout=30)
    assert status == 200, page
    prefix = f'fodc_proxy_refused_agent_input_total{{kind="{kind}"}} '
    return next((float(line.split()[-1]) for line in page.decode().splitlines() if line.startswith(prefix)), 0.0)
