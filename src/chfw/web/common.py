"""What both dashboards share: sign-in and sign-out pages, the static files, the redirect.

:func:`base_router` makes the routes under the dashboard's prefix that need
no session; :func:`install_login_redirect` turns :class:`LoginRequired` into
a redirect to the sign-in page.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from chfw import throttle
from chfw.web.assets import DASHBOARD_JS, STYLE_CSS
from chfw.web.auth import DashboardAuth, LoginRequired, clean_name, read_form
from chfw.web.html import SECURITY_HEADERS, Html, esc, html_response, page

log = structlog.get_logger("chfw.web")


def install_login_redirect(app: FastAPI) -> None:
    """Pages that need a session redirect to the sign-in page instead of answering 401."""

    async def redirect(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(exc.login_path, status_code=303, headers=SECURITY_HEADERS)

    app.add_exception_handler(LoginRequired, redirect)


def json_response(data: dict[str, Any], status_code: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status_code, headers=SECURITY_HEADERS)


def fingerprint(data: Any) -> str:
    """A short digest of live figures: charts are fetched again only when it changes."""
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _login_page(auth: DashboardAuth, app_title: str, error: str | None, hint: str) -> Html:
    problem = f'<p class="error" role="alert">{esc(error)}</p>' if error else ""
    main = Html(
        f'<div class="login">{problem}'
        f'<form method="post" action="{auth.prefix}/login" id="login">'
        '<label for="token">Dashboard token</label>'
        '<input type="password" id="token" name="token" required autocomplete="current-password">'
        '<label for="name">Your name '
        '<span class="hint">(optional, for the audit log)</span></label>'
        '<input type="text" id="name" name="name" maxlength="60" autocomplete="username">'
        '<p><button type="submit">Sign in</button></p></form>'
        f'<p class="hint">{esc(hint)}</p></div>'
    )
    return page(
        "Sign in",
        main,
        app_title=app_title,
        base=auth.prefix,
        nav=(),
        active="",
    )


def base_router(auth: DashboardAuth, *, app_title: str, token_hint: str) -> APIRouter:
    """Static files, sign-in and sign-out under ``auth.prefix``."""
    router = APIRouter(prefix=auth.prefix, include_in_schema=False)
    home = f"{auth.prefix}/"

    @router.get("/static/style.css")
    def style() -> Response:
        return Response(STYLE_CSS, media_type="text/css", headers=_static_headers())

    @router.get("/static/dashboard.js")
    def script() -> Response:
        return Response(DASHBOARD_JS, media_type="text/javascript", headers=_static_headers())

    @router.get("")
    def bare() -> Response:
        return RedirectResponse(home, status_code=307)

    def attempt(request: Request, token: str, name: str) -> Response:
        remote = throttle.client_of(request)
        wait = auth.throttle.retry_after(remote)
        if wait is not None:  # over the failure limit: the token is not even looked at
            problem = f"Too many wrong tokens from your address: try again in {wait} s."
            response = html_response(_login_page(auth, app_title, problem, token_hint), 429)
            response.headers["Retry-After"] = str(wait)
            return response
        if auth.token_matches(token):
            log.info("dashboard_sign_in", realm=auth.realm, name=clean_name(name), remote=remote)
            return auth.signed_in(request, name, home)
        log.warning("dashboard_sign_in_refused", realm=auth.realm, remote=remote)
        throttle.refused(auth.throttle, request, f"dashboard:{auth.realm}")
        body = _login_page(auth, app_title, "That token is not right.", token_hint)
        return html_response(body, 401)

    @router.get("/login")
    def login_form(request: Request) -> Response:
        if auth.viewer(request) is not None:
            return RedirectResponse(home, status_code=303)
        return html_response(_login_page(auth, app_title, None, token_hint))

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await read_form(request)
        if form is None:
            return html_response(
                _login_page(auth, app_title, "The form was too large.", token_hint), 413
            )
        return attempt(request, (form.get("token") or [""])[0], (form.get("name") or [""])[0])

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        viewer = await run_in_threadpool(auth.viewer, request)  # may read revocations
        form = await read_form(request) or {}
        if viewer is not None:
            problem = auth.check_post(request, viewer, form)
            if problem:
                return html_response(
                    page(
                        "Not signed out",
                        Html(f'<p class="error">{esc(problem)}</p>'),
                        app_title=app_title,
                        base=auth.prefix,
                        nav=(),
                        active="",
                    ),
                    403,
                )
            if viewer.session:  # ended on the server: the cookie is refused even if replayed
                await run_in_threadpool(auth.end_session, viewer.session)
                log.info("dashboard_sign_out", realm=auth.realm, name=viewer.name)
        return auth.signed_out(f"{auth.prefix}/login")

    return router


def _static_headers() -> dict[str, str]:
    headers = dict(SECURITY_HEADERS)
    headers["Cache-Control"] = "max-age=300"
    return headers
