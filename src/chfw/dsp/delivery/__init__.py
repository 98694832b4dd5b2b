"""Delivery: the worker that drains the outbox to Service User endpoints.

- ``retry``: when to try again (exponential backoff, full jitter, a horizon), pure.
- ``transport``: a lean HTTP/1.1 keep-alive transport for httpx (the hot path).
- ``sender``: POST one document, classify the answer, one client per TLS set-up.
- ``worker``: claim due rows, POST them concurrently per endpoint, settle in batches.
"""
