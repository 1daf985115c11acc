"""The shipped conffiles document every option, and their commented values are the real defaults.

Runs anywhere (no root): it parses packaging/etc/*.conf with the daemons' own option definitions.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from fodc.agent import settings as agent_settings
from fodc.proxy import settings as proxy_settings

from .conftest import REPO

# Commented lines that show an example rather than a default (the option has none, or it is host-specific):
# the declarations say which (`example=`), so a new option needs no edit here.
AGENT_EXAMPLES = {o.name for _s, _a, o in agent_settings.AgentSettings.all_options() if o.example is not None}
# Examples naming files (certificates, secrets) that exist only on a configured host.
AGENT_FILE_EXAMPLES = {o.name for _s, _a, o in agent_settings.AgentSettings.all_options()
                       if o.example and o.example.startswith("/etc/fodc/") and not Path(o.example).exists()}
PROXY_EXAMPLES = {o.name for _s, _a, o in proxy_settings.ProxySettings.all_options() if o.example is not None}


@pytest.fixture(autouse=True)
def _no_fodc_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("FODC_"):
            monkeypatch.delenv(name)


def _option_names(parser) -> set[str]:
    names = set()
    for action in parser._actions:
        longs = [option for option in action.option_strings if option.startswith("--")]
        if longs and longs[0] not in ("--help", "--config", "--check-config"):
            names.add(longs[0][2:])
    return names


def _empty_config(directory: Path) -> str:
    """An existing empty config file, so the host's /etc/fodc/*.conf (if any) cannot leak in."""
    empty = directory / "empty.conf"
    empty.write_text("")
    return str(empty)


def _commented_settings(conffile: Path) -> dict[str, str]:
    return dict(re.findall(r"(?m)^# ([a-z][a-z0-9-]*) = (.+)$", conffile.read_text()))


def test_proxy_conffile_documents_every_option() -> None:
    documented = _commented_settings(REPO / "packaging/etc/proxy.conf")
    assert _option_names(proxy_settings.build_parser()) <= set(documented)


def test_agent_conffile_documents_every_option() -> None:
    documented = _commented_settings(REPO / "packaging/etc/agent.conf")
    assert _option_names(agent_settings.build_parser()) <= set(documented)


def test_conffiles_set_nothing_until_edited() -> None:
    for name in ("proxy.conf", "agent.conf"):
        lines = (REPO / "packaging/etc" / name).read_text().splitlines()
        assert [line for line in lines if line.strip() and not line.startswith("#")] == []


def test_proxy_conffile_shows_the_real_defaults(tmp_path: Path) -> None:
    uncommented = tmp_path / "proxy.conf"
    uncommented.write_text("".join(f"{key} = {value}\n"
                                   for key, value in _commented_settings(REPO / "packaging/etc/proxy.conf").items()
                                   if key not in PROXY_EXAMPLES))
    assert proxy_settings.parse_settings(["--config", str(uncommented)]) == proxy_settings.parse_settings(
        ["--config", _empty_config(tmp_path)])


def test_agent_conffile_shows_the_real_defaults(tmp_path: Path) -> None:
    settings = _commented_settings(REPO / "packaging/etc/agent.conf")
    uncommented = tmp_path / "agent.conf"
    uncommented.write_text("".join(f"{key} = {value}\n" for key, value in settings.items()
                                   if key not in AGENT_EXAMPLES))
    required = ["--node-role", "liaison"]
    assert agent_settings.parse_settings(["--config", str(uncommented), *required]) == agent_settings.parse_settings(
        ["--config", _empty_config(tmp_path), *required])


def test_agent_conffile_examples_are_valid_settings(tmp_path: Path) -> None:
    settings = _commented_settings(REPO / "packaging/etc/agent.conf")
    examples = tmp_path / "agent.conf"
    examples.write_text("".join(f"{key} = {settings[key]}\n" for key in sorted(AGENT_EXAMPLES - AGENT_FILE_EXAMPLES)))
    parsed = agent_settings.parse_settings(["--config", str(examples)])
    assert (parsed.node_role, parsed.node_id, dict(parsed.node_labels)) == (
        "datanode-hot", "banyandb-1", {"zone": "a", "rack": "r1"})
