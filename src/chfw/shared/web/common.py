"""What both dashboards share: their state on ``app.state``, the dependencies that read it,
and the routes that need no session (static files, sign-in, sign-out).

A dashboard is mounted by :func:`mount`: it keeps a :class:`Dashboard` on
``app.state.dashboard`` and includes the module-level routers under the
dashboard's prefix. Routes get what they need through FastAPI dependencies
(:func:`current`, :func:`page_viewer`, :func:`api_viewer`), never from a closure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
import structlog
from cryptography import x509
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from chfw.shared import throttle
from chfw.shared.recent import Recent
from chfw.shared.web.assets import DASHBOARD_JS, STYLE_CSS
from chfw.shared.web.auth import DashboardAuth, LoginRequired, Viewer, clean_name, read_form
from chfw.shared.web.render import SECURITY_HEADERS, html_response
from chfw.shared.web.sessions import DatabaseRevocations

log = structlog.get_logger("chfw.shared.web")


@dataclass(frozen=True, eq=False)
class Dashboard:
    """One mounted dashboard: what its routes read, kept on ``app.state.dashboard``.

    ``recent`` caches each page's figures (read at most every period, however
    many people watch); ``nav`` is the header's (label, path under the prefix)
    links; ``certificate`` is the DSP's alert-signing certificate (None: not shown).
    """

    auth: DashboardAuth
    engine: Engine
    clock: Callable[[], datetime]
    recent: Recent[object]
    app_title: str
    token_hint: str
    nav: tuple[tuple[str, str], ...]
    certificate: x509.Certificate | None = None

    @property
    def prefix(self) -> str:
        return self.auth.prefix


def mount(
    app: FastAPI, dashboard: Dashboard, routers: Iterable[APIRouter], revoked: sa.Table
) -> None:
    """Serve ``dashboard`` from ``app``: its state, the sign-in routes and ``routers`` under
    its prefix. Signed-out sessions are kept in ``revoked`` (the product's own
    ``revoked_sessions`` table), so every process serving the dashboard refuses them."""
    dashboard.auth.revocations = DatabaseRevocations(dashboard.engine, revoked)
    app.state.dashboard = dashboard
    install_login_redirect(app)
    for router in (base_router, *routers):
        app.include_router(router, prefix=dashboard.prefix)


def current(request: Request) -> Dashboard:
    """Dependency: the dashboard the request's app serves."""
    dashboard = request.app.state.dashboard
    assert isinstance(dashboard, Dashboard)
    return dashboard


def page_viewer(request: Request) -> Viewer:
    """Dependency of HTML pages: the viewer, or a redirect to the sign-in page."""
    return current(request).auth.page_viewer(request)


def api_viewer(request: Request) -> Viewer:
    """Dependency of JSON and chart endpoints: the viewer, or 401."""
    return current(request).auth.api_viewer(request)


#: Route parameters: the signed-in viewer of a page (else a redirect to the sign-in page) and
#: the dashboard the app serves.
SignedIn = Annotated[Viewer, Depends(page_viewer)]
CurrentDashboard = Annotated[Dashboard, Depends(current)]


def install_login_redirect(app: FastAPI) -> None:
    """Pages that need a session redirect to the sign-in page instead of answering 401."""

    async def redirect(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(exc.login_path, status_code=303, headers=SECURITY_HEADERS)

    app.add_exception_handler(LoginRequired, redirect)


def page(
    dashboard: Dashboard,
    viewer: Viewer | None,
    template: str,
    status_code: int = 200,
    /,
    *,
    active: str = "",
    live_url: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page in the dashboard's frame (``base.html``); ``viewer`` None: signed out (no
    navigation, no sign-out form). ``active``: the navigation path shown as current."""
    return html_response(
        template,
        status_code,
        app_title=dashboard.app_title,
        base=dashboard.prefix,
        nav=dashboard.nav if viewer is not None else (),
        active=active,
        csrf=dashboard.auth.csrf_token(viewer) if viewer is not None else None,
        actor=(viewer.name or "operator") if viewer is not None else None,
        live_url=live_url,
        **context,
    )


async def checked_form(
    request: Request,
    dashboard: Dashboard,
    viewer: Viewer,
    what: str,
    problem: str | None = None,
) -> dict[str, list[str]] | HTMLResponse:
    """A signed-in viewer's posted form, or the 403 page saying why ``what`` is refused
    ("Replay refused: ..."): too large, or the CSRF/origin check failed, or
    ``problem`` (the route's own reason, checked after those)."""
    form = await read_form(request)
    reason = (
        "the form was too large"
        if form is None
        else dashboard.auth.check_post(request, viewer, form) or problem
    )
    if reason or form is None:
        return page(
            dashboard,
            viewer,
            "refused.html",
            403,
            heading=f"{what} refused",
            message=f"{what} refused: {reason}.",
            announce=True,
        )
    return form


def fingerprint(data: Any) -> str:
    """A short digest of live figures: charts are fetched again only when it changes."""
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- static files, sign-in and sign-out (no session needed) ---------------------------------

base_router = APIRouter(include_in_schema=False)


def _static_headers() -> dict[str, str]:
    headers = dict(SECURITY_HEADERS)
    headers["Cache-Control"] = "max-age=300"
    return headers


@base_router.get("/static/style.css")
def style() -> Response:
    return Response(STYLE_CSS, media_type="text/css", headers=_static_headers())


@base_router.get("/static/dashboard.js")
def script() -> Response:
    return Response(DASHBOARD_JS, media_type="text/javascript", headers=_static_headers())


@base_router.get("")
def bare(dashboard: CurrentDashboard) -> Response:
    return RedirectResponse(f"{dashboard.prefix}/", status_code=307)


def _login_page(dashboard: Dashboard, error: str | None, status_code: int = 200) -> HTMLResponse:
    return page(dashboard, None, "login.html", status_code, error=error, hint=dashboard.token_hint)


@base_router.get("/login")
def login_form(request: Request, dashboard: CurrentDashboard) -> Response:
    if dashboard.auth.viewer(request) is not None:
        return RedirectResponse(f"{dashboard.prefix}/", status_code=303)
    return _login_page(dashboard, None)


@base_router.post("/login")
async def login(request: Request, dashboard: CurrentDashboard) -> Response:
    form = await read_form(request)
    if form is None:
        return _login_page(dashboard, "The form was too large.", 413)
    token, name = (form.get("token") or [""])[0], (form.get("name") or [""])[0]
    auth, remote = dashboard.auth, throttle.client_of(request)
    wait = auth.throttle.retry_after(remote)
    if wait is not None:  # over the failure limit: the token is not even looked at
        problem = f"Too many wrong tokens from your address: try again in {wait} s."
        response = _login_page(dashboard, problem, 429)
        response.headers["Retry-After"] = str(wait)
        return response
    if auth.token_matches(token):
        log.info("dashboard_sign_in", realm=auth.realm, name=clean_name(name), remote=remote)
        return auth.signed_in(request, name, f"{dashboard.prefix}/")
    log.warning("dashboard_sign_in_refused", realm=auth.realm, remote=remote)
    throttle.refused(auth.throttle, request, f"dashboard:{auth.realm}", clean_name(name) or None)
    return _login_page(dashboard, "That token is not right.", 401)


@base_router.post("/logout")
async def logout(request: Request, dashboard: CurrentDashboard) -> Response:
    auth = dashboard.auth
    viewer = await run_in_threadpool(auth.viewer, request)  # may read revocations
    form = await read_form(request) or {}
    if viewer is not None:
        problem = auth.check_post(request, viewer, form)
        if problem:
            return page(
                dashboard,
                None,
                "refused.html",
                403,
                heading="Not signed out",
                message=problem,
                announce=False,
            )
        if viewer.session:  # ended on the server: the cookie is refused even if replayed
            await run_in_threadpool(auth.end_session, viewer.session)
            log.info("dashboard_sign_out", realm=auth.realm, name=viewer.name)
    return auth.signed_out(f"{dashboard.prefix}/login")
