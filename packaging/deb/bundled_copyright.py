"""Writes debian/<package>.copyright: the source's debian/copyright plus one paragraph per bundled wheel.

    bundled_copyright.py debian/copyright MANIFEST.json /opt/venvs/<package> > debian/<package>.copyright

The manifest is venvtrim.py's: what each venv kept, with the version, licence, author and licence files
read from the wheels' own metadata at build time, so the list is always the one that ships. dh_installdocs
installs the result as /usr/share/doc/<package>/copyright.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def paragraphs(manifest: dict, install_dir: str) -> list[str]:
    site = f"{install_dir}/{manifest['site_packages']}"
    out = []
    for dist in manifest["bundled"]:
        files = " ".join(f"{site.lstrip('/')}/{entry}" + ("" if entry.endswith(".py") else "/*")
                         for entry in dist["top_level"]) or f"{site.lstrip('/')}/*"
        licence_text = (f"{dist['name']} {dist['version']}, installed unchanged from its wheel on PyPI. "
                        f"Its licence: {', '.join(f'{site}/{f}' for f in dist['licence_files'])}"
                        if dist["licence_files"] else
                        f"{dist['name']} {dist['version']}, installed unchanged from its wheel on PyPI; "
                        "its metadata names the licence only.")
        out.append(f"Files: {files}\nCopyright: {dist['author']}\nLicense: {' '.join(dist['licence'].split())}\n"
                   f" {licence_text}\n")
    return out


def main(argv: list[str]) -> int:
    base, manifest_path, install_dir = Path(argv[0]), Path(argv[1]), argv[2]
    text = base.read_text()
    head, sep, rest = text.partition("\n\nLicense: ")  # bundled paragraphs go before the stand-alone licences
    manifest = json.loads(manifest_path.read_text())
    bundled = "\n".join(paragraphs(manifest, install_dir))
    sys.stdout.write(f"{head.rstrip()}\n\n{bundled}\n{sep.lstrip()}{rest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
