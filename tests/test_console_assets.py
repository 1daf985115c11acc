"""The console works with no internet: every script and stylesheet a page loads ships in the package, and each
vendored library is the pinned npm version with its licence beside it."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONSOLE = REPO / "fodc" / "proxy" / "console"


def _pinned() -> list[tuple[str, list[str]]]:
    text = (REPO / "dev" / "vendor-assets").read_text()
    block = text.split("PINNED=(", 1)[1].split("\n)", 1)[0]
    entries = []
    for line in block.splitlines():
        line = line.strip()
        if line.startswith('"'):
            spec, *files = shlex.split(line)[0].split()
            entries.append((spec, files))
    return entries


def test_every_page_loads_only_files_of_the_package():
    for template in (CONSOLE / "templates").glob("*.html"):
        for url in re.findall(r'(?:src|href)="([^"]+)"', template.read_text()):
            if url.startswith(("data:", "#")) or not url.startswith("/console/static/"):
                assert url.startswith(("/", "data:", "#")), f"{template.name} loads {url} from elsewhere"
                continue
            assert (CONSOLE / "static" / url.removeprefix("/console/static/")).is_file(), url


def test_scripts_fetch_nothing_from_another_origin():
    for script in (CONSOLE / "static" / "js").glob("*.js"):
        assert not re.search(r"""fetch\(\s*["'`]https?:""", script.read_text()), script.name


def test_each_vendored_library_is_the_pinned_version_with_its_licence():
    pinned = _pinned()
    assert pinned, "dev/vendor-assets pins nothing"
    for spec, files in pinned:
        name = spec.rsplit("@", 1)[0]
        directory = CONSOLE / "static" / "vendor" / name
        assert (directory / "VERSION").read_text().startswith(f"{spec} sha256:")
        for file in files:
            assert (directory / Path(file).name).stat().st_size > 0, file
        assert "LICENSE" in [Path(f).name for f in files] and (directory / "LICENSE").read_text().strip()
