"""Query parameters and request bodies of the HTTP API: strict parsing, one clear 400 per mistake."""

from __future__ import annotations

from collections.abc import Mapping

from flask import request


class BadRequest(Exception):
    """A bad query parameter; becomes a 400 with the message."""


def query_args(allowed: Mapping[str, tuple[str, ...] | None]) -> dict[str, str]:
    """The request's query parameters, refusing unknown names and values outside a closed set."""
    result: dict[str, str] = {}
    for name in request.args:
        if name not in allowed:
            raise BadRequest(f"unknown query parameter {name!r} (allowed: {', '.join(sorted(allowed))})")
        values = request.args.getlist(name)
        if len(values) > 1:
            raise BadRequest(f"query parameter {name!r} given more than once")
        choices = allowed[name]
        if choices is not None and values[0] not in choices:
            raise BadRequest(f"invalid {name} {values[0]!r} (choose from {', '.join(choices)})")
        result[name] = values[0]
    return result


def json_body(allowed: Mapping[str, type | tuple[type, ...]]) -> dict[str, object]:
    """The request's JSON object, refusing anything else, unknown fields and values of the wrong type."""
    body = request.get_json(silent=True) if request.data else {}
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    for name, value in body.items():
        if name not in allowed:
            raise BadRequest(f"unknown field {name!r} (allowed: {', '.join(sorted(allowed))})")
        if not isinstance(value, allowed[name]):
            raise BadRequest(f"field {name!r} has the wrong type ({type(value).__name__})")
    return body
