"""Filters of the HTTP API refuse what does not exist: an unknown role, node, trigger or job is an error that
names the valid values, never an empty 200 (which reads as "all is well" to an operator with a typo).

A refusal is `{"error": "unknown_value", "parameter", "value", "valid", "message"}`: 400 for a closed set
(role, trigger), 404 for a thing that is not there (node, job). The CLI turns it into exit status 2.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask, Response, jsonify

from fodc.config import ROLES
from fodc.incident import PULLED, TRIGGERS
from fodc.incident.rules import RULE_NAME
from fodc.proxy.registry import AgentRegistry

SHOWN = 20  # valid values listed in a message; the JSON field has them all (bounded by --max-agents)


class UnknownValue(Exception):
    def __init__(self, parameter: str, value: str, valid: Iterable[str], status: int = 400,
                 message: str = "") -> None:
        self.parameter, self.value, self.valid, self.status = parameter, value, sorted(set(valid)), status
        listed = ", ".join(self.valid[:SHOWN]) + (", …" if len(self.valid) > SHOWN else "")
        super().__init__(message or f"unknown {parameter} {value!r} (valid: {listed or 'none'})")


def install(app: Flask) -> None:
    @app.errorhandler(UnknownValue)
    def unknown_value(exc: UnknownValue) -> tuple[Response, int]:
        return jsonify(error="unknown_value", message=str(exc), parameter=exc.parameter, value=exc.value,
                       valid=exc.valid), exc.status


def check_role(role: str | None, parameter: str = "role") -> None:
    if role is not None and role not in ROLES:
        raise UnknownValue(parameter, role, ROLES, message=f"unknown role {role!r} (valid: {', '.join(ROLES)})")


def check_node(registry: AgentRegistry, node_id: str | None, also_known: Iterable[str] = (),
               parameter: str = "node_id") -> None:
    """A node is known while registered (online or unconnected), or when `also_known` names it."""
    if node_id is None:
        return
    known = {r.registration.node_id for r in registry.list()} | set(also_known)
    if node_id not in known:
        listed = ", ".join(sorted(known)[:SHOWN]) + (", …" if len(known) > SHOWN else "")
        raise UnknownValue(parameter, node_id, known, 404,
                           f"no node named {node_id!r} (known: {listed or 'none registered'})")


def check_trigger(trigger: str | None) -> None:
    """Built-in triggers by name; `rule:<name>` for any well-formed rule name (rules live in agent configs)."""
    if trigger is None or trigger in TRIGGERS or trigger in PULLED:
        return
    if trigger.startswith("rule:") and RULE_NAME.fullmatch(trigger[5:]):
        return
    raise UnknownValue("trigger", trigger, [*TRIGGERS, *PULLED, "rule:<name>"])
