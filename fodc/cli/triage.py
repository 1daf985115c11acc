"""`fodc triage BUNDLE`: read an incident bundle offline: what triggered it, what failed to be collected,
the node's last log lines, and the series that changed most at the trigger (fodc.incident.triage)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fodc.cli.client import EXIT_OK, EXIT_USAGE, CliError, ProxyClient
from fodc.cli.output import fit_line, print_json, table, when
from fodc.incident.triage import rank
from fodc.incident.view import BadBundle, crash_report, focus_and_onset, read_files
from fodc.times import rfc3339


def add_parser(sub: argparse._SubParsersAction) -> None:
    triage = sub.add_parser("triage", help="read a downloaded incident bundle: trigger, gaps, log tail, and the "
                            "series that changed most at the trigger (no proxy needed)")
    triage.add_argument("bundle", metavar="BUNDLE", help="an incident bundle (.tar.gz), e.g. from fodc incidents "
                        "--download")
    triage.add_argument("--top", type=int, default=15, help="how many changed series to show (default 15)")
    triage.add_argument("--buckets", action="store_true", help="rank histogram buckets too (noisy; off by default)")
    triage.add_argument("--log-lines", type=int, default=10, help="last node log lines to show (default 10)")
    triage.set_defaults(func=run)

# What the onset is, per trigger, for the one line that shows it.
ONSET_MEANS = {"node-down": "first failed scrape", "node-unresponsive": "first scrape that timed out",
               "rule": "first breach", "memory-pressure": "first high sample", "ktm-read-latency": "first high sample"}


def read_bundle(path: str) -> dict[str, bytes]:
    """The bundle's files by name (without the bundle's top directory)."""
    try:
        return read_files(Path(path).read_bytes())
    except (OSError, BadBundle) as exc:
        raise CliError(f"cannot read the bundle {path}: {exc}", EXIT_USAGE) from None


def run(args: argparse.Namespace, _client: ProxyClient | None = None) -> int:
    files = read_bundle(args.bundle)
    manifest = json.loads(files["manifest.json"])
    window = json.loads(files.get("window.json", b'{"series": []}'))
    focus, onset_ms = focus_and_onset(manifest, window)
    result = rank(window, manifest["at_ms"], include_buckets=args.buckets, onset_ms=onset_ms, focus=focus)
    split = "onset" if result.split_ms != manifest["at_ms"] else "trigger"
    log_tail = files.get("node.log", b"").decode(errors="replace").splitlines()[-args.log_lines:]
    crash = crash_report(files) or (manifest.get("detail") or {}).get("crash")  # an OOM kill has no crash.json
    if args.json:
        print_json({**({"crash": crash} if crash else {}),
                    "incident": {k: manifest.get(k) for k in ("id", "node_id", "role", "trigger", "summary", "at",
                                                              "onset", "detail")},
                    "split": {"at": rfc3339(result.split_ms), "at_ms": result.split_ms, "by": split},
                    "errors": manifest.get("errors", {}), "compared": result.compared,
                    "stopped": result.stopped, "started": result.started,
                    "changes": [c.to_json() for c in result.changes[:args.top]], "log_tail": log_tail})
        return EXIT_OK
    print(f"incident {manifest['id']}: {manifest['trigger']} on {manifest['node_id']} ({manifest['role']}) "
          f"at {manifest['at']}")
    if crash:
        print_crash(crash)
    print(fit_line(f"detail: {json.dumps(manifest.get('detail', {}), sort_keys=True)}"))
    if split == "onset":
        print(f"onset: {when(result.split_ms)}, {(manifest['at_ms'] - result.split_ms) / 1000:g}s before the "
              f"trigger ({ONSET_MEANS.get(manifest['trigger'].split(':')[0], 'first sign')})")
    for part, reason in sorted(manifest.get("errors", {}).items()):
        print(f"not collected: {part}: {reason}")
    print(f"\n{result.compared} series compared before/after the {split}; {len(result.stopped)} stopped at it "
          f"(gone), {len(result.started)} appeared after it (new)")
    if result.stopped and len(result.stopped) >= result.compared:
        print(f"most series stopped at the {split}: the node stopped answering its /metrics")
    rows = [[("* " if c.focus else "") + c.series, c.kind, _number(c.before), _number(c.after), c.change]
            for c in result.changes[:args.top]]
    rows += [[name, "-", "-", "-", "gone"] for name in result.stopped[:max(0, args.top - len(rows))]]
    rows += [[name, "-", "-", "-", "new"] for name in result.started[:max(0, args.top - len(rows))]]
    if rows:
        print()
        print(table(rows, ["series", "kind", "before", "after", "change"]))
        if any(c.focus for c in result.changes):
            print("* the series the rule watches")
    if log_tail:
        print("\nnode log (last lines):")
        for line in log_tail:
            print(f"  {line}")
    return EXIT_OK


def print_crash(crash: dict, max_frames: int = 12) -> None:
    """The node's last words first: the crash message, then the goroutine that failed, frame by frame."""
    message = crash.get("message") or "(no crash header found; the raw output is in crash.txt)"
    print(f"crash: {crash.get('kind', 'unknown')}: {message}")
    for line in crash.get("details", [])[:5]:
        print(f"  {line}")
    goroutine = crash.get("goroutine") or {}
    states = ", ".join(f"{state} {count}" for state, count in sorted((crash.get("states") or {}).items(),
                                                                       key=lambda kv: -kv[1]))
    if goroutine:
        wait = f", {goroutine['wait']}" if goroutine.get("wait") else ""
        print(f"failing goroutine {goroutine.get('id')} [{goroutine.get('state')}{wait}] of "
              f"{crash.get('goroutines', 0)} ({states}):")
        frames = goroutine.get("frames", [])
        for frame in frames[:max_frames]:
            print(f"  {frame['function']}\n      {frame.get('file') or '?'}:{frame.get('line') or '?'}")
        if len(frames) > max_frames or goroutine.get("elided"):
            print(f"  ... {max(0, len(frames) - max_frames)} more frames in crash.json")
        if goroutine.get("created_by"):
            print(f"  created by {goroutine['created_by']['function']}")
    if crash.get("truncated"):
        print("the crash report is cut short; crash.txt holds all of it that was found")
    print()


def _number(value: float) -> str:
    return f"{value:.4g}"
