"""Runs argparse-manpage, then makes its roff safe: help text is not markup (build time only).

    PYTHONPATH=<argparse-manpage> python manpage.py <argparse-manpage arguments> --output FILE

argparse-manpage wraps help text as it is, so a wrapped line that happens to begin with an apostrophe or a
dot ("'env.MY_*'" in `fodc config drift --ignore`) reads to groff as a control line, and the text is lost.
Such lines get the zero-width escape `\\&` in front; the macros argparse-manpage itself writes stay.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# The requests argparse-manpage 4.x writes at the start of a line; anything else there is text.
MACROS = frozenset({"TH", "SH", "SS", "TP", "PP", "IP", "HP", "LP", "P", "RS", "RE", "B", "I", "BR", "IR", "RB",
                    "RI", "UR", "UE", "MT", "ME", "br", "nf", "fi", "sp", "ad", "na", "in", "ti", "ie", "el",
                    "if", "nh", "hy", "ds", "de", "\\\""})
_CONTROL = re.compile(r"^([.'])\s*([^\s]*)")


def escape_text_lines(roff: str) -> str:
    """`\\&` before every line that starts like a control line but is not one of the known requests."""
    lines = []
    for line in roff.split("\n"):
        match = _CONTROL.match(line)
        if match and not (match.group(1) == "." and match.group(2) in MACROS):
            line = "\\&" + line
        lines.append(line)
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    from argparse_manpage.cli import main as argparse_manpage

    output = Path(argv[argv.index("--output") + 1])
    sys.argv = ["argparse-manpage", *argv]
    argparse_manpage()
    output.write_text(escape_text_lines(output.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
