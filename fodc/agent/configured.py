"""Whether the agent has the one setting it cannot start without: the unit's ExecCondition.

A freshly installed fodc-agent has no node role yet. Starting it anyway would fail the unit and leave the
system `degraded`; instead systemd runs this check first and, when it exits 1, skips the start without
marking anything failed (the unit stays inactive, waiting). The package's postinst runs the same check to
say, once, what to do. Any other problem with the settings is left to the agent itself, which reports it
and exits 2 (a configuration error that systemd does not retry).
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Sequence

from fodc.agent.settings import DEFAULT_CONFIG, build_parser

# One line that fits 100 columns (apt's output, the journal); the roles are listed in the conffile.
WAITING = f"fodc-agent waits for node-role in {DEFAULT_CONFIG}; set it, then: systemctl restart fodc-agent"


def has_node_role(argv: Sequence[str] | None = None) -> bool:
    """True unless the settings (flags, FODC_* environment, conffile) parse and leave node-role unset."""
    parser = build_parser()
    for action in parser._actions:
        if action.dest == "node_role":
            action.required = False
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            namespace, _ = parser.parse_known_args(argv)
    except SystemExit:
        return True  # unreadable settings: the agent says what is wrong, loudly, when it starts
    return bool(getattr(namespace, "node_role", None))


def main(argv: Sequence[str] | None = None) -> int:
    if has_node_role(sys.argv[1:] if argv is None else argv):
        return 0
    print(WAITING)
    return 1


if __name__ == "__main__":
    sys.exit(main())
