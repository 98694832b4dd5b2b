"""Web dashboards: the DSP's (in `chfw serve`) and the supplier's (in `chfw receiver serve`).

Server-rendered HTML from Jinja2 templates (``templates/``, autoescaped,
one environment: :mod:`chfw.web.render`) with inline SVG charts drawn by
:mod:`chfw.web.svg`, one small script for live updates, no CDN: the pages
work offline. Each page module defines its routes at module level on an
``APIRouter``; a dashboard's state is on ``app.state.dashboard``
(:mod:`chfw.web.common`). Sign-in with a token (:mod:`chfw.web.auth`).
"""

from chfw.web.auth import DashboardAuth
from chfw.web.dsp import mount_dsp_dashboard
from chfw.web.supplier import mount_supplier_dashboard

__all__ = ["DashboardAuth", "mount_dsp_dashboard", "mount_supplier_dashboard"]
