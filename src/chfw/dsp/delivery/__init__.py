"""Delivery: the worker that drains the outbox to Service User endpoints.

- ``transport``: a lean HTTP/1.1 keep-alive transport (the hot path; the retry policy is
  :mod:`chfw.shared.retry`).
- ``sender``: POST one document, classify the answer, one client per TLS set-up.
- ``worker``: claim due rows, POST them concurrently per endpoint, settle in batches.
- ``reporting``: a run's counts and the reasons written on alerts.
- ``monitor``: the worker's own /metrics, /healthz and /readyz (``--metrics-port``).
"""
