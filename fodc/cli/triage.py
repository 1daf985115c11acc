"""`fodc triage BUNDLE`: read an incident bundle offline: what triggered it, what failed to be collected,
the node's last log lines, and the series that changed most at the trigger (fodc.incident.triage)."""

from __future__ import annotations

import argparse
import json
import math
import tarfile

from fodc.cli.client import EXIT_OK, EXIT_USAGE, CliError, ProxyClient
from fodc.cli.output import print_json, table
from fodc.incident.triage import rank


def add_parser(sub: argparse._SubParsersAction) -> None:
    triage = sub.add_parser("triage", help="read a downloaded incident bundle: trigger, gaps, log tail, and the "
                            "series that changed most at the trigger (no proxy needed)")
    triage.add_argument("bundle", metavar="BUNDLE", help="an incident bundle (.tar.gz), e.g. from fodc incidents "
                        "--download")
    triage.add_argument("--top", type=int, default=15, help="how many changed series to show (default 15)")
    triage.add_argument("--buckets", action="store_true", help="rank histogram buckets too (noisy; off by default)")
    triage.add_argument("--log-lines", type=int, default=10, help="last node log lines to show (default 10)")
    triage.set_defaults(func=run)


def read_bundle(path: str) -> dict[str, bytes]:
    """The bundle's files by name (without the bundle's top directory)."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            files = {}
            for member in tar:
                extracted = tar.extractfile(member) if member.isfile() else None
                if extracted is not None:
                    files[member.name.split("/", 1)[-1]] = extracted.read()
            return files
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise CliError(f"cannot read the bundle {path}: {exc}", EXIT_USAGE) from None


def run(args: argparse.Namespace, _client: ProxyClient | None = None) -> int:
    files = read_bundle(args.bundle)
    if "manifest.json" not in files:
        raise CliError(f"{args.bundle} is not an incident bundle (no manifest.json)", EXIT_USAGE)
    manifest = json.loads(files["manifest.json"])
    window = json.loads(files.get("window.json", b'{"series": []}'))
    result = rank(window, manifest["at_ms"], include_buckets=args.buckets)
    log_tail = files.get("node.log", b"").decode(errors="replace").splitlines()[-args.log_lines:]
    if args.json:
        print_json({"incident": {k: manifest.get(k) for k in ("id", "node_id", "role", "trigger", "at", "detail")},
                    "errors": manifest.get("errors", {}), "compared": result.compared,
                    "stopped": result.stopped, "started": result.started,
                    "changes": [c.to_json() for c in result.changes[:args.top]], "log_tail": log_tail})
        return EXIT_OK
    print(f"incident {manifest['id']}: {manifest['trigger']} on {manifest['node_id']} ({manifest['role']}) "
          f"at {manifest['at']}")
    print(f"detail: {json.dumps(manifest.get('detail', {}), sort_keys=True)}")
    for part, reason in sorted(manifest.get("errors", {}).items()):
        print(f"not collected: {part}: {reason}")
    print(f"\n{result.compared} series compared before/after the trigger; {len(result.stopped)} stopped at it, "
          f"{len(result.started)} appeared after it")
    if result.stopped and len(result.stopped) >= result.compared:
        print("most series stopped at the trigger: the node stopped answering its /metrics")
    if result.changes:
        rows = [[c.series, c.kind, _number(c.before), _number(c.after), _factor(c.factor)]
                for c in result.changes[:args.top]]
        print()
        print(table(rows, ["series", "kind", "before", "after", "change"]))
    if log_tail:
        print("\nnode log (last lines):")
        for line in log_tail:
            print(f"  {line}")
    return EXIT_OK


def _number(value: float) -> str:
    return f"{value:.4g}"


def _factor(value: float) -> str:
    return "new" if math.isinf(value) else f"x{value:.3g}"
