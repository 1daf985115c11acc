"""Option parsing: value types, precedence of flag > env > config file, and one-line errors for bad input."""

from __future__ import annotations

import argparse
import subprocess

import pytest
from procs import BIN

from fodc import config
from fodc.agent.settings import build_parser as build_agent_parser
from fodc.agent.settings import parse_settings as agent_settings
from fodc.proxy.settings import build_parser as build_proxy_parser
from fodc.proxy.settings import parse_settings as proxy_settings


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25), ("2", 2), ("1.5s", 1.5), ("1d", 86400)])
def test_durations_parse_go_style(text, seconds):
    assert config.duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "5 minutes", "-3s", "1x", "s5"])
def test_bad_durations_are_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        config.duration(text)


@pytest.mark.parametrize(("text", "size"), [("4194304", 4194304), ("30MiB", 30 * 2**20), ("512k", 512 * 1024),
                                            ("1GB", 10**9)])
def test_sizes_parse(text, size):
    assert config.byte_size(text) == size


@pytest.mark.parametrize(("text", "host", "port"), [
    (":17900", "", 17900), ("10.0.0.5:2121", "10.0.0.5", 2121), ("[::1]:80", "::1", 80),
    ("proxy.example:17900", "proxy.example", 17900)])
def test_addresses_parse(text, host, port):
    assert config.host_port(text) == config.HostPort(host, port)


@pytest.mark.parametrize("text", ["17900", "host:", "host:99999", "a:b:c", "[::1]80", "ho st:1"])
def test_malformed_addresses_are_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        config.host_port(text)


def test_node_address_requires_a_host():
    with pytest.raises(argparse.ArgumentTypeError, match="host is required"):
        config.node_address(":17912")


def test_labels_parse_and_reject_bad_names():
    assert config.labels("zone=a, rack=r1,empty=") == {"zone": "a", "rack": "r1", "empty": ""}
    with pytest.raises(argparse.ArgumentTypeError):
        config.labels("1bad=x")
    with pytest.raises(argparse.ArgumentTypeError):
        config.labels("novalue")


def test_flag_beats_environment_beats_config_file(tmp_path, monkeypatch):
    conf = tmp_path / "agent.conf"
    conf.write_text("node-role = datanode-cold\nnode-id = from-file\nscrape-interval = 20s\nnode-labels = a=1\n")
    monkeypatch.setenv("FODC_NODE_ID", "from-env")
    monkeypatch.setenv("FODC_SCRAPE_INTERVAL", "25s")
    settings = agent_settings(["--config", str(conf), "--scrape-interval", "30s"])
    assert settings.node_role == "datanode-cold"  # file
    assert settings.node_id == "from-env"  # env beats file
    assert settings.scrape_interval == 30  # flag beats env
    assert settings.node_labels == {"a": "1"}


def test_proxy_defaults_match_the_design():
    s = proxy_settings(["--config", "/dev/null"])
    assert (s.grpc_listen_addr.port, s.http_listen_addr.port) == (17900, 17901)
    assert (s.agent_heartbeat_timeout, s.agent_cleanup_timeout, s.max_agents) == (30, 300, 1000)
    assert s.grpc_max_msg_size == 4 * 1024 * 1024


def _run(cmd: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / cmd), "--config", "/dev/null", *args], capture_output=True, text=True,
                          timeout=30)


@pytest.mark.parametrize(("cmd", "args", "needle"), [
    ("fodc-proxy", ["--agent-heartbeat-timeout", "30s", "--agent-cleanup-timeout", "30s"], "--agent-cleanup-timeout"),
    ("fodc-proxy", ["--max-agents", "0"], "--max-agents"),
    ("fodc-proxy", ["--grpc-listen-addr", "nonsense"], "--grpc-listen-addr"),
    ("fodc-agent", ["--node-role", "datanode-lukewarm"], "--node-role"),
    ("fodc-agent", ["--node-role", "liaison", "--proxy-addr", "proxy:port"], "--proxy-addr"),
    ("fodc-agent", ["--node-role", "liaison", "--node-address", "10.0.0.1"], "--node-address"),
    ("fodc-agent", ["--node-role", "liaison", "--scrape-interval", "soon"], "--scrape-interval"),
    ("fodc-agent", [], "--node-role"),
    ("fodc-agent", ["--node-role", "liaison", "--profile-every", "10s", "--profile-cpu-seconds", "10"],
     "--profile-cpu-seconds"),
    ("fodc-agent", ["--node-role", "liaison", "--profile-ring-bytes", "lots"], "--profile-ring-bytes"),
])
def test_bad_flags_exit_nonzero_with_one_line_naming_the_option(cmd, args, needle):
    result = _run(cmd, *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{cmd}: error:") and needle in lines[0]


def test_bad_value_in_config_file_is_reported_like_a_flag(tmp_path):
    conf = tmp_path / "proxy.conf"
    conf.write_text("agent-heartbeat-timeout = 1m\nagent-cleanup-timeout = 30s\n")
    result = subprocess.run([str(BIN / "fodc-proxy"), "--config", str(conf)], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 2
    assert "--agent-cleanup-timeout" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("cmd", "build_parser"), [("fodc-proxy", build_proxy_parser),
                                                   ("fodc-agent", build_agent_parser)])
def test_help_explains_every_option(cmd, build_parser):
    result = subprocess.run([str(BIN / cmd), "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert "FODC_" in result.stdout and "config file" in result.stdout
    for action in build_parser()._actions:
        assert action.help, f"{cmd} option {action.option_strings} has no help text"
        assert action.option_strings[-1] in result.stdout
