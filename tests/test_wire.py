"""The committed generated protobuf/gRPC modules must match proto/ (run dev/gen-proto after editing it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fodc.model import Address, Registration
from fodc.wire import registration_from_pb, registration_to_pb

REPO = Path(__file__).resolve().parent.parent


def test_generated_code_is_not_stale(tmp_path):
    pytest.importorskip("grpc_tools")
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{REPO / 'proto'}", f"--python_out={tmp_path}",
                    f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}", str(REPO / "proto/fodc/v1/fodc.proto")],
                   check=True)
    for name in ("fodc_pb2.py", "fodc_pb2.pyi", "fodc_pb2_grpc.py"):
        fresh = (tmp_path / "fodc/v1" / name).read_text()
        committed = (REPO / "fodc/v1" / name).read_text()
        assert fresh == committed, f"fodc/v1/{name} is stale: run dev/gen-proto"


def test_registration_survives_the_wire():
    reg = Registration(node_id="n", role="liaison", primary=Address("10.1.2.3", 17912),
                       secondary={"gossip": Address("10.1.2.3", 17932)}, labels={"zone": "a"},
                       agent_version="1", capabilities={"ktm_mode": "full"}, hostname="h", agent_started_ms=5)
    assert registration_from_pb(registration_to_pb(reg)) == reg
