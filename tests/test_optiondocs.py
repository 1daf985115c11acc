"""Options declared once: the generated references match the declarations, and each declaration is complete."""

from __future__ import annotations

from pathlib import Path

import pytest

from fodc import optiondocs
from fodc.agent.settings import AgentSettings
from fodc.options import Settings
from fodc.proxy.settings import ProxySettings

REPO = Path(__file__).resolve().parent.parent


def test_generated_files_are_up_to_date() -> None:
    stale = optiondocs.stale_files(REPO)
    assert stale == [], f"stale: {', '.join(map(str, stale))}; run dev/gen-options"


def test_a_hand_edit_of_a_generated_part_is_stale(tmp_path: Path) -> None:
    for path in optiondocs.generated_files(REPO):
        target = tmp_path / path.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    conf = tmp_path / "packaging/etc/agent.conf"
    conf.write_text(conf.read_text().replace("# scrape-interval = 15s", "# scrape-interval = 20s"))
    readme = tmp_path / "README.md"
    readme.write_text(readme.read_text().replace("| `--max-agents` | `1000` |", "| `--max-agents` | `100` |"))
    stale = {str(p.relative_to(tmp_path)) for p in optiondocs.stale_files(tmp_path)}
    assert stale == {"README.md", "packaging/etc/agent.conf"}
    outside = tmp_path / "ansible/roles/fodc_agent/defaults/main.yml"  # hand-written text around the block
    outside.write_text(outside.read_text() + "# a note of the operator's\n")
    assert {str(p.relative_to(tmp_path)) for p in optiondocs.stale_files(tmp_path)} == stale


@pytest.mark.parametrize("kind", [AgentSettings, ProxySettings])
def test_every_option_is_declared_once_with_help_and_a_value_to_show(kind: type[Settings]) -> None:
    names = [option.name for _s, _a, option in kind.all_options()]
    assert len(names) == len(set(names))
    for _s, _a, option in kind.all_options():
        assert option.help and not option.help.endswith("."), option.name  # references add their own stops
        assert optiondocs.shown_value(option)
        if option.default is not None and not option.required:
            option.value(None)  # the declared default parses


@pytest.mark.parametrize(("kind", "role"), [(AgentSettings, "fodc_agent"), (ProxySettings, "fodc_proxy")])
def test_role_variables_mirror_options_with_the_same_defaults(kind: type[Settings], role: str) -> None:
    import yaml

    specs = yaml.safe_load((REPO / f"ansible/roles/{role}/meta/argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    defaults = yaml.safe_load((REPO / f"ansible/roles/{role}/defaults/main.yml").read_text())
    for var, option in optiondocs.role_options(kind, role):
        assert options[var]["description"].startswith(f"{option.name}: ")
        if "default" in options[var]:
            assert defaults[var] == options[var]["default"]
        if option.default and option.role_default is None and "default" in options[var] and not option.repeat:
            assert option.value(str(options[var]["default"])) == option.value(None), var


def test_a_section_is_read_whole_or_flat() -> None:
    from fodc.agent.settings import parse_settings

    settings = parse_settings(["--config", "/dev/null", "--node-role", "liaison", "--scrape-interval", "20s"])
    assert settings.scrape.interval == settings.scrape_interval == 20
    assert settings.option_values()["scrape_interval"] == 20
    assert settings.node_metrics_urls == settings.node.metrics_urls  # a flat name from before the declarations
    with pytest.raises(AttributeError, match="no setting 'scrape_intervall'"):
        _ = settings.scrape_intervall
