"""A blueprint's views as the methods of one object, registered from a table, so each view is a small
function of its own and the table shows every endpoint at a glance (incidents_api, diagnostics_api)."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Blueprint

Route = tuple[str, str, str]  # (HTTP method, URL rule, the view's method name; also the endpoint's name)


def register_routes(bp: Blueprint, views: object, routes: Iterable[Route]) -> Blueprint:
    """Each route as the endpoint `<blueprint>.<name>`, served by `views.<name>`."""
    for method, rule, name in routes:
        bp.add_url_rule(rule, name, getattr(views, name), methods=[method])
    return bp
