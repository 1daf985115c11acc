"""Flask views of the console: the page shells, their static files and /whoami (which role this token has)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, g, jsonify, render_template, send_from_directory

from fodc.proxy.access import public
from fodc.proxy.httpargs import query_args

HERE = Path(__file__).parent
STATIC = HERE / "static"

# path -> (template, title); the query parameters each page reads are checked by its script.
PAGES = {
    "/": ("cluster.html", "Cluster"),
    "/console/node": ("node.html", "Node"),
    "/console/incidents": ("incidents.html", "Incidents"),
    "/console/incident": ("incident.html", "Incident"),
    "/console/config": ("config.html", "Configuration"),
    "/console/profiles": ("profiles.html", "Profiles"),
}


def console_blueprint(auth_mode: str) -> Blueprint:
    bp = Blueprint("console", __name__, template_folder=str(HERE / "templates"))

    def page_view(template: str, title: str):  # noqa: ANN202 - a Flask view
        @public
        def view() -> str:
            return render_template(template, title=title, auth_mode=auth_mode)
        view.__name__ = f"page_{template.split('.')[0]}"
        return view

    for path, (template, title) in PAGES.items():
        bp.add_url_rule(path, view_func=page_view(template, title))

    @bp.get("/console/static/<path:name>")
    @public
    def static_file(name: str) -> Response:
        response = send_from_directory(STATIC, name, max_age=300)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @bp.get("/favicon.ico")
    @public
    def favicon() -> Response:
        """Browsers ask for it on every origin; no icon, and no 401/404 in their consoles."""
        return Response(status=204)

    @bp.get("/whoami")
    def whoami() -> Response:
        """The caller's token name and role as the proxy sees it (role "" = no token, reads only)."""
        query_args({})
        principal = g.principal
        return jsonify(name=principal.name, role=principal.role, auth=auth_mode)

    @bp.after_request
    def page_headers(response: Response) -> Response:
        # The console loads nothing from elsewhere; say so, so an injected script could not either.
        response.headers.setdefault("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; "
                                    "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
        return response

    return bp
