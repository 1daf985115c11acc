from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Address(_message.Message):
    __slots__ = ("ip", "port")
    IP_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    ip: str
    port: int
    def __init__(self, ip: _Optional[str] = ..., port: _Optional[int] = ...) -> None: ...

class Registration(_message.Message):
    __slots__ = ("node_id", "role", "primary", "secondary", "labels", "agent_version", "capabilities", "hostname", "agent_started_unix_ms", "host_id", "instance_id")
    class SecondaryEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Address
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Address, _Mapping]] = ...) -> None: ...
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class CapabilitiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_FIELD_NUMBER: _ClassVar[int]
    SECONDARY_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    AGENT_STARTED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    role: str
    primary: Address
    secondary: _containers.MessageMap[str, Address]
    labels: _containers.ScalarMap[str, str]
    agent_version: str
    capabilities: _containers.ScalarMap[str, str]
    hostname: str
    agent_started_unix_ms: int
    host_id: str
    instance_id: str
    def __init__(self, node_id: _Optional[str] = ..., role: _Optional[str] = ..., primary: _Optional[_Union[Address, _Mapping]] = ..., secondary: _Optional[_Mapping[str, Address]] = ..., labels: _Optional[_Mapping[str, str]] = ..., agent_version: _Optional[str] = ..., capabilities: _Optional[_Mapping[str, str]] = ..., hostname: _Optional[str] = ..., agent_started_unix_ms: _Optional[int] = ..., host_id: _Optional[str] = ..., instance_id: _Optional[str] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("sent_unix_ms", "runtime", "capabilities")
    class RuntimeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class CapabilitiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SENT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    sent_unix_ms: int
    runtime: _containers.ScalarMap[str, str]
    capabilities: _containers.ScalarMap[str, str]
    def __init__(self, sent_unix_ms: _Optional[int] = ..., runtime: _Optional[_Mapping[str, str]] = ..., capabilities: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Goodbye(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class AgentMessage(_message.Message):
    __slots__ = ("register", "heartbeat", "goodbye")
    REGISTER_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    GOODBYE_FIELD_NUMBER: _ClassVar[int]
    register: Registration
    heartbeat: Heartbeat
    goodbye: Goodbye
    def __init__(self, register: _Optional[_Union[Registration, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., goodbye: _Optional[_Union[Goodbye, _Mapping]] = ...) -> None: ...

class RegistrationResult(_message.Message):
    __slots__ = ("accepted", "error", "agent_id", "heartbeat_interval_ms", "max_message_bytes", "retry_after_ms", "stream_secret")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    STREAM_SECRET_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    error: str
    agent_id: str
    heartbeat_interval_ms: int
    max_message_bytes: int
    retry_after_ms: int
    stream_secret: str
    def __init__(self, accepted: _Optional[bool] = ..., error: _Optional[str] = ..., agent_id: _Optional[str] = ..., heartbeat_interval_ms: _Optional[int] = ..., max_message_bytes: _Optional[int] = ..., retry_after_ms: _Optional[int] = ..., stream_secret: _Optional[str] = ...) -> None: ...

class HeartbeatAck(_message.Message):
    __slots__ = ("received_unix_ms", "warning")
    RECEIVED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    received_unix_ms: int
    warning: str
    def __init__(self, received_unix_ms: _Optional[int] = ..., warning: _Optional[str] = ...) -> None: ...

class ProxyMessage(_message.Message):
    __slots__ = ("registration", "heartbeat_ack")
    REGISTRATION_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_ACK_FIELD_NUMBER: _ClassVar[int]
    registration: RegistrationResult
    heartbeat_ack: HeartbeatAck
    def __init__(self, registration: _Optional[_Union[RegistrationResult, _Mapping]] = ..., heartbeat_ack: _Optional[_Union[HeartbeatAck, _Mapping]] = ...) -> None: ...

class MetricsRequest(_message.Message):
    __slots__ = ("request_id", "latest_only", "start_unix_ms", "end_unix_ms", "names", "name_regex", "max_chunk_bytes", "cancel", "max_points", "step_ms", "agg")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LATEST_ONLY_FIELD_NUMBER: _ClassVar[int]
    START_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    END_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    NAME_REGEX_FIELD_NUMBER: _ClassVar[int]
    MAX_CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    MAX_POINTS_FIELD_NUMBER: _ClassVar[int]
    STEP_MS_FIELD_NUMBER: _ClassVar[int]
    AGG_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    latest_only: bool
    start_unix_ms: int
    end_unix_ms: int
    names: _containers.RepeatedScalarFieldContainer[str]
    name_regex: str
    max_chunk_bytes: int
    cancel: bool
    max_points: int
    step_ms: int
    agg: str
    def __init__(self, request_id: _Optional[str] = ..., latest_only: _Optional[bool] = ..., start_unix_ms: _Optional[int] = ..., end_unix_ms: _Optional[int] = ..., names: _Optional[_Iterable[str]] = ..., name_regex: _Optional[str] = ..., max_chunk_bytes: _Optional[int] = ..., cancel: _Optional[bool] = ..., max_points: _Optional[int] = ..., step_ms: _Optional[int] = ..., agg: _Optional[str] = ...) -> None: ...

class Label(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class Series(_message.Message):
    __slots__ = ("labels", "timestamps_ms", "values", "sample_name")
    LABELS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMPS_MS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_NAME_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.RepeatedCompositeFieldContainer[Label]
    timestamps_ms: _containers.RepeatedScalarFieldContainer[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    sample_name: str
    def __init__(self, labels: _Optional[_Iterable[_Union[Label, _Mapping]]] = ..., timestamps_ms: _Optional[_Iterable[int]] = ..., values: _Optional[_Iterable[float]] = ..., sample_name: _Optional[str] = ...) -> None: ...

class MetricFamily(_message.Message):
    __slots__ = ("name", "type", "help", "unit", "series")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    HELP_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    help: str
    unit: str
    series: _containers.RepeatedCompositeFieldContainer[Series]
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., help: _Optional[str] = ..., unit: _Optional[str] = ..., series: _Optional[_Iterable[_Union[Series, _Mapping]]] = ...) -> None: ...

class MetricsReply(_message.Message):
    __slots__ = ("request_id", "agent_id", "seq", "families", "done", "error", "refused_points", "stream_secret")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    FAMILIES_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REFUSED_POINTS_FIELD_NUMBER: _ClassVar[int]
    STREAM_SECRET_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    agent_id: str
    seq: int
    families: _containers.RepeatedCompositeFieldContainer[MetricFamily]
    done: bool
    error: str
    refused_points: int
    stream_secret: str
    def __init__(self, request_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., seq: _Optional[int] = ..., families: _Optional[_Iterable[_Union[MetricFamily, _Mapping]]] = ..., done: _Optional[bool] = ..., error: _Optional[str] = ..., refused_points: _Optional[int] = ..., stream_secret: _Optional[str] = ...) -> None: ...

class StartAction(_message.Message):
    __slots__ = ("action", "params", "timeout_ms")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ACTION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    action: str
    params: _containers.ScalarMap[str, str]
    timeout_ms: int
    def __init__(self, action: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class CancelAction(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class Command(_message.Message):
    __slots__ = ("command_id", "start", "cancel")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    start: StartAction
    cancel: CancelAction
    def __init__(self, command_id: _Optional[str] = ..., start: _Optional[_Union[StartAction, _Mapping]] = ..., cancel: _Optional[_Union[CancelAction, _Mapping]] = ...) -> None: ...

class CommandReply(_message.Message):
    __slots__ = ("command_id", "agent_id", "state", "data", "offset", "error", "meta", "stream_secret")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[CommandReply.State]
        ACCEPTED: _ClassVar[CommandReply.State]
        RUNNING: _ClassVar[CommandReply.State]
        CHUNK: _ClassVar[CommandReply.State]
        DONE: _ClassVar[CommandReply.State]
        FAILED: _ClassVar[CommandReply.State]
        CANCELLED: _ClassVar[CommandReply.State]
        REJECTED: _ClassVar[CommandReply.State]
    STATE_UNSPECIFIED: CommandReply.State
    ACCEPTED: CommandReply.State
    RUNNING: CommandReply.State
    CHUNK: CommandReply.State
    DONE: CommandReply.State
    FAILED: CommandReply.State
    CANCELLED: CommandReply.State
    REJECTED: CommandReply.State
    class MetaEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    STREAM_SECRET_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    agent_id: str
    state: CommandReply.State
    data: bytes
    offset: int
    error: str
    meta: _containers.ScalarMap[str, str]
    stream_secret: str
    def __init__(self, command_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., state: _Optional[_Union[CommandReply.State, str]] = ..., data: _Optional[bytes] = ..., offset: _Optional[int] = ..., error: _Optional[str] = ..., meta: _Optional[_Mapping[str, str]] = ..., stream_secret: _Optional[str] = ...) -> None: ...
