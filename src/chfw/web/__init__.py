"""Web dashboards: the DSP's (in `chfw serve`) and the supplier's (in `chfw receiver serve`).

Server-rendered HTML with inline SVG charts (:mod:`chfw.web.svg`), one small
script for live updates, no CDN: the pages work offline. Sign-in with a
token (:mod:`chfw.web.auth`).
"""

from chfw.web.auth import DashboardAuth
from chfw.web.dsp import mount_dsp_dashboard
from chfw.web.supplier import mount_supplier_dashboard

__all__ = ["DashboardAuth", "mount_dsp_dashboard", "mount_supplier_dashboard"]
