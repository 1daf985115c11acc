"""`fodc pprof top|flame|folded|diff FILE`: read a Go profile on a host without Go (no proxy needed)."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from fodc.cli.client import EXIT_API_ERROR, EXIT_OK, EXIT_USAGE, CliError, ProxyClient
from fodc.diag.checks import EMPTY_CONTENTION_HINT
from fodc.pprof import analysis, flame
from fodc.pprof.reader import PprofError, Profile, read_file
from fodc.pprof.units import humanise, percent

WIDTH = 100
_NUMBERS = 47  # the flat/flat%/sum%/cum/cum% columns and their gaps


def add_parser(sub: argparse._SubParsersAction) -> None:
    pprof = sub.add_parser("pprof", help="read a pprof profile file (.pb.gz) locally: top, flame, folded, diff")
    verbs = pprof.add_subparsers(dest="pprof_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--sample-type", metavar="T", help="which value to show, e.g. cpu, samples, inuse_space, "
                       "alloc_objects, contentions, delay (default: the profile's own default)")
        p.add_argument("--focus", metavar="REGEX", help="only stacks with a function matching REGEX")

    top = verbs.add_parser("top", help="functions by flat (or cumulative) cost, like `go tool pprof -top`")
    top.add_argument("file")
    top.add_argument("-n", type=_positive, default=20, help="rows to show (default 20)")
    top.add_argument("--cum", action="store_true", help="sort by cumulative cost instead of flat")
    common(top)
    top.set_defaults(func=run_top)

    flame_cmd = verbs.add_parser("flame", help="a self-contained flame graph (.html or .svg, opens offline)")
    flame_cmd.add_argument("file")
    flame_cmd.add_argument("-o", "--output", required=True, help="out.html or out.svg")
    common(flame_cmd)
    flame_cmd.set_defaults(func=run_flame)

    fold = verbs.add_parser("folded", help="folded stacks (`root;caller;leaf value`) for other flame graph tools")
    fold.add_argument("file")
    common(fold)
    fold.set_defaults(func=run_folded)

    diff = verbs.add_parser("diff", help="functions whose share of the total changed most from BASE to NEW")
    diff.add_argument("base")
    diff.add_argument("new")
    diff.add_argument("-n", type=_positive, default=20, help="rows to show (default 20)")
    diff.add_argument("--cum", action="store_true", help="compare cumulative shares instead of flat")
    diff.add_argument("--sample-type", metavar="T", help="which value to compare (default: NEW's default)")
    diff.set_defaults(func=run_diff)


def _positive(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100_000:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 100000, not {text!r}")
    return int(text)


def _load(path: str) -> Profile:
    try:
        return read_file(path)
    except PprofError as exc:
        raise CliError(f"{path}: {exc}", EXIT_API_ERROR) from None


def _focus(args: argparse.Namespace) -> analysis.Searcher | None:
    try:
        return analysis.compile_focus(args.focus)
    except PprofError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def _refused(exc: PprofError, args: argparse.Namespace) -> CliError:
    """A sample type the operator named is a usage error; the profile's own default missing is the file's."""
    return CliError(str(exc), EXIT_USAGE if args.sample_type else EXIT_API_ERROR)


def _fit(name: str, width: int) -> str:
    """A function name cut from the left (the package path matters least) to `width` columns."""
    return name if len(name) <= width else "…" + name[len(name) - width + 1:]


def run_top(args: argparse.Namespace, _client: ProxyClient) -> int:
    profile = _load(args.file)
    try:
        table = analysis.top(profile, args.sample_type, _focus(args), by_cum=args.cum)
    except PprofError as exc:
        raise _refused(exc, args) from None
    unit = table.unit
    rows = table.rows[:args.n]
    if args.json:
        print(json.dumps({"sample_type": table.sample_type, "unit": unit, "total": table.total,
                          "shown": table.shown, "top": [{"function": r.function, "flat": r.flat, "cum": r.cum}
                                                        for r in rows]}, indent=2))
        return EXIT_OK
    print(f"Type: {table.sample_type} ({unit}), {len(profile.samples)} samples, total {humanise(table.total, unit)}"
          + (f", duration {humanise(profile.duration_ns, 'nanoseconds')}" if profile.duration_ns else ""))
    shown_flat = sum(r.flat for r in rows)
    print(f"Showing {len(rows)} of {len(table.rows)} functions, {humanise(shown_flat, unit)} "
          f"({percent(shown_flat, table.total)}) of {humanise(table.total, unit)} total"
          + (f"; --focus keeps {percent(table.shown, table.total)}" if args.focus else ""))
    print(f"{'flat':>10} {'flat%':>7} {'sum%':>7} {'cum':>10} {'cum%':>7}  function")
    if not table.total and table.sample_type in ("contentions", "delay"):
        print(textwrap.fill(f"(no samples: {EMPTY_CONTENTION_HINT})", WIDTH))
    running = 0
    for r in rows:
        running += r.flat
        print(f"{humanise(r.flat, unit):>10} {percent(r.flat, table.total):>7} {percent(running, table.total):>7} "
              f"{humanise(r.cum, unit):>10} {percent(r.cum, table.total):>7}  {_fit(r.function, WIDTH - _NUMBERS)}")
    return EXIT_OK


def run_folded(args: argparse.Namespace, _client: ProxyClient) -> int:
    profile = _load(args.file)
    try:
        lines = analysis.folded(profile, args.sample_type, _focus(args))
    except PprofError as exc:
        raise _refused(exc, args) from None
    out = sys.stdout
    for stack, value in lines:
        out.write(f"{stack} {value}\n")
    return EXIT_OK


def run_flame(args: argparse.Namespace, _client: ProxyClient) -> int:
    output = Path(args.output)
    if output.suffix not in (".html", ".svg"):
        raise CliError(f"-o {args.output}: the name must end in .html or .svg", EXIT_USAGE)
    profile = _load(args.file)
    try:
        tree, truncated = analysis.flame_tree(profile, args.sample_type, _focus(args),
                                              max_nodes=flame.MAX_NODES, min_fraction=flame.MIN_FRACTION)
    except PprofError as exc:
        raise _refused(exc, args) from None
    chosen = profile.sample_types[profile.type_index(args.sample_type)]
    title = f"{Path(args.file).name}: {chosen.type} ({chosen.unit})"
    text = (flame.html(tree, chosen.unit, title) if output.suffix == ".html" else flame.svg(tree, chosen.unit, title))
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {exc.strerror or exc}", EXIT_API_ERROR) from None
    print(f"{args.output}: {humanise(tree['value'], chosen.unit)} {chosen.type}"
          + (" (small frames left out)" if truncated else ""))
    return EXIT_OK


def run_diff(args: argparse.Namespace, _client: ProxyClient) -> int:
    base, new = _load(args.base), _load(args.new)
    try:
        changes = analysis.diff(base, new, args.sample_type, by_cum=args.cum)
    except PprofError as exc:
        raise _refused(exc, args) from None
    kind = "cum" if args.cum else "flat"
    if args.json:
        print(json.dumps([{"function": c.function, "base_share": c.base_share, "new_share": c.new_share,
                           "delta": c.delta} for c in changes[:args.n]], indent=2))
        return EXIT_OK
    print(f"{kind} share of each profile's total, largest change first")
    print(f"{'base':>8} {'new':>8} {'change':>9}  function")
    for c in changes[:args.n]:
        print(f"{100 * c.base_share:>7.2f}% {100 * c.new_share:>7.2f}% {100 * c.delta:>+8.2f}%  "
              f"{_fit(c.function, WIDTH - 30)}")
    if not changes:
        print("(no function's share changed)")
    return EXIT_OK

