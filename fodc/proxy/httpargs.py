"""Query parameters and request bodies of the HTTP API: strict parsing, one clear 400 per mistake."""

from __future__ import annotations

import json
from collections.abc import Mapping

from flask import current_app, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from fodc.config import whole_number


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


def whole_number_arg(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """A whole-number query parameter (ASCII digits, low..high), or `default` when absent; else a 400."""
    if name not in args:
        return default
    try:
        return whole_number(args[name], name, low, high)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def json_body(allowed: Mapping[str, type | tuple[type, ...]]) -> dict[str, object]:
    """The request's JSON object, refusing anything else, unknown fields and values of the wrong type.

    The one place a body is read: a body over the app's MAX_CONTENT_LENGTH is a 413 before a byte is read,
    JSON nested too deeply for the parser a 400, and what was accepted is kept for the audit line."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit is not None and (request.content_length or 0) > limit:
        raise RequestEntityTooLarge(f"request body of {request.content_length} bytes (at most {limit})")
    raw = request.get_data(cache=True)
    if not raw:
        body: object = {}
    else:
        try:
            body = json.loads(raw)
        except RecursionError:
            raise BadRequest("the request body is JSON nested too deeply") from None
        except ValueError as exc:  # also bytes that are not UTF-8
            raise BadRequest(f"the request body is not valid JSON: {str(exc)[:120]}") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    g.request_body = body
    for name, value in body.items():
        if name not in allowed:
            raise BadRequest(f"unknown field {name!r} (allowed: {', '.join(sorted(allowed))})")
        if not isinstance(value, allowed[name]):
            raise BadRequest(f"field {name!r} has the wrong type ({type(value).__name__})")
    return body


def text_field(body: Mapping[str, object], name: str, default: str = "") -> str:
    """A field json_body accepted as text (`str` in its `allowed`), typed as such; `default` when absent."""
    value = body.get(name, default)
    return value if isinstance(value, str) else default
