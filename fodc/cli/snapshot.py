"""`fodc snapshot`: the whole cluster's diagnostic state in one archive, for a ticket or a colleague.

Everything the proxy can say at once (health, nodes, configuration and drift, incidents, diagnostics jobs,
the aggregated /metrics page, the recent window of every node, and optionally every incident bundle), each
part saved exactly as the API gave it, with a manifest of sizes and sha256. A part that fails is named in
the manifest with the reason and the rest is still written: a half-broken cluster is when this is needed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tarfile
import tempfile
from pathlib import Path

from fodc import __version__
from fodc.artifact_names import safe_name
from fodc.cli.client import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, CliError, ProxyClient
from fodc.cli.output import print_json
from fodc.names import name_arg
from fodc.times import FORMS, compact_utc, now_ms, rfc3339, time_arg

FORMAT = "fodc-snapshot/1"


def add_parser(sub: argparse._SubParsersAction) -> None:
    snap = sub.add_parser("snapshot", help="the cluster's diagnostic state in one .tar.gz (for a ticket)")
    snap.add_argument("-o", "--output", help="archive file (default fodc-snapshot-<UTC time>.tar.gz)")
    snap.add_argument("--since", type=time_arg, default=None,
                      help=f"from when the nodes' windows, and incidents, are included: {FORMS} (default 15m)")
    snap.add_argument("--name", type=name_arg, help="only these series in the window: names or globs, "
                      "comma-separated, or ~REGEX (as fodc window --name)")
    snap.add_argument("--role", help="only nodes of this role in the window")
    snap.add_argument("--with-bundles", action="store_true",
                      help="also download the bundle of every complete incident since --since")
    snap.set_defaults(func=run)


def snapshot_parts(since: str, name: str | None, role: str | None) -> list[tuple[str, str, dict | None]]:
    """(file name, API path, query) of every part of a snapshot; `since` is what the API's since/start take."""
    return [
        ("health.json", "/health", None),
        ("cluster.json", "/cluster", None),
        ("config.json", "/cluster/config", None),
        ("config-drift.json", "/cluster/config/drift", None),
        ("incidents.json", "/incidents", {"since": since}),
        ("jobs.json", "/diagnostics", None),
        ("window.json", "/metrics-windows", {"start": since, "name": name, "role": role}),
        ("metrics.txt", "/metrics", None),
    ]


def run(args: argparse.Namespace, client: ProxyClient) -> int:
    now = now_ms()
    stamp = compact_utc(now)
    output = Path(args.output or f"fodc-snapshot-{stamp}.tar.gz")
    since_ms = args.since if args.since is not None else now - 900_000
    parts = snapshot_parts(str(since_ms), args.name, args.role)
    with tempfile.TemporaryDirectory(prefix="fodc-snapshot-") as tmp:
        root = Path(tmp) / f"fodc-snapshot-{stamp}"
        root.mkdir()
        files: dict[str, dict[str, object]] = {}
        errors: dict[str, str] = {}
        for name, path, params in parts:
            save_part(client, root, name, path, params, files, errors, first=name == "health.json")
        if args.with_bundles and "incidents.json" in files:
            for incident in json.loads((root / "incidents.json").read_text())["incidents"]:
                if incident.get("bundle_url"):
                    name = f"incidents/{safe_name(incident['node_id'] + '-' + incident['id'])}.tar.gz"
                    save_part(client, root, name, incident["bundle_url"], None, files, errors)
        manifest = {"format": FORMAT, "proxy": client.base_url, "taken": rfc3339(now),
                    "fodc_version": __version__, "since_s": round((now - since_ms) / 1000, 3), "window_name": args.name,
                    "window_role": args.role, "files": files, "errors": errors}
        (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
        with tarfile.open(output, "w:gz") as tar:
            tar.add(root / "manifest.json", arcname=f"{root.name}/manifest.json")  # first, for quick reading
            for name in files:
                tar.add(root / name, arcname=f"{root.name}/{name}")
    size = output.stat().st_size
    if args.json:
        print_json({"snapshot": str(output), "bytes": size, "files": files, "errors": errors})
    else:
        print(f"{output} ({size} bytes, {len(files)} files)")
        for name, reason in errors.items():
            print(f"  missing {name}: {reason}")
    return EXIT_PARTIAL if errors else EXIT_OK


def save_part(client: ProxyClient, root: Path, name: str, path: str, params: dict[str, str | None] | None,
          files: dict[str, dict[str, object]], errors: dict[str, str], first: bool = False) -> None:
    dest = root / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        size = client.download(path, str(dest), params)
    except CliError as exc:
        if first or exc.code == EXIT_USAGE:  # not even /health, or a typo in --role: nothing to save
            raise
        errors[name] = str(exc)
        dest.unlink(missing_ok=True)
        return
    with open(dest, "rb") as f:
        sha256 = hashlib.file_digest(f, "sha256").hexdigest()
    files[name] = {"source": path, "size": size, "sha256": sha256}
