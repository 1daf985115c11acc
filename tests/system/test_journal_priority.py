"""Log lines reach the journal at their own priority, so `journalctl -p warning -u <unit>` shows the warnings
and errors: a real systemd service in a booted container runs fodc's logging setup and journald files it.

The service is the project's own logging module (the tree bind-mounted read-only, standard library only), not
a copy of its format: what journald sees is exactly what the daemons write to their stderr.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import REPO
from .nspawn import booted

pytestmark = [pytest.mark.system, pytest.mark.timeout(300)]

EMIT = """
import logging
from fodc.logs import setup_logging
setup_logging("debug", "{fmt}")
log = logging.getLogger("fodc.check")
log.debug("debug line")
log.info("info line")
log.warning("warning line", extra={{"fields": {{"target": "http://node:2121/metrics"}}}})
try:
    raise OSError("disk gone")
except OSError:
    log.exception("error line")
log.critical("critical line")
"""


def _journal(container, unit: str, *args: str) -> list[dict[str, str]]:
    result = container.run("journalctl", "--no-pager", "-o", "json", "-u", unit, *args)
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_warnings_and_errors_reach_the_journal_at_their_priority(container_rootfs: Path, fmt: str) -> None:
    with booted(container_rootfs, nspawn_args=(f"--bind-ro={REPO}:/opt/fodc-src",)) as container:
        unit = f"fodc-logcheck-{fmt}"
        container.run("systemd-run", "--wait", "--quiet", f"--unit={unit}", "--property=Type=exec",
                      "--setenv=PYTHONPATH=/opt/fodc-src", "/usr/bin/python3", "-c", EMIT.format(fmt=fmt))
        container.run("journalctl", "--sync")
        every = _journal(container, unit)
        priorities = {level: [e["PRIORITY"] for e in every if f"{level} line" in e.get("MESSAGE", "")]
                      for level in ("debug", "info", "warning", "error", "critical")}
        assert priorities == {"debug": ["7"], "info": ["6"], "warning": ["4"], "error": ["3"],
                              "critical": ["2"]}, every

        shown = [e["MESSAGE"] for e in _journal(container, unit, "-p", "warning")]
        assert [m for m in shown if " line" in m] and not any("info line" in m or "debug line" in m
                                                               for m in shown), shown
        assert any("warning line" in m for m in shown) and any("critical line" in m for m in shown), shown
        # No line of the record loses its priority: the traceback of the error is filed with it.
        assert any("OSError: disk gone" in m for m in shown), shown
        assert not any(m.startswith("<") for m in shown), shown  # journald took the prefix off
        if fmt == "json":
            warning = next(json.loads(m) for m in shown if "warning line" in m)
            assert warning["level"] == "warning" and warning["target"] == "http://node:2121/metrics"
