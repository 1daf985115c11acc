r"""The Prometheus text exposition format (and OpenMetrics text), parsed whole and written back.

Upstream's regex parser broke on `}` or escaped quotes inside label values, dropped empty label values and
failed the whole scrape on a sample with a timestamp. This package reads the full format; a bad line costs
that line (a ParseError in the result), never the page, and parse() never raises.

    model.py   Sample, Family, ParseResult, ParseError: the plain data at the boundary
    lexer.py   one line -> name, labels, value, timestamp (or a HELP/TYPE/UNIT/EOF comment)
    parser.py  a page -> families; `Parser` caches series across scrapes of one endpoint
    render.py  families -> Prometheus text 0.0.4

Decisions where the format or its implementations leave room:
- values: Go's ParseFloat syntax (NaN, [+-]Inf, Infinity, any case; scientific notation) without
  hexadecimal floats or `_`, which the Prometheus server refuses too; an overflow such as 1e999 is an error,
  not +Inf; signed NaN is an error (Go refuses it);
- timestamps: integer milliseconds (text 0.0.4), float seconds converted exactly to ms (OpenMetrics);
- label values accept only the escapes \\, \" and \n (like promtool); HELP keeps an unknown escape as
  written (like the Prometheus server);
- CRLF line ends are tolerated; blanks are spaces and tabs; a second TYPE that disagrees, a TYPE after the
  family's samples and a second, different HELP are rejected (that line only);
- OpenMetrics is chosen by the caller (Content-Type) or detected by a final `# EOF`; lines after `# EOF`
  and a missing `# EOF` are reported; exemplars are accepted and dropped;
- quoted UTF-8 metric/label names (Prometheus 3 `{"my.metric"}`) are not supported: such lines are rejected.

Pure functions over strings: no I/O, clocks or threads anywhere in the package.
"""

from .model import Family, Labels, ParseError, ParseResult, Sample
from .parser import Parser, is_openmetrics, parse, parse_strict
from .render import (
    CONTENT_TYPE_LATEST,
    escape_help,
    escape_label_value,
    format_labels,
    format_sample,
    format_value,
    header,
    render,
    text_family,
)

__all__ = [
    "CONTENT_TYPE_LATEST", "Family", "Labels", "ParseError", "ParseResult", "Parser", "Sample", "escape_help",
    "escape_label_value", "format_labels", "format_sample", "format_value", "header", "is_openmetrics",
    "parse", "parse_strict", "render", "text_family",
]
