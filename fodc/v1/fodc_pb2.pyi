from fodc.v1 import series_table_pb2 as _series_table_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CommandProtocol(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMMAND_PROTOCOL_UNSPECIFIED: _ClassVar[CommandProtocol]
    COMMAND_PROTOCOL_TYPED: _ClassVar[CommandProtocol]

class ProfileKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROFILE_KIND_UNSPECIFIED: _ClassVar[ProfileKind]
    CPU: _ClassVar[ProfileKind]
    HEAP: _ClassVar[ProfileKind]
    ALLOCS: _ClassVar[ProfileKind]
    GOROUTINE: _ClassVar[ProfileKind]
    BLOCK: _ClassVar[ProfileKind]
    MUTEX: _ClassVar[ProfileKind]
COMMAND_PROTOCOL_UNSPECIFIED: CommandProtocol
COMMAND_PROTOCOL_TYPED: CommandProtocol
PROFILE_KIND_UNSPECIFIED: ProfileKind
CPU: ProfileKind
HEAP: ProfileKind
ALLOCS: ProfileKind
GOROUTINE: ProfileKind
BLOCK: ProfileKind
MUTEX: ProfileKind

class Address(_message.Message):
    __slots__ = ("ip", "port")
    IP_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    ip: str
    port: int
    def __init__(self, ip: _Optional[str] = ..., port: _Optional[int] = ...) -> None: ...

class Registration(_message.Message):
    __slots__ = ("node_id", "role", "primary", "secondary", "labels", "agent_version", "capabilities", "hostname", "agent_started_unix_ms", "host_id", "instance_id", "command_protocol")
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
    COMMAND_PROTOCOL_FIELD_NUMBER: _ClassVar[int]
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
    command_protocol: CommandProtocol
    def __init__(self, node_id: _Optional[str] = ..., role: _Optional[str] = ..., primary: _Optional[_Union[Address, _Mapping]] = ..., secondary: _Optional[_Mapping[str, Address]] = ..., labels: _Optional[_Mapping[str, str]] = ..., agent_version: _Optional[str] = ..., capabilities: _Optional[_Mapping[str, str]] = ..., hostname: _Optional[str] = ..., agent_started_unix_ms: _Optional[int] = ..., host_id: _Optional[str] = ..., instance_id: _Optional[str] = ..., command_protocol: _Optional[_Union[CommandProtocol, str]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("sent_unix_ms", "runtime", "capabilities", "incidents_total")
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
    class IncidentsTotalEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SENT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    INCIDENTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    sent_unix_ms: int
    runtime: _containers.ScalarMap[str, str]
    capabilities: _containers.ScalarMap[str, str]
    incidents_total: _containers.ScalarMap[str, int]
    def __init__(self, sent_unix_ms: _Optional[int] = ..., runtime: _Optional[_Mapping[str, str]] = ..., capabilities: _Optional[_Mapping[str, str]] = ..., incidents_total: _Optional[_Mapping[str, int]] = ...) -> None: ...

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
    __slots__ = ("request_id", "latest_only", "start_unix_ms", "end_unix_ms", "names", "name_regex", "max_chunk_bytes", "cancel", "max_points", "step_ms", "agg", "series_table", "window_credit", "grant")
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
    SERIES_TABLE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_CREDIT_FIELD_NUMBER: _ClassVar[int]
    GRANT_FIELD_NUMBER: _ClassVar[int]
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
    series_table: _series_table_pb2.SeriesTableState
    window_credit: int
    grant: int
    def __init__(self, request_id: _Optional[str] = ..., latest_only: _Optional[bool] = ..., start_unix_ms: _Optional[int] = ..., end_unix_ms: _Optional[int] = ..., names: _Optional[_Iterable[str]] = ..., name_regex: _Optional[str] = ..., max_chunk_bytes: _Optional[int] = ..., cancel: _Optional[bool] = ..., max_points: _Optional[int] = ..., step_ms: _Optional[int] = ..., agg: _Optional[str] = ..., series_table: _Optional[_Union[_series_table_pb2.SeriesTableState, _Mapping]] = ..., window_credit: _Optional[int] = ..., grant: _Optional[int] = ...) -> None: ...

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
    __slots__ = ("request_id", "agent_id", "seq", "families", "done", "error", "refused_points", "stream_secret", "latest")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    FAMILIES_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REFUSED_POINTS_FIELD_NUMBER: _ClassVar[int]
    STREAM_SECRET_FIELD_NUMBER: _ClassVar[int]
    LATEST_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    agent_id: str
    seq: int
    families: _containers.RepeatedCompositeFieldContainer[MetricFamily]
    done: bool
    error: str
    refused_points: int
    stream_secret: str
    latest: _series_table_pb2.LatestSamples
    def __init__(self, request_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., seq: _Optional[int] = ..., families: _Optional[_Iterable[_Union[MetricFamily, _Mapping]]] = ..., done: _Optional[bool] = ..., error: _Optional[str] = ..., refused_points: _Optional[int] = ..., stream_secret: _Optional[str] = ..., latest: _Optional[_Union[_series_table_pb2.LatestSamples, _Mapping]] = ...) -> None: ...

class ProfileRequest(_message.Message):
    __slots__ = ("kind", "seconds")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    kind: ProfileKind
    seconds: int
    def __init__(self, kind: _Optional[_Union[ProfileKind, str]] = ..., seconds: _Optional[int] = ...) -> None: ...

class ConfigSnapshotRequest(_message.Message):
    __slots__ = ("capture",)
    CAPTURE_FIELD_NUMBER: _ClassVar[int]
    capture: bool
    def __init__(self, capture: _Optional[bool] = ...) -> None: ...

class ConfigHistoryRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class IncidentListRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class IncidentFetchRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class IncidentCaptureRequest(_message.Message):
    __slots__ = ("reason", "requested_by")
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    reason: str
    requested_by: str
    def __init__(self, reason: _Optional[str] = ..., requested_by: _Optional[str] = ...) -> None: ...

class AutomaticListRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AutomaticFetchRequest(_message.Message):
    __slots__ = ("file",)
    FILE_FIELD_NUMBER: _ClassVar[int]
    file: str
    def __init__(self, file: _Optional[str] = ...) -> None: ...

class RingListRequest(_message.Message):
    __slots__ = ("since_unix_ms",)
    SINCE_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    since_unix_ms: int
    def __init__(self, since_unix_ms: _Optional[int] = ...) -> None: ...

class RingFetchRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CancelAction(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class Command(_message.Message):
    __slots__ = ("command_id", "cancel", "profile", "config_snapshot", "config_history", "incident_list", "incident_fetch", "incident_capture", "automatic_list", "automatic_fetch", "ring_list", "ring_fetch", "timeout_ms")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    CONFIG_HISTORY_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_LIST_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_FETCH_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_CAPTURE_FIELD_NUMBER: _ClassVar[int]
    AUTOMATIC_LIST_FIELD_NUMBER: _ClassVar[int]
    AUTOMATIC_FETCH_FIELD_NUMBER: _ClassVar[int]
    RING_LIST_FIELD_NUMBER: _ClassVar[int]
    RING_FETCH_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    cancel: CancelAction
    profile: ProfileRequest
    config_snapshot: ConfigSnapshotRequest
    config_history: ConfigHistoryRequest
    incident_list: IncidentListRequest
    incident_fetch: IncidentFetchRequest
    incident_capture: IncidentCaptureRequest
    automatic_list: AutomaticListRequest
    automatic_fetch: AutomaticFetchRequest
    ring_list: RingListRequest
    ring_fetch: RingFetchRequest
    timeout_ms: int
    def __init__(self, command_id: _Optional[str] = ..., cancel: _Optional[_Union[CancelAction, _Mapping]] = ..., profile: _Optional[_Union[ProfileRequest, _Mapping]] = ..., config_snapshot: _Optional[_Union[ConfigSnapshotRequest, _Mapping]] = ..., config_history: _Optional[_Union[ConfigHistoryRequest, _Mapping]] = ..., incident_list: _Optional[_Union[IncidentListRequest, _Mapping]] = ..., incident_fetch: _Optional[_Union[IncidentFetchRequest, _Mapping]] = ..., incident_capture: _Optional[_Union[IncidentCaptureRequest, _Mapping]] = ..., automatic_list: _Optional[_Union[AutomaticListRequest, _Mapping]] = ..., automatic_fetch: _Optional[_Union[AutomaticFetchRequest, _Mapping]] = ..., ring_list: _Optional[_Union[RingListRequest, _Mapping]] = ..., ring_fetch: _Optional[_Union[RingFetchRequest, _Mapping]] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class FileDigest(_message.Message):
    __slots__ = ("size", "sha256")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    size: int
    sha256: str
    def __init__(self, size: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class Incident(_message.Message):
    __slots__ = ("id", "node_id", "role", "trigger", "summary", "detail_json", "at", "at_ms", "onset", "onset_ms", "complete_by_ms", "state", "errors", "file", "size", "files", "ring_profiles")
    class ErrorsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class FilesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: FileDigest
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[FileDigest, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    DETAIL_JSON_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    ONSET_FIELD_NUMBER: _ClassVar[int]
    ONSET_MS_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_BY_MS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    RING_PROFILES_FIELD_NUMBER: _ClassVar[int]
    id: str
    node_id: str
    role: str
    trigger: str
    summary: str
    detail_json: str
    at: str
    at_ms: int
    onset: str
    onset_ms: int
    complete_by_ms: int
    state: str
    errors: _containers.ScalarMap[str, str]
    file: str
    size: int
    files: _containers.MessageMap[str, FileDigest]
    ring_profiles: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., node_id: _Optional[str] = ..., role: _Optional[str] = ..., trigger: _Optional[str] = ..., summary: _Optional[str] = ..., detail_json: _Optional[str] = ..., at: _Optional[str] = ..., at_ms: _Optional[int] = ..., onset: _Optional[str] = ..., onset_ms: _Optional[int] = ..., complete_by_ms: _Optional[int] = ..., state: _Optional[str] = ..., errors: _Optional[_Mapping[str, str]] = ..., file: _Optional[str] = ..., size: _Optional[int] = ..., files: _Optional[_Mapping[str, FileDigest]] = ..., ring_profiles: _Optional[_Iterable[str]] = ...) -> None: ...

class IncidentList(_message.Message):
    __slots__ = ("incidents",)
    INCIDENTS_FIELD_NUMBER: _ClassVar[int]
    incidents: _containers.RepeatedCompositeFieldContainer[Incident]
    def __init__(self, incidents: _Optional[_Iterable[_Union[Incident, _Mapping]]] = ...) -> None: ...

class ConfigSnapshot(_message.Message):
    __slots__ = ("hash", "captured_at", "confirmed_at", "content_json")
    HASH_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_AT_FIELD_NUMBER: _ClassVar[int]
    CONFIRMED_AT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_JSON_FIELD_NUMBER: _ClassVar[int]
    hash: str
    captured_at: str
    confirmed_at: str
    content_json: str
    def __init__(self, hash: _Optional[str] = ..., captured_at: _Optional[str] = ..., confirmed_at: _Optional[str] = ..., content_json: _Optional[str] = ...) -> None: ...

class ConfigHistory(_message.Message):
    __slots__ = ("snapshots",)
    SNAPSHOTS_FIELD_NUMBER: _ClassVar[int]
    snapshots: _containers.RepeatedCompositeFieldContainer[ConfigSnapshot]
    def __init__(self, snapshots: _Optional[_Iterable[_Union[ConfigSnapshot, _Mapping]]] = ...) -> None: ...

class CapturedFile(_message.Message):
    __slots__ = ("profile", "file", "size", "sha256")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    profile: str
    file: str
    size: int
    sha256: str
    def __init__(self, profile: _Optional[str] = ..., file: _Optional[str] = ..., size: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class AutomaticCapture(_message.Message):
    __slots__ = ("id", "trigger", "time", "rss_bytes", "limit_bytes", "limit_source", "percent", "files", "errors")
    class ErrorsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    LIMIT_BYTES_FIELD_NUMBER: _ClassVar[int]
    LIMIT_SOURCE_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    id: str
    trigger: str
    time: str
    rss_bytes: int
    limit_bytes: int
    limit_source: str
    percent: float
    files: _containers.RepeatedCompositeFieldContainer[CapturedFile]
    errors: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., trigger: _Optional[str] = ..., time: _Optional[str] = ..., rss_bytes: _Optional[int] = ..., limit_bytes: _Optional[int] = ..., limit_source: _Optional[str] = ..., percent: _Optional[float] = ..., files: _Optional[_Iterable[_Union[CapturedFile, _Mapping]]] = ..., errors: _Optional[_Mapping[str, str]] = ...) -> None: ...

class AutomaticCaptureList(_message.Message):
    __slots__ = ("captures",)
    CAPTURES_FIELD_NUMBER: _ClassVar[int]
    captures: _containers.RepeatedCompositeFieldContainer[AutomaticCapture]
    def __init__(self, captures: _Optional[_Iterable[_Union[AutomaticCapture, _Mapping]]] = ...) -> None: ...

class RingProfile(_message.Message):
    __slots__ = ("name", "kind", "taken", "taken_ms", "seconds", "size")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TAKEN_FIELD_NUMBER: _ClassVar[int]
    TAKEN_MS_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    taken: str
    taken_ms: int
    seconds: int
    size: int
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., taken: _Optional[str] = ..., taken_ms: _Optional[int] = ..., seconds: _Optional[int] = ..., size: _Optional[int] = ...) -> None: ...

class RingProfileList(_message.Message):
    __slots__ = ("profiles",)
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    profiles: _containers.RepeatedCompositeFieldContainer[RingProfile]
    def __init__(self, profiles: _Optional[_Iterable[_Union[RingProfile, _Mapping]]] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("phase", "position", "waiting_for")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    WAITING_FOR_FIELD_NUMBER: _ClassVar[int]
    phase: str
    position: int
    waiting_for: str
    def __init__(self, phase: _Optional[str] = ..., position: _Optional[int] = ..., waiting_for: _Optional[str] = ...) -> None: ...

class ArtifactInfo(_message.Message):
    __slots__ = ("content_type", "size", "sha256", "file_name", "profile", "seconds", "source", "warning", "note")
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    content_type: str
    size: int
    sha256: str
    file_name: str
    profile: str
    seconds: int
    source: str
    warning: str
    note: str
    def __init__(self, content_type: _Optional[str] = ..., size: _Optional[int] = ..., sha256: _Optional[str] = ..., file_name: _Optional[str] = ..., profile: _Optional[str] = ..., seconds: _Optional[int] = ..., source: _Optional[str] = ..., warning: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class CommandReply(_message.Message):
    __slots__ = ("command_id", "agent_id", "state", "data", "offset", "error", "stream_secret", "progress", "artifact")
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
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STREAM_SECRET_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    agent_id: str
    state: CommandReply.State
    data: bytes
    offset: int
    error: str
    stream_secret: str
    progress: Progress
    artifact: ArtifactInfo
    def __init__(self, command_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., state: _Optional[_Union[CommandReply.State, str]] = ..., data: _Optional[bytes] = ..., offset: _Optional[int] = ..., error: _Optional[str] = ..., stream_secret: _Optional[str] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., artifact: _Optional[_Union[ArtifactInfo, _Mapping]] = ...) -> None: ...
