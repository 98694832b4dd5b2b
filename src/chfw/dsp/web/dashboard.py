"""The DSP's dashboard, mounted into the intake app under ``/dashboard``.

Read-only, except for replaying dead letters and pausing or resuming a
campaign (POSTs, CSRF-checked, audited with the signed-in operator as actor).
Each page is a module with its own router and template:

- ``/dashboard/``: firmware distribution (CHs per active version and CSP
  region, each version's share), activation outcomes over time, alert
  delivery health per Service User; live while a wave runs (``/live.json``
  polled every 3 s, charts at ``/charts/*.svg`` fetched again when figures
  change) -- :mod:`chfw.dsp.web.overview`;
- ``/dashboard/hubs/<Device ID>``: one CH's history, its alerts and their
  delivery attempts (``/dashboard/hubs?device_id=`` finds one) --
  :mod:`chfw.dsp.web.hub_page`;
- ``/dashboard/campaigns``: firmware campaigns, their phases and gates, with
  pause/resume forms -- :mod:`chfw.dsp.web.campaigns_page`;
- ``/dashboard/dead-letters``: dead-lettered alerts, with the replay form --
  :mod:`chfw.dsp.web.dead_letters`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from cryptography import x509
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from chfw.core.clock import utc_now
from chfw.dsp.store.schema import revoked_sessions
from chfw.dsp.web import campaigns_page, dead_letters, hub_page, overview
from chfw.shared.recent import Recent
from chfw.shared.web.auth import DashboardAuth
from chfw.shared.web.common import Dashboard, mount

APP_TITLE = "chfw · DSP dashboard"
SIGN_IN_HINT = (
    "The token is the dashboard_token setting (CHFW_DASHBOARD_TOKEN). When it is not set, "
    "`chfw serve` makes one at start and prints a sign-in link in its terminal."
)
NAV = (("Overview", "/"), ("Campaigns", "/campaigns"), ("Dead letters", "/dead-letters"))


def mount_dsp_dashboard(
    app: FastAPI,
    engine: Engine,
    auth: DashboardAuth,
    *,
    clock: Callable[[], datetime] = utc_now,
    cache_seconds: float = 5.0,
    certificate: x509.Certificate | None = None,
) -> None:
    """Add the dashboard's routes to the intake app; the overview's figures are read at most
    every ``cache_seconds``, however many people watch. Signed-out sessions are kept in
    ``engine``'s database, so every process serving the dashboard refuses them.
    ``certificate``: the alert-signing certificate whose expiry the overview shows."""
    dashboard = Dashboard(
        auth=auth,
        engine=engine,
        clock=clock,
        recent=Recent(cache_seconds),
        app_title=APP_TITLE,
        token_hint=SIGN_IN_HINT,
        nav=NAV,
        certificate=certificate,
    )
    routers = (overview.router, hub_page.router, campaigns_page.router, dead_letters.router)
    mount(app, dashboard, routers, revoked_sessions)
