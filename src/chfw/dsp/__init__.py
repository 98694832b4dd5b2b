"""The DSP product: CSP intake → decide → inventory and outbox → sign → deliver, its dashboard.

Never imports :mod:`chfw.supplier` (``.importlinter``); what both need is in
:mod:`chfw.shared`, what both compute is in :mod:`chfw.core`.
"""
