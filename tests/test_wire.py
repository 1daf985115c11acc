"""The committed generated protobuf/gRPC modules must match proto/ (run dev/gen-proto after editing it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fodc.artifact_names import PROFILES
from fodc.model import Address, Registration
from fodc.v1 import fodc_pb2 as pb
from fodc.wire import registration_from_pb, registration_to_pb
from fodc.wire_results import incident_from_pb, incident_to_pb, snapshot_from_pb, snapshot_to_pb

REPO = Path(__file__).resolve().parent.parent


def test_generated_code_is_not_stale(tmp_path):
    pytest.importorskip("grpc_tools")
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{REPO / 'proto'}", f"--python_out={tmp_path}",
                    f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}", str(REPO / "proto/fodc/v1/fodc.proto")],
                   check=True)
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{REPO / 'proto'}", f"--python_out={tmp_path}",
                    f"--pyi_out={tmp_path}", str(REPO / "proto/fodc/v1/series_table.proto")], check=True)
    for name in ("fodc_pb2.py", "fodc_pb2.pyi", "fodc_pb2_grpc.py", "series_table_pb2.py", "series_table_pb2.pyi"):
        fresh = (tmp_path / "fodc/v1" / name).read_text()
        committed = (REPO / "fodc/v1" / name).read_text()
        assert fresh == committed, f"fodc/v1/{name} is stale: run dev/gen-proto"


def test_registration_survives_the_wire():
    reg = Registration(node_id="n", role="liaison", primary=Address("10.1.2.3", 17912),
                       secondary={"gossip": Address("10.1.2.3", 17932)}, labels={"zone": "a"},
                       agent_version="1", capabilities={"ktm_mode": "full"}, hostname="h", agent_started_ms=5)
    assert registration_from_pb(registration_to_pb(reg)) == reg


def test_every_profile_the_agent_takes_has_its_kind_on_the_wire():
    kinds = {pb.ProfileKind.Name(n).lower() for n in pb.ProfileKind.values()} - {"profile_kind_unspecified"}
    assert kinds == set(PROFILES)


def test_typed_results_survive_the_wire():
    incident = {"id": "20270101T000000Z-node-down", "node_id": "n", "role": "liaison", "trigger": "node-down",
                "summary": "gone", "detail": {"pid": 7, "signal": None}, "at": "2027-01-01T00:00:00Z",
                "at_ms": 1_798_761_600_000, "onset": "2027-01-01T00:00:00Z", "onset_ms": 1_798_761_600_000,
                "complete_by_ms": 1_798_761_900_000, "state": "complete", "errors": {"node.log": "none"},
                "file": "x.tar.gz", "size": 9, "files": {"a.json": {"size": 2, "sha256": "ab"}},
                "ring_profiles": ["1-cpu-5s.pb.gz"]}
    msg = pb.Incident.FromString(incident_to_pb(incident).SerializeToString())
    assert incident_from_pb(msg, json.loads(msg.detail_json)) == incident
    snapshot = {"hash": "h", "captured_at": "a", "confirmed_at": "b", "flags": {"x": "1"}, "captures": 3}
    msg = pb.ConfigSnapshot.FromString(snapshot_to_pb(snapshot).SerializeToString())
    assert snapshot_from_pb(msg, json.loads(msg.content_json)) == snapshot


def test_registration_says_whether_the_agent_takes_typed_commands():
    reg = Registration(node_id="n", role="liaison", primary=Address("10.1.2.3", 17912))
    assert registration_to_pb(reg).command_protocol == pb.COMMAND_PROTOCOL_TYPED
    old = registration_to_pb(reg)
    old.ClearField("command_protocol")  # what the previous release sends
    assert registration_from_pb(old).typed_commands is False


def test_the_proxy_needs_nothing_of_the_agents_diagnostics_package():
    """fodc.diag is the agent's (profile fetches, the ring, the artifact store); what both sides name is
    fodc.artifact_names."""
    code = ("import pkgutil, importlib, sys, fodc.proxy\n"
            "for m in pkgutil.walk_packages(fodc.proxy.__path__, 'fodc.proxy.'):\n"
            "    importlib.import_module(m.name)\n"
            "print(sorted(n for n in sys.modules if n.startswith('fodc.diag')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_an_incident_without_onset_or_due_time_stays_without_them():
    """An incident an older agent recorded has no onset: it must not come out as one at 1970-01-01."""
    incident = {"id": "i", "node_id": "n", "role": "liaison", "trigger": "node-down", "detail": {},
                "at": "2027-01-01T00:00:00Z", "at_ms": 1_798_761_600_000, "state": "failed", "errors": {}}
    msg = pb.Incident.FromString(incident_to_pb(incident).SerializeToString())
    assert incident_from_pb(msg, {}) == incident
