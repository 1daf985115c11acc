"""What the agent loads at start stays what it uses: every module is resident memory on a database host."""

from __future__ import annotations

import subprocess
import sys

NOT_AT_START = ("cramjam", "flask", "gunicorn", "werkzeug", "jinja2", "selenium", "mcp")


def test_the_agent_does_not_load_the_proxys_web_stack_nor_remote_write_compression_it_has_no_use_for():
    code = ("import sys, fodc.agent.main, fodc.agent.runtime\n"
            f"print(sorted({{n.split('.')[0] for n in sys.modules}} & set({NOT_AT_START!r})))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]", result.stdout
