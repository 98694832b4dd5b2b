"""The DSP's dashboard, mounted into the intake app under ``/dashboard``.

Read-only, except for replaying dead letters (a POST, CSRF-checked, audited
with the signed-in operator as actor). Pages:

- ``/dashboard/``: firmware distribution (CHs per active version and CSP
  region, each version's share), activation outcomes over time, alert
  delivery health per Service User; live while a wave runs (``/live.json``
  polled every 3 s, charts at ``/charts/*.svg`` fetched again when figures change);
- ``/dashboard/hubs/<Device ID>``: one CH's history, its alerts and their
  delivery attempts (``/dashboard/hubs?device_id=`` finds one);
- ``/dashboard/dead-letters``: dead-lettered alerts, with the replay form.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlencode

from cryptography import x509
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from chfw.domain import DeviceId
from chfw.exceptions import InvalidValueError
from chfw.recent import Recent
from chfw.store.engine import reading
from chfw.store.sessions import DatabaseRevocations
from chfw.web.auth import DashboardAuth, Viewer, read_form
from chfw.web.common import (
    base_router,
    fingerprint,
    install_login_redirect,
    json_response,
)
from chfw.web.dead_letters import dead_letters_main, replay_dead_letters, user_hex
from chfw.web.html import SECURITY_HEADERS, Html, esc, html_response, page, svg_response
from chfw.web.hub_page import find_form, hub_main
from chfw.web.overview import (
    FAILURES_AND_PENDING,
    Overview,
    firmware_chart,
    live_figures,
    outcomes_chart,
    overview_main,
    read_overview,
    signing_line,
)

APP_TITLE = "chfw · DSP dashboard"
SIGN_IN_HINT = (
    "The token is the dashboard_token setting (CHFW_DASHBOARD_TOKEN). When it is not set, "
    "`chfw serve` makes one at start and prints a sign-in link in its terminal."
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def mount_dsp_dashboard(
    app: FastAPI,
    engine: Engine,
    auth: DashboardAuth,
    *,
    clock: Callable[[], datetime] = _utcnow,
    cache_seconds: float = 5.0,
    certificate: x509.Certificate | None = None,
) -> None:
    """Add the dashboard's routes to the intake app; the overview's figures are read at most
    every ``cache_seconds``, however many people watch. Signed-out sessions are kept in
    ``engine``'s database, so every process serving the dashboard refuses them."""
    auth.revocations = DatabaseRevocations(engine)
    install_login_redirect(app)
    app.include_router(base_router(auth, app_title=APP_TITLE, token_hint=SIGN_IN_HINT))
    app.include_router(_router(engine, auth, clock, Recent(cache_seconds), certificate))


# --- routes ----------------------------------------------------------------------------------


def _nav(prefix: str) -> tuple[tuple[str, str], ...]:
    return (("Overview", f"{prefix}/"), ("Dead letters", f"{prefix}/dead-letters"))


def _router(
    engine: Engine,
    auth: DashboardAuth,
    clock: Callable[[], datetime],
    recent: Recent[Overview],
    certificate: x509.Certificate | None = None,
) -> APIRouter:
    prefix = auth.prefix
    router = APIRouter(prefix=prefix, include_in_schema=False)
    signed_in = Depends(auth.page_viewer)
    api_client = Depends(auth.api_viewer)

    def frame(
        title: str,
        main: Html,
        viewer: Viewer,
        active: str,
        live: bool = False,
        status_code: int = 200,
    ) -> Response:
        return html_response(
            page(
                title,
                main,
                app_title=APP_TITLE,
                base=prefix,
                nav=_nav(prefix),
                active=active,
                csrf=auth.csrf_token(viewer),
                actor=viewer.name or "operator",
                live_url=f"{prefix}/live.json" if live else None,
            ),
            status_code,
        )

    def read() -> Overview:
        with reading(engine) as conn:
            return read_overview(conn, clock())

    def overview() -> Overview:
        return recent.get("overview", read)

    @router.get("/")
    def home(viewer: Viewer = signed_in) -> Response:
        view = overview()
        signing = signing_line(certificate, clock()) if certificate is not None else None
        return frame(
            "Firmware roll-out", overview_main(view, prefix, signing), viewer, f"{prefix}/", True
        )

    @router.get("/live.json")
    def live(viewer: Viewer = api_client) -> Response:
        del viewer
        view = overview()
        figures_ = live_figures(view)
        return json_response(
            {
                "at": view.at.strftime("%H:%M:%S UTC"),
                "version": fingerprint(figures_),
                "live": figures_,
            }
        )

    @router.get("/charts/outcomes.svg")
    def outcomes_svg(viewer: Viewer = api_client) -> Response:
        del viewer
        return svg_response(outcomes_chart(overview().timeline))

    @router.get("/charts/failures.svg")
    def failures_svg(viewer: Viewer = api_client) -> Response:
        del viewer
        return svg_response(outcomes_chart(overview().timeline, FAILURES_AND_PENDING))

    @router.get("/charts/firmware.svg")
    def firmware_svg(viewer: Viewer = api_client) -> Response:
        del viewer
        return svg_response(firmware_chart(overview()))

    @router.get("/hubs")
    def find_hub(viewer: Viewer = signed_in, device_id: str = "") -> Response:
        try:
            device = DeviceId.parse(device_id.strip())
        except InvalidValueError as exc:
            main = Html(
                f'<p class="error" role="alert">{esc(exc)}</p>{find_form(prefix, device_id)}'
            )
            return frame("Find a Communications Hub", main, viewer, "")
        return RedirectResponse(
            f"{prefix}/hubs/{device}", status_code=303, headers=SECURITY_HEADERS
        )

    @router.get("/hubs/{device_id}")
    def hub(device_id: str, viewer: Viewer = signed_in) -> Response:
        try:
            device = DeviceId.parse(device_id)
        except InvalidValueError as exc:
            main = Html(f'<p class="error" role="alert">{esc(exc)}</p>{find_form(prefix)}')
            return frame("Not a Device ID", main, viewer, "")
        with reading(engine) as conn:
            main_ = hub_main(conn, device, prefix)
        if main_ is None:
            missing = Html(
                f'<p class="error" role="alert">CH {esc(device)} is not in the estate.</p>'
                f"{find_form(prefix, str(device))}"
            )
            return frame(f"CH {device}", missing, viewer, "", status_code=404)
        return frame(f"Communications Hub {device}", main_, viewer, "")

    @router.get("/dead-letters")
    def dead_letters(
        viewer: Viewer = signed_in, user: str = "", replayed: int | None = None, skipped: int = 0
    ) -> Response:
        message = Html("")
        if replayed is not None:
            text = (
                f"{replayed:,} alert(s) put back to pending."
                if replayed
                else ("Nothing was replayed: select at least one dead letter.")
            )
            if skipped:
                text += f" {skipped:,} were no longer dead letters and were left alone."
            message = Html(f'<p class="notice" role="status">{esc(text)}</p>')
        chosen_user = user_hex(user)
        with reading(engine) as conn:
            main = dead_letters_main(conn, prefix, auth.csrf_token(viewer), chosen_user, message)
        return frame("Dead letters", main, viewer, f"{prefix}/dead-letters", True)

    @router.post("/dead-letters/replay")
    async def replay(request: Request, viewer: Viewer = signed_in) -> Response:
        form = await read_form(request)
        problem = (
            "the form was too large" if form is None else auth.check_post(request, viewer, form)
        )
        if problem or form is None:
            main = Html(f'<p class="error" role="alert">Replay refused: {esc(problem)}.</p>')
            return frame("Replay refused", main, viewer, "", status_code=403)
        chosen_user = user_hex((form.get("user") or [""])[0])
        change = await run_in_threadpool(
            replay_dead_letters, engine, form, chosen_user, viewer, clock()
        )
        query = {"replayed": len(change.changed), "skipped": len(change.skipped)}
        if chosen_user:
            query["user"] = chosen_user  # type: ignore[assignment]
        return RedirectResponse(
            f"{prefix}/dead-letters?{urlencode(query)}", status_code=303, headers=SECURITY_HEADERS
        )

    return router
