"""What each Debian package's venv keeps (packaging/deb/venvtrim.py) and the copyright it generates.

The closure is computed over the real source tree: these tests fail when a daemon starts importing
something its package would no longer ship, or when the packages would carry the simulator again.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "packaging" / "deb" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


venvtrim = _load("venvtrim")
bundled_copyright = _load("bundled_copyright")
MODULES = venvtrim.fodc_modules(REPO / "fodc")


def _closure(*entries: str) -> tuple[set[str], set[str]]:
    return venvtrim.closure(MODULES, entries)


def test_the_agent_imports_neither_flask_gunicorn_nor_mcp() -> None:
    _, third_party = _closure("fodc.agent.main", "fodc.agent.configured")
    assert {"grpc", "google", "configargparse", "sdnotify", "prometheus_client"} <= third_party
    assert third_party.isdisjoint({"flask", "werkzeug", "gunicorn", "mcp", "pydantic"})


def test_the_proxy_imports_flask_and_gunicorn() -> None:
    _, third_party = _closure("fodc.proxy.main")
    assert {"flask", "gunicorn", "grpc"} <= third_party


def test_no_production_program_reaches_the_simulator_or_the_demo() -> None:
    for entry in ("fodc.agent.main", "fodc.proxy.main", "fodc.cli.main"):
        reached, _ = _closure(entry)
        assert not any(m == "fodc.demo" or m.startswith("fodc.sim") for m in reached), entry


def test_a_module_started_by_name_is_part_of_the_closure() -> None:
    # The BCC loader runs as `python -m fodc.ktm.bccload`, a string, not an import statement.
    reached, _ = _closure("fodc.agent.main")
    assert "fodc.ktm.bccload" in reached
    assert "fodc.proxy.api" not in reached and "fodc.cli.main" not in reached


def test_lazy_imports_inside_functions_count(tmp_path: Path) -> None:
    package = tmp_path / "fodc"
    (package / "inner").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "inner" / "__init__.py").write_text("")
    (package / "main.py").write_text("def later():\n    from .inner import used\n    import yaml\n")
    (package / "inner" / "used.py").write_text("import json\n")
    (package / "inner" / "unused.py").write_text("import flask\n")
    reached, third_party = venvtrim.closure(venvtrim.fodc_modules(package), ["fodc.main"])
    assert reached == {"fodc", "fodc.main", "fodc.inner", "fodc.inner.used"}
    assert third_party == {"yaml"}


def test_unreached_modules_and_whole_unreached_packages_are_removed(tmp_path: Path) -> None:
    package = tmp_path / "fodc"
    for directory in ("kept", "gone"):
        (package / directory / "__pycache__").mkdir(parents=True)
        (package / directory / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "kept" / "a.py").write_text("")
    (package / "kept" / "b.py").write_text("")
    (package / "kept" / "__pycache__" / "b.cpython-311.pyc").write_bytes(b"")
    (package / "gone" / "page.html").write_text("data of a removed package goes with it")
    modules = venvtrim.fodc_modules(package)
    removed = venvtrim._remove_unreached(package, modules, {"fodc", "fodc.kept", "fodc.kept.a"})
    assert sorted(removed) == ["fodc.gone.*", "fodc.kept.b"]
    assert sorted(p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()) == [
        "__init__.py", "kept/__init__.py", "kept/a.py"]


def test_an_unknown_entry_module_is_refused() -> None:
    with pytest.raises(SystemExit, match="no such FODC module: fodc.agent.mian"):
        _closure("fodc.agent.mian")


def test_trim_keeps_only_the_requirements_of_what_is_imported(tmp_path: Path) -> None:
    """A real venv with two small distributions: the one imported stays, the other and pip go."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "fodc").mkdir()
    (site / "fodc" / "__init__.py").write_text("")
    (site / "fodc" / "main.py").write_text("import wanted\n")
    for name in ("wanted", "unwanted"):
        (site / f"{name}.py").write_text("")
        info = site / f"{name}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\nLicense: MIT\n")
        listed = (f"{name}.py", f"{info.name}/METADATA", f"{info.name}/LICENSE", f"{info.name}/RECORD")
        (info / "RECORD").write_text("".join(f"{path},,\n" for path in listed))
        (info / "LICENSE").write_text("MIT")
    # pip is what uninstalls; the venv under test borrows this interpreter's.
    pip = Path(__import__("pip").__file__).parent
    (site / "pip").symlink_to(pip, target_is_directory=True)
    (venv / "bin" / "unused-script").write_text("#!/bin/sh\n")
    manifest = tmp_path / "manifest.json"
    result = subprocess.run([str(venv / "bin" / "python"), str(REPO / "packaging/deb/venvtrim.py"), "--venv", str(venv),
                             "--entry", "fodc.main", "--manifest", str(manifest)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    report = json.loads(manifest.read_text())
    assert [d["name"] for d in report["bundled"]] == ["wanted"]
    assert report["bundled"][0]["licence"] == "MIT" and report["bundled"][0]["licence_files"] == [
        "wanted-1.0.dist-info/LICENSE"]
    assert report["distributions_removed"] == ["unwanted"]
    assert sorted(p.name for p in site.iterdir()) == ["__pycache__", "fodc", "wanted-1.0.dist-info", "wanted.py"]
    # Byte code is unchecked-hash: valid whatever mtimes dpkg gives the sources (flags word 0b01).
    compiled = [*site.rglob("*.pyc")]
    assert {p.name.split(".")[0] for p in compiled} == {"wanted", "__init__", "main"}
    assert {int.from_bytes(p.read_bytes()[4:8], "little") for p in compiled} == {1}
    assert not (venv / "bin" / "unused-script").exists()


def test_generated_copyright_lists_each_bundled_wheel_before_the_licence_texts(tmp_path: Path) -> None:
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"site_packages": "lib/python3.11/site-packages", "bundled": [
        {"name": "grpcio", "version": "1.85.1", "licence": "Apache-2.0", "author": "The gRPC Authors",
         "licence_files": ["grpcio-1.85.1.dist-info/LICENSE"], "top_level": ["grpc", "grpcio-1.85.1.dist-info"]}]}))
    out = subprocess.run([sys.executable, str(REPO / "packaging/deb/bundled_copyright.py"),
                          str(REPO / "packaging/deb/debian/copyright"), str(manifest), "/opt/venvs/fodc-agent"],
                         capture_output=True, text=True, check=True).stdout
    paragraphs = out.split("\n\n")
    grpc = next(p for p in paragraphs if p.startswith("Files: opt/") and "grpcio" in p)
    assert grpc.startswith("Files: opt/venvs/fodc-agent/lib/python3.11/site-packages/grpc/* ")
    assert "\nCopyright: The gRPC Authors\nLicense: Apache-2.0\n" in grpc
    assert "/opt/venvs/fodc-agent/lib/python3.11/site-packages/grpcio-1.85.1.dist-info/LICENSE" in grpc
    assert paragraphs.index(grpc) < next(i for i, p in enumerate(paragraphs) if p.startswith("License: MIT"))
    assert out.count("Files: *\n") == 1


manpage = _load("manpage")


def test_help_text_that_looks_like_a_roff_request_is_escaped() -> None:
    roff = ".TH FODC 1\n.SH NAME\n.TP\ndrift: e.g. 'flag.*-timeout',\n'env.MY_*'); repeat\n.yaml files\n.B bold\n"
    assert manpage.escape_text_lines(roff).split("\n") == [
        ".TH FODC 1", ".SH NAME", ".TP", "drift: e.g. 'flag.*-timeout',", "\\&'env.MY_*'); repeat",
        "\\&.yaml files", ".B bold", ""]
