"""A per-client limit on failed authentications, shared by every place chfw checks a credential.

Each refused credential costs the server a full scrypt (16 MiB, tens of
milliseconds; :mod:`chfw.dsp.store.credentials`), and each refused dashboard
token is a guess. :class:`FailureThrottle` counts a client's failures in a
sliding window; once it reaches ``max_failures`` the client's next attempts
are answered 429 with ``Retry-After`` *before* anything is checked, until
the oldest failure leaves the window. Successes are never counted, and other
clients are not affected.

The client is the remote address as the server sees it -- behind a
configured TLS-terminating proxy, the address it forwards
(:mod:`chfw.shared.forwarded`). Counters live in the process (a bounded LRU of
clients), so each process behind a load balancer keeps its own.

Used by the CSP intake, the Service Users' inventory API and both dashboards'
sign-in (:func:`check`, :func:`refused`); ``auth_max_failures`` and
``auth_failure_window_seconds`` set the limit (0 failures: no limit).

Every refused authentication is logged (``auth_refused``: the surface, the remote
address, who the credential claimed to be -- the public id part of a chfw credential,
or the name offered at a dashboard sign-in, never the secret -- and the client's
failures in the window), at most :data:`LOG_BURST` lines a minute per process: the
lines left out are counted in the next one's ``suppressed``, so a flood cannot fill the
disk and nothing goes unseen.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import TypeVar

import structlog
from fastapi import HTTPException, Request

from chfw.shared.bearer import bearer_token
from chfw.shared.config import Settings

T = TypeVar("T")

log = structlog.get_logger("chfw.auth")

DEFAULT_MAX_FAILURES = 20
DEFAULT_WINDOW_SECONDS = 60.0
MAX_CLIENTS = 65_536  # clients tracked at once; the least recently failing are forgotten first
LOG_BURST = 60  # auth_refused lines per LOG_WINDOW_SECONDS per process; the rest are counted
LOG_WINDOW_SECONDS = 60.0
_CREDENTIAL = re.compile(r"chfw_(csp|su)_([0-9a-f]{16})_")


class LogLimit:
    """At most ``burst`` lines per ``window`` seconds; thread-safe. :meth:`allow` answers
    None for a line to leave out, else how many were left out since the last one."""

    def __init__(
        self,
        burst: int = LOG_BURST,
        window: float = LOG_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.window = window
        self._clock = clock
        self._times: deque[float] = deque()
        self._suppressed = 0
        self._lock = threading.Lock()

    def allow(self) -> int | None:
        with self._lock:
            now = self._clock()
            while self._times and self._times[0] <= now - self.window:
                self._times.popleft()
            if len(self._times) >= self.burst:
                self._suppressed += 1
                return None
            self._times.append(now)
            left_out, self._suppressed = self._suppressed, 0
            return left_out


_auth_lines = LogLimit()


def claimed_by(credential: str | None) -> str | None:
    """Who a bearer credential claims to be, from its public part only: ``csp <token id>``
    or ``su <user id>`` for a chfw credential, ``not a chfw credential`` otherwise."""
    if credential is None:
        return None
    match = _CREDENTIAL.match(credential)
    return f"{match.group(1)} {match.group(2)}" if match else "not a chfw credential"


def log_refusal(
    surface: str, remote: str, claimed: str | None, failures: int | None, reason: str
) -> None:
    """One ``auth_refused`` line, within the process's log limit."""
    left_out = _auth_lines.allow()
    if left_out is None:
        return
    log.warning(
        "auth_refused",
        surface=surface,
        remote=remote,
        claimed=claimed,
        reason=reason,
        failures=failures,
        suppressed=left_out,
    )


class FailureThrottle:
    """Failed authentications per client in a sliding window; thread-safe."""

    def __init__(
        self,
        max_failures: int = DEFAULT_MAX_FAILURES,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        *,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self._max_clients = max_clients
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> FailureThrottle:
        return cls(settings.auth_max_failures, settings.auth_failure_window_seconds)

    def __repr__(self) -> str:
        return f"FailureThrottle({self.max_failures} per {self.window_seconds:g} s)"

    def _recent(self, client: str, now: float) -> deque[float] | None:
        times = self._failures.get(client)
        if times is None:
            return None
        while times and times[0] <= now - self.window_seconds:
            times.popleft()
        if not times:
            del self._failures[client]
            return None
        return times

    def retry_after(self, client: str) -> int | None:
        """Whole seconds until ``client`` may try again; None when it may try now."""
        if self.max_failures <= 0:
            return None
        with self._lock:
            now = self._clock()
            times = self._recent(client, now)
            if times is None or len(times) < self.max_failures:
                return None
            return max(1, math.ceil(times[0] + self.window_seconds - now))

    def failed(self, client: str) -> int:
        """Count one failure of ``client``; returns its failures in the window."""
        if self.max_failures <= 0:
            return 0
        with self._lock:
            now = self._clock()
            times = self._recent(client, now)
            if times is None:
                times = self._failures[client] = deque(maxlen=self.max_failures)
            times.append(now)
            self._failures.move_to_end(client)
            while len(self._failures) > self._max_clients:
                self._failures.popitem(last=False)
            return len(times)


def client_of(request: Request) -> str:
    """The client's address (the forwarded one behind a trusted proxy: chfw.shared.forwarded)."""
    return request.client.host if request.client else "unknown"


def check(throttle: FailureThrottle, request: Request) -> None:
    """Refuse a client over its failure limit with 429 and Retry-After, before any check."""
    wait = throttle.retry_after(client_of(request))
    if wait is not None:
        raise HTTPException(
            429,
            f"too many failed authentications from this address; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )


def refused(
    throttle: FailureThrottle, request: Request, surface: str, claimed: str | None = None
) -> None:
    """Count a refused credential and log it (the surface, address and who the credential
    claimed to be, never the credential itself)."""
    client = client_of(request)
    failures = throttle.failed(client)
    log_refusal(surface, client, claimed, failures, "credential not recognised")
    if failures == throttle.max_failures:
        log.warning(
            "auth_client_throttled",
            surface=surface,
            remote=client,
            failures=failures,
            window_seconds=throttle.window_seconds,
        )


def authenticated(
    throttle: FailureThrottle,
    request: Request,
    surface: str,
    lookup: Callable[[str], T | None],
    *,
    missing: str,
    unknown: str,
) -> T:
    """Whom the request's bearer credential names, through ``lookup``; the one way a
    bearer-authenticated endpoint refuses: 429 over the failure limit (nothing checked),
    401 ``missing`` without a credential, 401 ``unknown`` (counted) for a wrong one."""
    check(throttle, request)
    credential = bearer_token(request.headers.get("authorization"))
    if credential is None:
        log_refusal(surface, client_of(request), None, None, "no credential")
        raise HTTPException(401, missing, headers={"WWW-Authenticate": "Bearer"})
    found = lookup(credential)
    if found is None:
        refused(throttle, request, surface, claimed_by(credential))
        raise HTTPException(401, unknown, headers={"WWW-Authenticate": "Bearer"})
    return found
