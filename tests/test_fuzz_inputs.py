"""Property tests of every parser of outside input: it answers with a value or its own clear error, never
with any other exception (a crash in a daemon thread would be silent data loss)."""

from __future__ import annotations

import argparse

import pytest
from flask import Flask
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fodc import config
from fodc.agent import settings as agent_settings
from fodc.incident.rules import RuleError, parse_rule
from fodc.nodeconf.argv import parse_argv
from fodc.nodeconf.redact import SecretNames, redact_argv, redact_config_text
from fodc.proxy.httpargs import BadRequest, query_args
from fodc.proxy.registry import AgentRegistry, RegistrationError
from fodc.times import BadTime, parse_time_ms
from fodc.v1 import fodc_pb2 as pb
from fodc.wire import registration_from_pb

text = st.text(max_size=200)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(text)
def test_time_parameters(value):
    try:
        assert isinstance(parse_time_ms(value, "start"), int)
    except BadTime as exc:
        assert "start" in str(exc)


@pytest.mark.parametrize("parse", [config.duration, config.byte_size, config.labels, config.name_list,
                                   config.percent, config.positive_float, config.host_port, config.role])
@FAST
@given(value=text)
def test_option_types(parse, value):
    try:
        parse(value)
    except argparse.ArgumentTypeError as exc:
        assert str(exc)


@FAST
@given(st.lists(st.tuples(st.sampled_from(["role", "node_id", "status", "start", "x", "limit"]), text), max_size=6))
def test_query_parameters(pairs):
    app = Flask("fuzz")
    with app.test_request_context(query_string=pairs):
        try:
            result = query_args({"role": None, "node_id": None, "status": ("online", "unconnected")})
            assert set(result) <= {"role", "node_id", "status"}
        except BadRequest as exc:
            assert str(exc)


@FAST
@given(text)
def test_incident_rules(value):
    try:
        rule = parse_rule(value)
        assert rule.name and rule.metric
    except RuleError as exc:
        assert "invalid" in str(exc)


@FAST
@given(st.lists(st.text(max_size=30), max_size=20))
def test_argv_and_its_redaction(argv):
    parsed = parse_argv(argv)
    assert all(isinstance(v, (str, list)) for v in parsed.flags.values())
    assert len(redact_argv(argv, SecretNames())) == len(argv)


@FAST
@given(st.text(max_size=2000))
def test_config_file_redaction_keeps_every_line(value):
    redacted, count = redact_config_text(value, SecretNames())
    assert len(redacted.splitlines()) == len(value.splitlines()) and count >= 0


@FAST
@given(st.binary(max_size=400))
def test_registration_messages_from_the_network(raw):
    registry = AgentRegistry(30, 300, 10)
    message = pb.Registration()
    try:
        message.ParseFromString(raw)
    except DecodeError:
        return
    try:
        registry.register(registration_from_pb(message), 1_000)
    except RegistrationError as exc:
        assert str(exc)


@FAST
@given(st.lists(st.tuples(st.sampled_from(["scrape-interval", "window-memory", "node-labels", "incident-rule",
                                            "node-env-deny", "proxy-addr", "unknown-option", "ktm-enabled"]),
                          st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=40)),
                max_size=5))
def test_agent_config_files(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("conf") / "agent.conf"
    path.write_text("".join(f"{k} = {v}\n" for k, v in lines))
    try:
        agent_settings.parse_settings(["--config", str(path), "--node-role", "liaison", "--window-dir", ""])
    except SystemExit as exc:
        assert exc.code == 2
