"""The remote-write body (fodc/remotewrite/encode.py): a snappy-compressed WriteRequest with the receivers' label
rules, cut into bounded requests; generated code current with proto/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fodc.remotewrite import remote_pb2 as pb
from fodc.remotewrite.encode import (
    Series,
    compress,
    decode,
    decompress,
    encode,
    label_bytes,
    series_labels,
    split,
)

REPO = Path(__file__).resolve().parent.parent


def test_generated_code_is_not_stale(tmp_path):
    pytest.importorskip("grpc_tools")
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{REPO / 'proto'}", f"--python_out={tmp_path}",
                    f"--pyi_out={tmp_path}", str(REPO / "proto/fodc/remotewrite/remote.proto")], check=True)
    for name in ("remote_pb2.py", "remote_pb2.pyi"):
        fresh = (tmp_path / "fodc/remotewrite" / name).read_text()
        assert fresh == (REPO / "fodc/remotewrite" / name).read_text(), f"{name} is stale: run dev/gen-proto"


def test_the_wire_uses_the_published_field_numbers():
    """Hand-checked bytes: WriteRequest.timeseries=1, TimeSeries.labels=1 / samples=2, Label name=1 value=2,
    Sample value=1 (double) timestamp=2 (varint)."""
    body = encode([Series((("__name__", "up"),), [1000], [1.0])])
    label = b"\x0a\x08__name__" + b"\x12\x02up"  # name=1, value=2 (length-delimited)
    sample = b"\x09" + bytes.fromhex("000000000000f03f") + b"\x10\xe8\x07"  # value=1 (1.0 LE), timestamp=2 (1000)
    series = b"\x0a" + bytes([len(label)]) + label + b"\x12" + bytes([len(sample)]) + sample
    assert body == b"\x0a" + bytes([len(series)]) + series


labels = st.lists(st.tuples(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), st.text(max_size=20)),
                  max_size=5).map(lambda pairs: tuple(sorted(dict(pairs).items())))
values = st.floats(allow_nan=False) | st.just(float("inf"))


@given(st.lists(st.tuples(labels, st.lists(values, min_size=1, max_size=30), st.integers(-2**62, 2**62),
                          st.booleans()), max_size=20),
       st.integers(1, 50))
def test_requests_decode_to_the_same_samples_in_order_and_stay_within_the_limit(series, limit):
    sent = []
    for i, (own, vals, first, cached) in enumerate(series):
        names = (("__name__", f"m{i}"), *own)
        sent.append(Series(names, list(range(first, first + len(vals))), vals, label_bytes(names) if cached else b""))
    received: dict[tuple, list] = {}
    for request in split(sent, limit):
        assert sum(len(s) for s in request) <= limit
        for one in decode(compress(encode(request))):
            received.setdefault(one.labels, []).extend(zip(one.timestamps_ms, one.values, strict=True))
    assert received == {s.labels: list(zip(s.timestamps_ms, s.values, strict=True)) for s in sent}


def test_labels_are_sorted_without_empty_values_and_never_overwrite_a_metric_own():
    got = series_labels("x_bucket", (("le", "0.5"), ("node_role", "mine"), ("empty", "")),
                        (("node_id", "n"), ("node_role", "liaison"), ("node_zone", "")))
    assert got == (("__name__", "x_bucket"), ("fodc_node_role", "liaison"), ("le", "0.5"), ("node_id", "n"),
                   ("node_role", "mine"))


def test_a_body_claiming_to_expand_beyond_the_limit_is_refused_before_it_is_expanded():
    body = compress(b"\0" * 100_000)
    with pytest.raises(ValueError, match="expands beyond"):
        decompress(body, 10_000)
    assert pb.WriteRequest.FromString(decompress(compress(b""), 10)) == pb.WriteRequest()
