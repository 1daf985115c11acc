"""Reads a Go pprof profile (gzipped or raw profile.proto) into plain data: sample types and resolved stacks.

The protobuf message stays here, at the edge: everything downstream (top, flame, folded, diff, the proxy's
JSON summary) works on `Profile`. A file that is not a profile, or references ids and strings it does not
hold, raises PprofError with one line for the operator; sizes are bounded before anything is allocated.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from fodc.pprof import profile_pb2 as pb

MAX_RAW_BYTES = 512 * 1024 * 1024  # decompressed size refused beyond this (a gzip bomb costs nothing)
MAX_NAME_CHARS = 1024  # a longer function name is cut; names reach terminals, SVG and JSON
NO_STACK = ("[unknown]",)  # a sample with no location still costs: it is named, so flat and shares add up
MAX_SAMPLES = 2_000_000  # more stacks than any Go profile holds; each costs Python objects once read
_GZIP_MAGIC = b"\x1f\x8b"


class PprofError(Exception):
    """The input is not a readable pprof profile; the message is one line for the operator."""


@dataclass(frozen=True, slots=True)
class SampleType:
    type: str  # e.g. "cpu", "alloc_space", "contentions"
    unit: str  # e.g. "nanoseconds", "bytes", "count"


@dataclass(frozen=True, slots=True)
class Sample:
    stack: tuple[str, ...]  # function names, leaf first; inlined calls expanded
    values: tuple[int, ...]  # one per Profile.sample_types


@dataclass(frozen=True, slots=True)
class Profile:
    sample_types: tuple[SampleType, ...]
    default_type: str  # the sample type shown when none is asked for
    samples: tuple[Sample, ...]
    period_type: SampleType | None
    period: int
    duration_ns: int
    time_ns: int

    def type_index(self, name: str | None) -> int:
        """Index of sample type `name` (None: the default one); PprofError naming the choices otherwise."""
        wanted = name or self.default_type
        for i, st in enumerate(self.sample_types):
            if st.type == wanted:
                return i
        choices = ", ".join(st.type for st in self.sample_types)
        raise PprofError(f"no sample type {wanted!r} in this profile (it has: {choices})")


def read_file(path: str | os.PathLike[str], max_raw_bytes: int = MAX_RAW_BYTES) -> Profile:
    try:
        with open(path, "rb") as f:
            data = f.read(max_raw_bytes + 1)
    except OSError as exc:
        raise PprofError(f"cannot read {os.fspath(path)}: {exc.strerror or exc}") from None
    return parse(data, max_raw_bytes)


def parse(data: bytes, max_raw_bytes: int = MAX_RAW_BYTES) -> Profile:
    """Decodes gzipped or raw profile.proto bytes into a Profile."""
    return from_message(decode_message(data, max_raw_bytes))


def decode_message(data: bytes, max_raw_bytes: int = MAX_RAW_BYTES) -> pb.Profile:
    """The raw protobuf message (for callers that need fields the plain Profile leaves out)."""
    if not data:
        raise PprofError("empty input: not a pprof profile")
    raw = _gunzip(data, max_raw_bytes) if data[:2] == _GZIP_MAGIC else data
    if len(raw) > max_raw_bytes:
        raise PprofError(f"profile larger than {max_raw_bytes} bytes")
    message = pb.Profile()
    try:
        message.ParseFromString(raw)
    except (DecodeError, ValueError, RecursionError) as exc:
        raise PprofError(f"not a pprof profile (protobuf does not decode: {exc})") from None
    if not message.string_table or message.string_table[0] != "":
        raise PprofError("not a pprof profile (its string table does not begin with the empty string)")
    if not message.sample_type:
        raise PprofError("not a pprof profile (it declares no sample types)")
    return message


def _gunzip(data: bytes, max_raw_bytes: int) -> bytes:
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    out = bytearray()
    try:
        while data:
            out += decompressor.decompress(data, max_raw_bytes + 1 - len(out))
            if len(out) > max_raw_bytes:
                raise PprofError(f"profile larger than {max_raw_bytes} bytes once decompressed")
            data = decompressor.unconsumed_tail
            if decompressor.eof:
                break
    except zlib.error as exc:
        raise PprofError(f"corrupt gzip data: {exc}") from None
    if not decompressor.eof:
        raise PprofError("truncated gzip data: the profile ends early")
    return bytes(out)


class _Strings:
    def __init__(self, table: list[str]) -> None:
        self.table = table

    def __call__(self, index: int, what: str) -> str:
        if not 0 <= index < len(self.table):
            raise PprofError(f"corrupt profile: {what} names string {index}, the table has {len(self.table)}")
        text = self.table[index]
        return text if len(text) <= MAX_NAME_CHARS else text[:MAX_NAME_CHARS] + "…"


def from_message(message: pb.Profile, max_samples: int = MAX_SAMPLES) -> Profile:
    """Resolves every sample's location ids to function names (inlined frames expanded, leaf first)."""
    if len(message.sample) > max_samples or len(message.location) > max_samples:
        raise PprofError(f"profile has more than {max_samples} samples or locations")
    string = _Strings(list(message.string_table))
    types = tuple(SampleType(string(st.type, "a sample type"), string(st.unit, "a sample unit"))
                  for st in message.sample_type)
    functions = {f.id: string(f.name, f"function {f.id}") for f in message.function}
    mappings = {m.id: os.path.basename(string(m.filename, f"mapping {m.id}")) for m in message.mapping}
    frames: dict[int, tuple[str, ...]] = {}
    for loc in message.location:
        frames[loc.id] = _location_frames(loc, functions, mappings)
    samples = []
    for i, sample in enumerate(message.sample):
        if len(sample.value) != len(types):
            raise PprofError(f"corrupt profile: sample {i} has {len(sample.value)} values for {len(types)} types")
        stack: list[str] = []
        for loc_id in sample.location_id:
            try:
                stack.extend(frames[loc_id])
            except KeyError:
                raise PprofError(f"corrupt profile: sample {i} names location {loc_id}, which is not in it") from None
        samples.append(Sample(tuple(stack) or NO_STACK, tuple(sample.value)))
    default = string(message.default_sample_type, "the default sample type") or types[-1].type
    period_type = (SampleType(string(message.period_type.type, "the period type"),
                              string(message.period_type.unit, "the period unit"))
                   if message.HasField("period_type") else None)
    return Profile(types, default, tuple(samples), period_type, message.period, message.duration_nanos,
                   message.time_nanos)


def _location_frames(loc: pb.Location, functions: dict[int, str], mappings: dict[int, str]) -> tuple[str, ...]:
    """The functions at one address, innermost first; an unsymbolized address is named by its mapping."""
    if not loc.line:
        binary = mappings.get(loc.mapping_id, "")
        return (f"{binary}+0x{loc.address:x}" if binary else f"0x{loc.address:x}",)
    names = []
    for line in loc.line:
        try:
            names.append(functions[line.function_id] or f"0x{loc.address:x}")
        except KeyError:
            raise PprofError(f"corrupt profile: location {loc.id} names function {line.function_id}, "
                             "which is not in it") from None
    return tuple(names)

