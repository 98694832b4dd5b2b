"""Tiny HTML building blocks: escaping, tables, the page frame, response headers.

No template engine: pages are Python functions returning :class:`Html`, and
every value from the database goes through :func:`esc` (or a helper that
calls it), so a supplier's rejection reason or a pilot description cannot
inject markup. ``Html`` marks text that is already markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from html import escape

from fastapi.responses import HTMLResponse, Response

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


class Html(str):
    """Text that is already safe markup (built by this module's helpers)."""

    __slots__ = ()


def esc(value: object) -> Html:
    """``value`` as HTML text: Html passes through, None becomes an em dash, the rest is escaped."""
    if isinstance(value, Html):
        return value
    if value is None:
        return Html("—")
    return Html(escape(str(value), quote=True))


def join(parts: Iterable[Html], sep: str = "") -> Html:
    return Html(sep.join(esc(part) for part in parts))


def fmt_int(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def fmt_share(part: int, whole: int) -> str:
    return "—" if whole <= 0 else f"{100 * part / whole:.1f}\u00a0%"


def fmt_time(moment: datetime | None) -> str:
    """UTC to the second, as operators compare it with logs."""
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def when(moment: datetime | None) -> Html:
    """A table cell's time: a ``<time>`` element (machine-readable, kept on one line)."""
    if moment is None:
        return esc(None)
    return Html(f'<time datetime="{moment.isoformat()}">{esc(fmt_time(moment))}</time>')


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def link(href: str, text: object) -> Html:
    return Html(f'<a href="{escape(href, quote=True)}">{esc(text)}</a>')


def table(
    caption: str,
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    numeric: Iterable[int] = (),
    empty: str = "Nothing to show yet.",
    table_id: str | None = None,
) -> Html:
    """A captioned table with column headers; ``numeric`` column indexes are right-aligned."""
    right = set(numeric)
    attr = f' id="{escape(table_id, quote=True)}"' if table_id else ""
    head = "".join(
        f'<th scope="col"{" class=num" if i in right else ""}>{esc(h)}</th>'
        for i, h in enumerate(headers)
    )
    body: list[str] = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            tag = "th" if i == 0 else "td"
            scope = ' scope="row"' if i == 0 else ""
            cls = " class=num" if i in right else ""
            cells.append(f"<{tag}{scope}{cls}>{esc(cell)}</{tag}>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(headers)}" class="empty">{esc(empty)}</td></tr>')
    return Html(
        f"<div class=table-wrap><table{attr}><caption>{esc(caption)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def figures(items: Iterable[tuple[str, str, str | None]]) -> Html:
    """Headline numbers: (label, value, live key or None) as a description list."""
    parts = []
    for label, value, key in items:
        live = f' data-live="{escape(key, quote=True)}"' if key else ""
        long = ' class="long"' if len(value) > 12 else ""  # a time, a sentence: smaller type
        parts.append(f"<div><dt>{esc(label)}</dt><dd{live}{long}>{esc(value)}</dd></div>")
    return Html(f"<dl class=figures>{''.join(parts)}</dl>")


def live_cell(value: str, key: str) -> Html:
    return Html(f'<span data-live="{escape(key, quote=True)}">{esc(value)}</span>')


def hidden(name: str, value: str) -> Html:
    name, value = escape(name, quote=True), escape(value, quote=True)
    return Html(f'<input type="hidden" name="{name}" value="{value}">')


def page(
    title: str,
    main: Html,
    *,
    app_title: str,
    base: str,
    nav: Sequence[tuple[str, str]],
    active: str,
    csrf: str | None = None,
    actor: str | None = None,
    live_url: str | None = None,
) -> Html:
    """The frame of every dashboard page: skip link, header with navigation, main content."""
    links = "".join(
        f'<li><a href="{escape(href, quote=True)}"'
        f"{' aria-current=page' if href == active else ''}>{esc(label)}</a></li>"
        for label, href in nav
    )
    who = ""
    if csrf is not None:
        who = (
            f'<form method="post" action="{base}/logout" class="logout">'
            f"<span>Signed in as {esc(actor or 'operator')}</span> {hidden('csrf', csrf)}"
            '<button type="submit">Sign out</button></form>'
        )
    live = ""
    if live_url:
        live = f' data-live-url="{escape(live_url, quote=True)}" data-live-interval="3000"'
    status = (
        '<p id="live-status" class="live-status" role="status">Live updates every 3 s</p>'
        if live_url
        else ""
    )
    return Html(
        "<!doctype html>\n"
        '<html lang="en-GB"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · {esc(app_title)}</title>"
        '<link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="{base}/static/style.css">'
        f'<script src="{base}/static/dashboard.js" defer></script>'
        f"</head><body{live}>"
        '<a class="skip" href="#main">Skip to content</a>'
        f'<header><p class="brand">{esc(app_title)}</p>'
        f'<nav aria-label="Dashboard"><ul>{links}</ul></nav>{who}</header>'
        f'<main id="main"><h1>{esc(title)}</h1>{status}{main}</main>'
        "</body></html>\n"
    )


def html_response(body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status_code, headers=SECURITY_HEADERS)


def svg_response(body: str) -> Response:
    return Response(body, media_type="image/svg+xml", headers=SECURITY_HEADERS)


def with_headers(response: Response, extra: Mapping[str, str] | None = None) -> Response:
    for name, value in {**SECURITY_HEADERS, **(extra or {})}.items():
        response.headers[name] = value
    return response
