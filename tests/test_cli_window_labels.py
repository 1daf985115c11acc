"""`fodc window` CSV: label values holding commas, `=`, quotes, backslashes or newlines come out escaped as in
the exposition format, so the labels column reads back to exactly the node's labels (they were written
`k=v,k=v` unescaped, and `a,b=c` could not be told from two labels)."""

from __future__ import annotations

import csv
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from procs import BIN, start_agent, start_proxy, wait_for

from fodc import expfmt

LABELS = {"path": "/a,b=c", "quote": 'say "hi" \\ now', "multi": "one\ntwo"}
PAGE = (b'# TYPE odd_labels gauge\nodd_labels{path="/a,b=c",quote="say \\"hi\\" \\\\ now",multi="one\\ntwo"} 7\n'
        b"# TYPE plain gauge\nplain 1\n")


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args) -> None:
        pass


def test_window_csv_escapes_label_values(tmp_path, daemons):
    node = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=node.serve_forever, name="node-page", daemon=True).start()
    try:
        proxy = start_proxy(tmp_path)
        daemons.append(proxy)
        daemons.append(start_agent(tmp_path, proxy.grpc_addr, "liaison", "li-odd", "--node-metrics-url",
                                   f"http://127.0.0.1:{node.server_port}/metrics", "--scrape-interval", "0.5s",
                                   "--scrape-timeout", "0.5s"))

        def rows():
            run = subprocess.run([str(BIN / "fodc"), "--proxy", proxy.url, "window", "--node", "li-odd", "--name",
                                  "odd_labels"], capture_output=True, text=True, timeout=30)
            assert run.returncode in (0, 1), run.stderr
            parsed = list(csv.reader(run.stdout.splitlines(keepends=True)))
            return parsed if len(parsed) > 1 else None
        header, first, *_ = wait_for(rows, 30, interval=0.5, what="window points of odd_labels")
    finally:
        node.shutdown()
    assert header == ["node_id", "node_role", "name", "labels", "time", "value"]
    assert first[:3] == ["li-odd", "liaison", "odd_labels"] and float(first[5]) == 7
    parsed = expfmt.parse(f"odd_labels{first[3]} 7\n")
    (sample,) = [s for family in parsed.families for s in family.samples]
    assert not parsed.errors
    assert dict(sample.labels) == LABELS
