"""Trims a package's virtualenv to what its program imports, and lists what it bundles (build time only).

debian/rules runs this with the freshly built venv's own interpreter, while pip is still in it:

    venvtrim.py --venv DIR --entry fodc.agent.main --script fodc-agent --manifest OUT.json

Why: requirements.txt pins what any of the three programs needs, so every venv starts with all of it; a
database host's agent has no use for Flask or gunicorn, nor for the simulator. What a program imports is
read from the source, not listed by hand, so the packages follow the code:

- FODC modules kept: the closure of the entry modules over every import statement (also those inside
  functions: lazy imports count) and every string constant naming a FODC module (`python -m fodc.x`).
- distributions kept: those providing a third-party top-level module that a kept FODC module imports,
  with their own requirements (environment markers evaluated, extras followed).
- removed: every other FODC module and package directory, every other distribution (with pip's own
  uninstaller), every console script but the ones named, and pip and setuptools themselves last.
- byte code: everything left is compiled again as unchecked-hash .pyc. pip's timestamp-based .pyc stop
  matching once dpkg-deb clamps the files' mtimes, so every import would compile again: in memory under the
  unit (ProtectSystem=strict), and into /opt as stray files, left behind by purge, when root runs a command.

The manifest names each bundled distribution with its version, licence and licence files, for the
generated debian/copyright.
"""

from __future__ import annotations

import argparse
import ast
import compileall
import json
import py_compile
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path

# Build tools, never needed at run time; removed after everything else (pip does the removing).
BUILD_ONLY = ("setuptools", "pip", "wheel")
_MODULE_NAME = re.compile(r"^fodc(\.[A-Za-z_][A-Za-z0-9_]*)+$")


def fodc_modules(package_dir: Path) -> dict[str, Path]:
    """Every module under the `fodc` package directory, by dotted name (a package by its __init__)."""
    modules = {}
    for path in package_dir.rglob("*.py"):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imported_names(module: str, path: Path) -> Iterator[str]:
    """Dotted names this module may import: import statements anywhere, and FODC module names in strings."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            yield source
            yield from (f"{source}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_NAME.match(node.value):
            yield node.value


def closure(modules: dict[str, Path], entries: Iterable[str]) -> tuple[set[str], set[str]]:
    """(FODC modules reachable from `entries`, third-party top-level module names they import)."""
    reached: set[str] = set()
    third_party: set[str] = set()
    pending = list(entries)
    unknown = [name for name in pending if name not in modules]
    if unknown:
        raise SystemExit(f"venvtrim: no such FODC module: {', '.join(unknown)}")
    while pending:
        name = pending.pop()
        if name in reached:
            continue
        reached.add(name)
        parts = name.split(".")
        pending.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages run first
        for imported in imported_names(name, modules[name]):
            top = imported.split(".")[0]
            if top == "fodc":
                if imported in modules:
                    pending.append(imported)
            elif top and top not in sys.stdlib_module_names and top != "__future__":
                third_party.add(top)
    return reached, third_party


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def required_distributions(top_modules: Iterable[str], site: Path) -> set[str]:
    """Distributions in `site` that provide `top_modules`, closed over their requirements."""
    from pip._vendor.packaging.requirements import Requirement  # the venv's own pip, present at build time

    installed = {_normalise(d.metadata["Name"]): d for d in metadata.distributions(path=[str(site)])}
    providers = metadata.packages_distributions()
    wanted: list[tuple[str, frozenset[str]]] = []
    for top in top_modules:
        for name in providers.get(top, []):
            if _normalise(name) in installed:
                wanted.append((_normalise(name), frozenset()))
    kept: dict[str, set[str]] = {}
    while wanted:
        name, extras = wanted.pop()
        if name in kept and extras <= kept[name]:
            continue
        kept.setdefault(name, set()).update(extras)
        for line in installed[name].requires or []:
            requirement = Requirement(line)
            if requirement.marker is not None and not any(
                    requirement.marker.evaluate({"extra": extra}) for extra in ("", *kept[name])):
                continue
            dependency = _normalise(requirement.name)
            if dependency in installed:
                wanted.append((dependency, frozenset(requirement.extras)))
    return set(kept)


def licence(dist: metadata.Distribution) -> str:
    """A short licence name from the metadata: License-Expression, a one-line License, else the classifiers."""
    meta = dist.metadata
    expression = (meta.get("License-Expression") or "").strip()
    if expression:
        return expression
    text = (meta.get("License") or "").strip()
    if text and "\n" not in text and len(text) <= 60 and text.upper() != "UNKNOWN":
        return text
    classifiers = [c.split(" :: ")[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    return " or ".join(classifiers) or "unknown (see the licence files)"


def licence_files(dist: metadata.Distribution) -> list[str]:
    names = []
    for file in dist.files or []:
        parts = file.parts
        if len(parts) >= 2 and parts[0].endswith(".dist-info") and (
                "licen" in file.as_posix().lower() or "copying" in parts[-1].lower()
                or "notice" in parts[-1].lower() or "authors" in parts[-1].lower()):
            names.append(file.as_posix())
    return sorted(names)


def _author(dist: metadata.Distribution) -> str:
    meta = dist.metadata
    for field in ("Author", "Author-email", "Maintainer", "Maintainer-email"):
        value = " ".join((meta.get(field) or "").split())
        if value and value.upper() != "UNKNOWN":
            return value[:200]
    return f"the {meta['Name']} authors"


def _top_level(dist: metadata.Distribution) -> list[str]:
    """The site-packages entries a distribution installed (packages, modules, its .dist-info)."""
    return sorted({file.parts[0] for file in dist.files or [] if file.parts and file.parts[0] not in ("..", "__pycache__")})


def trim(venv: Path, entries: list[str], scripts: list[str]) -> dict[str, object]:
    site = next((venv / "lib").glob("python3*/site-packages"))
    modules = fodc_modules(site / "fodc")
    reached, third_party = closure(modules, entries)
    removed_modules = _remove_unreached(site / "fodc", modules, reached)
    keep = required_distributions(third_party, site) | {"fodc"}
    installed = {_normalise(d.metadata["Name"]): d for d in metadata.distributions(path=[str(site)])}
    dropped = sorted(name for name in installed if name not in keep and name not in BUILD_ONLY)
    python = str(venv / "bin" / "python")
    if dropped:
        subprocess.run([python, "-m", "pip", "uninstall", "-y", "-q", *dropped], check=True)
    for leftover in site.glob("*.dist-info"):  # pip leaves files its RECORD does not list (REQUESTED)
        if not (leftover / "METADATA").exists():
            shutil.rmtree(leftover)
    for script in (venv / "bin").iterdir():
        if script.is_file() and not script.name.startswith(("python", "activate", "pip")) \
                and script.name not in scripts:
            script.unlink()
    bundled = [{"name": installed[name].metadata["Name"], "version": installed[name].version,
                "licence": licence(installed[name]), "licence_files": licence_files(installed[name]),
                "author": _author(installed[name]), "top_level": _top_level(installed[name])}
               for name in sorted(keep - {"fodc"})]
    _remove_build_tools(venv, site)
    _compile(site)
    return {"venv": str(venv), "site_packages": str(site.relative_to(venv)), "entries": entries,
            "fodc_modules": len(reached), "fodc_modules_removed": removed_modules,
            "third_party_imports": sorted(third_party), "distributions_removed": dropped, "bundled": bundled}


def _remove_unreached(package_dir: Path, modules: dict[str, Path], reached: set[str]) -> list[str]:
    """Deletes FODC modules outside the closure; a directory with no reached module goes whole (with data)."""
    removed = []
    for name in sorted(set(modules) - reached):
        path = modules[name]
        if not path.exists():
            continue  # inside a directory removed already
        if path.name == "__init__.py":
            if not any(m == name or m.startswith(name + ".") for m in reached):
                shutil.rmtree(path.parent)
                removed.append(name + ".*")
            continue
        path.unlink()
        for compiled in (path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"):
            compiled.unlink()
        removed.append(name)
    return removed


def _compile(site: Path) -> None:
    """Byte code that stays valid whatever the files' mtimes: the venv's files never change under dpkg."""
    for stale in site.rglob("*.pyc"):
        stale.unlink()
    # Some wheels carry files that do not compile (templates, other Python versions' code): skipped quietly.
    compileall.compile_dir(str(site), quiet=2, force=True, workers=1,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)


def _remove_build_tools(venv: Path, site: Path) -> None:
    """pip, setuptools and their leftovers: a dpkg-owned venv is never changed with pip."""
    for pattern in ("pip", "pip-*.dist-info", "setuptools", "setuptools-*.dist-info", "pkg_resources",
                    "_distutils_hack", "distutils-precedence.pth", "wheel", "wheel-*.dist-info"):
        for path in site.glob(pattern):
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    for path in (venv / "bin").glob("pip*"):
        path.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Trim a built venv to what its program imports.")
    parser.add_argument("--venv", type=Path, required=True, help="the venv as built (under debian/<package>)")
    parser.add_argument("--entry", action="append", required=True, help="entry module, e.g. fodc.agent.main")
    parser.add_argument("--script", action="append", default=[], help="console script to keep in bin/")
    parser.add_argument("--manifest", type=Path, required=True, help="where to write what was kept (JSON)")
    args = parser.parse_args(argv)
    report = trim(args.venv, args.entry, args.script)
    args.manifest.write_text(json.dumps(report, indent=2) + "\n")
    print(f"venvtrim: {args.venv.name}: {report['fodc_modules']} FODC modules kept, "
          f"{len(report['fodc_modules_removed'])} removed; {len(report['bundled'])} distributions kept, "
          f"removed {', '.join(report['distributions_removed']) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
