"""Structure figures of the hand-written code in fodc/: repeats, size, the largest and most complex functions,
type-checker errors.

Run from a checkout's root: .venv/bin/python bench/structure.py [--repo DIR] [--top 5]

The same script measures before and after a refactoring, so the two are comparable: generated protobuf
code (`*_pb2*.py`, `*.pyi`) is left out of every figure except the raw `duplicates` pair count, which is also
given without pairs that touch generated files. Lines of code are radon's SLOC (no blank or comment lines);
complexity is radon's cyclomatic complexity; mypy runs with the checkout's mypy.ini (the figure is what
`dev/test` gates on). Needs the `duplicates` tool on PATH, radon and mypy in the venv.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from pathlib import Path

from radon.complexity import cc_visit
from radon.raw import analyze
from radon.visitors import Function

GENERATED = re.compile(r"_pb2(_grpc)?\.pyi?$|\.pyi$")


def hand_written(repo: Path) -> list[Path]:
    """Tracked (and untracked, not ignored) Python files of fodc/ that no generator wrote."""
    listed = subprocess.run(["git", "-C", str(repo), "ls-files", "--cached", "--others", "--exclude-standard",
                             "fodc"], capture_output=True, text=True, check=True).stdout.split()
    return sorted(repo / name for name in listed
                  if name.endswith(".py") and not GENERATED.search(name) and (repo / name).exists())


# Hand-rolled copies of the shared layer's jobs (issue 21 §2), by the line each copy needs; the shared
# module itself is not counted. Text patterns: a figure to compare before and after, not a proof.
COPIES = {
    "atomic write by hand (os.replace)": (re.compile(r"os\.replace\("), "fodc/durablefile.py"),
    "wall clock in ms by hand": (re.compile(r"time\.time\(\) \* 1000"), "fodc/times.py"),
    "non-finite JSON spelling": (re.compile(r'"\+Inf" if'), "fodc/jsonvalue.py"),
    "label escaping by hand": (re.compile(r"""replace\('"', '\\\\"'\)"""), "fodc/expfmt/render.py"),
    "/proc/<pid>/stat split by hand": (re.compile(r"split\(\)\[19\]"), "fodc/ktm/procfs.py"),
    "ROLES tuple": (re.compile(r'"datanode-warm", "datanode-cold"\)'), "fodc/config.py"),
    "loop thread outside Periodic": (re.compile(r"while not self\._stop"), "fodc/periodic.py"),
}


def shared_layer_copies(files: list[Path], repo: Path) -> dict[str, int]:
    counts = dict.fromkeys(COPIES, 0)
    for path in files:
        where = str(path.relative_to(repo))
        text = path.read_text()
        for name, (pattern, home) in COPIES.items():
            if where != home:
                counts[name] += len(pattern.findall(text))
    return counts


def duplicate_pairs(repo: Path, min_lines: int = 6) -> tuple[int, int]:
    """(all pairs `duplicates` lists over fodc/, those whose both sides are hand-written)."""
    argv = ["duplicates", "--repo", str(repo / "fodc"), "--most", "200", "--seconds", "120",
            "--min-lines", str(min_lines)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.splitlines()
    first = out[0] if out else ""
    total = int(first.split()[0]) if first[:1].isdigit() else 0
    rows = [line for line in out if re.match(r"D\d+ ", line)]
    hand = [row for row in rows if "_pb2" not in row]
    return total, len(hand)


def functions(path: Path) -> list[tuple[int, str]]:
    """(length in lines, qualified name) of every function and method in a file."""
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[int, str]] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                found.append(((child.end_lineno or child.lineno) - child.lineno + 1, name))
                walk(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                walk(child, f"{prefix}{child.name}.")
            else:
                walk(child, prefix)

    walk(tree, "")
    return found


def mypy_errors(repo: Path) -> str:
    """mypy's closing line for fodc/ under the checkout's mypy.ini (or 'no mypy.ini')."""
    config = repo / "mypy.ini"
    if not config.exists():
        return "no mypy.ini"
    run = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(config), "--no-incremental",
                          "fodc"], capture_output=True, text=True, cwd=repo)
    lines = run.stdout.strip().splitlines()
    return lines[-1] if lines else run.stderr.strip()[-200:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="checkout to measure (default: here)")
    parser.add_argument("--top", type=int, default=5, help="how many largest/most complex functions to list")
    args = parser.parse_args()
    repo = args.repo.resolve()
    files = hand_written(repo)

    total, hand = duplicate_pairs(repo)
    print(f"duplicates over fodc/: {total} pairs ({hand} with both sides hand-written)")
    total4, hand4 = duplicate_pairs(repo, 4)
    print(f"duplicates over fodc/, runs of 4+ lines: {total4} pairs ({hand4} with both sides hand-written)")
    copies = shared_layer_copies(files, repo)
    print(f"hand-rolled copies of the shared layer's jobs: {sum(copies.values())}")
    for name, count in copies.items():
        print(f"  {count:4d}  {name}")

    sloc = sum(analyze(path.read_text()).sloc for path in files)
    print(f"lines of code, fodc/ hand-written: {sloc} SLOC in {len(files)} files")

    sizes: list[tuple[int, str]] = []
    blocks: list[tuple[int, str]] = []
    for path in files:
        where = str(path.relative_to(repo))
        sizes += [(length, f"{where}:{name}") for length, name in functions(path)]
        for block in cc_visit(path.read_text()):
            if isinstance(block, Function):
                owner = f"{block.classname}." if block.classname else ""
                blocks.append((block.complexity, f"{where}:{owner}{block.name}"))
    sizes.sort(reverse=True)
    blocks.sort(reverse=True)
    print(f"functions: {len(sizes)}; over 60 lines: {sum(1 for n, _ in sizes if n > 60)}; "
          f"cyclomatic complexity over 10: {sum(1 for c, _ in blocks if c > 10)}")
    print("largest functions (lines):")
    for length, name in sizes[:args.top]:
        print(f"  {length:4d}  {name}")
    print("most complex functions (cyclomatic complexity):")
    for complexity, name in blocks[:args.top]:
        print(f"  {complexity:4d}  {name}")
    print(f"mypy: {mypy_errors(repo)}")


if __name__ == "__main__":
    main()
