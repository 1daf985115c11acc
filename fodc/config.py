"""Option parsing shared by both daemons: value types and the configargparse front end.

Each daemon defines its options once (fodc/agent/settings.py, fodc/proxy/settings.py) with the types here,
and gets flags, a config file and FODC_* environment variables for free. A bad value must end the process
with one line naming the option, never a traceback.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import configargparse

ROLES = ("liaison", "datanode-hot", "datanode-warm", "datanode-cold")  # BanyanDB node roles: the one list

# ASCII digits only, and a bounded count of them: str.isdigit(), \d and float() also take '²', '١', '1_0',
# 'inf' and 5,000-digit numbers (float() makes those infinite), each of which once ended in a 500.
_DURATION_PART = re.compile(r"([0-9]{1,12}(?:\.[0-9]{1,9})?)(ms|s|m|h|d)")
_BARE_NUMBER = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,9})?")
_WHOLE_NUMBER = re.compile(r"[0-9]{1,18}")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE = re.compile(r"([0-9]{1,18}(?:\.[0-9]{1,9})?)\s*(b|kib|kb|mib|mb|gib|gb|k|m|g)?", re.IGNORECASE)
_SIZE_UNITS = {
    None: 1, "b": 1, "k": 1024, "kib": 1024, "kb": 1000, "m": 1024**2, "mib": 1024**2, "mb": 1000**2,
    "g": 1024**3, "gib": 1024**3, "gb": 1000**3,
}
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclass(frozen=True, slots=True)
class HostPort:
    """A listen or dial address. An empty host means "all interfaces" when listening."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def dial_host(self) -> str:
        return self.host or "127.0.0.1"


def duration(text: str) -> float:
    """Parses Go-style durations ("30s", "5m", "1h30m", "250ms"); a bare number means seconds."""
    text = text.strip()
    if _BARE_NUMBER.fullmatch(text):
        value = float(text)
    else:
        pos, value = 0, 0.0
        for match in _DURATION_PART.finditer(text):
            if match.start() != pos:
                break
            value += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise argparse.ArgumentTypeError(f"invalid duration {text!r} (use e.g. 500ms, 30s, 5m, 1h)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: must not be negative")
    return value


def positive_duration(text: str) -> float:
    value = duration(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: must be greater than zero")
    return value


def byte_size(text: str) -> int:
    """Parses sizes such as "30MiB", "4194304", "512k" (binary units for k/m/g)."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (use e.g. 4194304, 512KiB, 30MiB)")
    unit = match.group(2).lower() if match.group(2) else None
    value = int(float(match.group(1)) * _SIZE_UNITS[unit])
    if value <= 0:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: must be greater than zero")
    return value


def whole_number(text: str, name: str, low: int, high: int) -> int:
    """A whole number written in ASCII digits, from low to high; ValueError naming `name` and the range."""
    if not _WHOLE_NUMBER.fullmatch(text) or not low <= int(text) <= high:
        raise ValueError(f"invalid {name} {text[:40]!r}: a whole number from {low} to {high}")
    return int(text)


def _number(text: str, cast: type, kind: str, ok: Callable[[float], bool], rule: str) -> Any:
    """One number option: `cast` parses (else "invalid <kind>"), `ok` checks (else "<rule>")."""
    try:
        value = cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid {kind} {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: {rule}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, "integer", lambda v: v > 0, "must be greater than zero")


def host_port(text: str, *, require_host: bool = False, allow_port_zero: bool = False) -> HostPort:
    """Parses "host:port", ":port" and "[v6]:port"; rejects anything else with a clear message."""
    text = text.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise argparse.ArgumentTypeError(f"invalid address {text!r} (expected [ipv6]:port)")
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            raise argparse.ArgumentTypeError(f"invalid address {text!r} (expected host:port)")
        if ":" in host:
            raise argparse.ArgumentTypeError(f"invalid address {text!r} (write IPv6 as [addr]:port)")
    lowest = 0 if allow_port_zero else 1
    if not port.isdigit() or not lowest <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"invalid address {text!r}: port must be {lowest}-65535")
    if require_host and not host:
        raise argparse.ArgumentTypeError(f"invalid address {text!r}: a host is required")
    if host and not re.fullmatch(r"[A-Za-z0-9._:-]+", host):
        raise argparse.ArgumentTypeError(f"invalid address {text!r}: bad host name")
    return HostPort(host, int(port))


def listen_address(text: str) -> HostPort:
    """A listen address; port 0 asks the kernel for a free port (handy for tests and the demo)."""
    return host_port(text, allow_port_zero=True)


def node_address(text: str) -> HostPort:
    """A node address must name a concrete host (it identifies the node in the agent key)."""
    return host_port(text, require_host=True)


def ip_port(text: str) -> HostPort:
    """Like node_address, but the host must be a literal IP (used where the proxy design asks for ip+port)."""
    address = host_port(text, require_host=True)
    try:
        ipaddress.ip_address(address.host)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid address {text!r}: host must be an IP address") from None
    return address


def role(text: str) -> str:
    text = text.strip()
    if text not in ROLES:
        raise argparse.ArgumentTypeError(f"unknown role {text!r} (choose from {', '.join(ROLES)})")
    return text


def labels(text: str) -> dict[str, str]:
    """Parses "k=v,k2=v2" into a dict; keys must be valid Prometheus label names."""
    result: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not _LABEL_NAME.fullmatch(key):
            raise argparse.ArgumentTypeError(f"invalid label {part!r} (expected key=value, key like [a-z_][a-z0-9_]*)")
        result[key] = value.strip()
    return result


def positive_float(text: str) -> float:
    return _number(text, float, "number", lambda v: 0 < v < math.inf, "must be a finite number greater than zero")


def non_negative_int(text: str) -> int:
    return _number(text, int, "integer", lambda v: v >= 0, "must not be negative")


def percent(text: str) -> float:
    """A percentage from 0 to 100; a trailing % is allowed."""
    return _number(text.strip().rstrip("%"), float, "percentage", lambda v: 0 <= v <= 100, "must be from 0 to 100")


def name_list(text: str) -> tuple[str, ...]:
    """Parses "A,B_*,C" into names or glob patterns; empty items are dropped, whitespace is not allowed."""
    items = tuple(filter(None, (p.strip() for p in text.split(","))))
    for item in items:
        if any(c.isspace() for c in item):
            raise argparse.ArgumentTypeError(f"invalid name {item!r}: must not contain whitespace")
    return items


class OneLineErrorParser(configargparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit status 2, as operators expect."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


HTTP_MAX_CONNECTIONS_HELP = ("open HTTP connections at most; at the cap the one waiting longest for its request is "
                             "closed to make room")
HTTP_CLIENT_TIMEOUT_HELP = ("a request must arrive, and every later read or write make progress, within this "
                            "(e.g. 10s); slower clients are disconnected")


def make_parser(prog: str, description: str, default_config: str, *, read_default_config: bool = True
                ) -> OneLineErrorParser:
    """The shared front end: --config FILE (default default_config), FODC_* env vars, --help that explains.
    read_default_config=False leaves default_config unread (--check-config FILE checks FILE in its place)."""
    parser = OneLineErrorParser(
        prog=prog,
        description=description,
        default_config_files=[default_config] if read_default_config else [],
        auto_env_var_prefix="FODC_",
        args_for_setting_config_path=["-c", "--config"],
        config_arg_help_message=f"config file of 'option = value' lines (default {default_config})",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="Every option can also be set in the config file (without the leading dashes) or as an "
        "environment variable FODC_<OPTION> (upper case, dashes as underscores). Precedence: flag > "
        "environment > config file > default.",
    )
    return parser
