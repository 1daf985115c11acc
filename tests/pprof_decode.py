"""Just enough of pprof's profile.proto to check a profile: sample count and function names.

Decodes the protobuf wire format directly (profile.proto field numbers: sample=2, function=5,
string_table=6; Function.name=2), so the tests need no generated code for a schema we do not own.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass


@dataclass
class Profile:
    samples: int
    function_names: list[str]


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes):
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, value


def decode(gzipped: bytes) -> Profile:
    raw = gzip.decompress(gzipped)
    samples = 0
    strings: list[str] = []
    function_name_ids: list[int] = []
    for number, value in _fields(raw):
        if number == 2:
            samples += 1
        elif number == 6:
            strings.append(value.decode())
        elif number == 5:
            function_name_ids.extend(v for n, v in _fields(value) if n == 2)
    return Profile(samples, [strings[i] for i in function_name_ids if i < len(strings)])
