"""What both dashboards share: sign-in, page frame, formatting, charts, responses.

Server-rendered HTML from Jinja2 templates (autoescaped, one environment:
:mod:`chfw.shared.web.render`) with inline SVG charts drawn by
:mod:`chfw.shared.web.svg`, one small script for live updates, no CDN: the pages
work offline. The DSP's dashboard lives in :mod:`chfw.dsp.web`, the supplier's in
:mod:`chfw.supplier.dashboard`; each defines its routes at module level on an
``APIRouter`` and keeps its state on ``app.state.dashboard``
(:mod:`chfw.shared.web.common`). Sign-in with a token (:mod:`chfw.shared.web.auth`).
"""
