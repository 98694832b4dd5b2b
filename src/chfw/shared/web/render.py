"""The dashboards' one Jinja2 environment, and the responses every route answers with.

Every page is a template extending ``base.html`` (``chfw/shared/web/templates/``);
each product keeps its own pages in its own ``templates/`` folder and adds it with
:func:`add_templates` when its dashboard module is imported, so this shared module
names neither product.
Autoescaping is on for every template, so each value from the database or a
request (a supplier's rejection reason, a pilot's description, a mistyped
Device ID) is escaped by Jinja2; no Python code here builds HTML. Charts are
the one exception: :mod:`chfw.shared.web.svg` draws them (escaping its own text) and
:func:`chart` marks its output as markup for the templates.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    PackageLoader,
    StrictUndefined,
    select_autoescape,
)
from markupsafe import Markup

from chfw.shared.web.formatting import (
    dash,
    device_label,
    fmt_int,
    fmt_seconds,
    fmt_share,
    fmt_time,
    user_label,
)

#: Sent with every dashboard response. Scripts and styles come only from the
#: dashboard itself (no inline script, no CDN); pages cannot be framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # "no-referrer" makes browsers send "Origin: null"
    "Cache-Control": "no-store",
}

_LOADERS: list[BaseLoader] = [PackageLoader("chfw.shared.web", "templates")]

ENV = Environment(
    loader=ChoiceLoader(_LOADERS),
    autoescape=select_autoescape(default_for_string=True, default=True),
    undefined=StrictUndefined,  # a misspelt name is an error, not an empty string
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
ENV.filters.update(
    count=fmt_int,
    dash=dash,
    device=device_label,
    duration=fmt_seconds,
    share=fmt_share,
    user=user_label,
    utc=fmt_time,
)


def add_templates(package: str) -> None:
    """Make the pages in ``package``'s ``templates/`` folder available (idempotent)."""
    loader = PackageLoader(package, "templates")
    if all(getattr(known, "package_name", None) != package for known in _LOADERS):
        _LOADERS.append(loader)


def chart(svg_markup: str) -> Markup:
    """A chart drawn by :mod:`chfw.shared.web.svg` (text already escaped), to embed in a page."""
    return Markup(svg_markup)  # noqa: S704 -- svg.py escapes every text it draws


def macro(name: str, /, *args: Any) -> Markup:
    """Render one macro of ``_macros.html`` on its own (a fragment, e.g. for a test)."""
    rendered: Markup = getattr(ENV.get_template("_macros.html").module, name)(*args)
    return rendered


def html_response(template: str, status_code: int = 200, /, **context: Any) -> HTMLResponse:
    """The page ``template`` rendered with ``context``, with the security headers."""
    body = ENV.get_template(template).render(**context)
    return HTMLResponse(body, status_code=status_code, headers=SECURITY_HEADERS)


def svg_response(body: str) -> Response:
    return Response(body, media_type="image/svg+xml", headers=SECURITY_HEADERS)


def json_response(data: dict[str, Any], status_code: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status_code, headers=SECURITY_HEADERS)
