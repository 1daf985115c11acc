from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SeriesTableState(_message.Message):
    __slots__ = ("wanted", "table_id", "known", "value_text", "ids_digest")
    WANTED_FIELD_NUMBER: _ClassVar[int]
    TABLE_ID_FIELD_NUMBER: _ClassVar[int]
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    VALUE_TEXT_FIELD_NUMBER: _ClassVar[int]
    IDS_DIGEST_FIELD_NUMBER: _ClassVar[int]
    wanted: bool
    table_id: int
    known: int
    value_text: bool
    ids_digest: int
    def __init__(self, wanted: _Optional[bool] = ..., table_id: _Optional[int] = ..., known: _Optional[int] = ..., value_text: _Optional[bool] = ..., ids_digest: _Optional[int] = ...) -> None: ...

class SeriesDefinition(_message.Message):
    __slots__ = ("id", "family", "type", "help", "sample_name", "labels")
    ID_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    HELP_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_NAME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    id: int
    family: str
    type: str
    help: str
    sample_name: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[int] = ..., family: _Optional[str] = ..., type: _Optional[str] = ..., help: _Optional[str] = ..., sample_name: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ...) -> None: ...

class LatestSamples(_message.Message):
    __slots__ = ("table_id", "defined", "ids", "values", "value_text", "ids_digest")
    TABLE_ID_FIELD_NUMBER: _ClassVar[int]
    DEFINED_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    VALUE_TEXT_FIELD_NUMBER: _ClassVar[int]
    IDS_DIGEST_FIELD_NUMBER: _ClassVar[int]
    table_id: int
    defined: _containers.RepeatedCompositeFieldContainer[SeriesDefinition]
    ids: _containers.RepeatedScalarFieldContainer[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    value_text: bytes
    ids_digest: int
    def __init__(self, table_id: _Optional[int] = ..., defined: _Optional[_Iterable[_Union[SeriesDefinition, _Mapping]]] = ..., ids: _Optional[_Iterable[int]] = ..., values: _Optional[_Iterable[float]] = ..., value_text: _Optional[bytes] = ..., ids_digest: _Optional[int] = ...) -> None: ...
