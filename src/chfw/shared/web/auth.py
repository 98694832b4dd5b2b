"""Dashboard sign-in: one shared token, exchanged for a signed session cookie; CSRF checks.

The operator opens ``/dashboard/login`` and gives the token (or follows the
sign-in link ``chfw serve`` prints in a terminal, ``#token=...``: a URL
fragment, which the browser keeps to itself and the page posts), optionally
with their name for the audit log. The answer sets a session cookie:
``<name>.<issued>.<session id>.<HMAC>``, keyed by a hash of the token and the
dashboard's realm, ``HttpOnly``, ``SameSite=Strict``, ``Secure`` over HTTPS
(behind a TLS-terminating proxy: when a trusted proxy says so,
:mod:`chfw.shared.forwarded`), valid for 12 hours. Changing the token ends every
session. Signing out ends the session on the server: its random session id
is revoked (:class:`SessionRevocations`; the dashboards keep revocations in
their database, so every process refuses a replayed cookie). Scripts may
instead send ``Authorization: Bearer <token>``.

Wrong tokens (at sign-in, or as a bearer token) count against the client's
failure limit (:mod:`chfw.shared.throttle`): over it, the client is answered 429
without the token being looked at.

State-changing requests (replay, sign-out) are POSTs that must carry a CSRF
token bound to the session (HMAC of the cookie) and, when the browser sends
an ``Origin``, come from the dashboard's own origin.

Tokens are compared in constant time and never logged. Unset, a random token
is generated at start (:meth:`DashboardAuth.from_setting`); configured ones
must be at least 16 characters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TextIO
from urllib.parse import parse_qs, quote

from fastapi import HTTPException, Request
from fastapi.responses import RedirectResponse

from chfw.exceptions import ConfigError
from chfw.shared import throttle as auth_throttle
from chfw.shared.bearer import bearer_token
from chfw.shared.bodylimit import BodyTooLarge, declared_length, read_within
from chfw.shared.logs import json_mode, notice
from chfw.shared.throttle import FailureThrottle

SESSION_SECONDS = 12 * 3600
MIN_TOKEN_LENGTH = 16
FORM_MAX_BYTES = 64 * 1024
_NAME = re.compile(r"[A-Za-z0-9 ._@'-]{1,60}")
_CLOCK_SKEW = 60
_SESSION_ID = re.compile(r"[0-9a-f]{32}")


class LoginRequired(Exception):
    """Raised by page dependencies when there is no valid session: answered with a redirect."""

    def __init__(self, login_path: str) -> None:
        super().__init__(login_path)
        self.login_path = login_path


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking: the name given at sign-in ("" if none) and the session cookie value."""

    name: str
    session: str  # "" for a bearer-token request (no CSRF token: not a browser session)

    @property
    def actor(self) -> str:
        """The audit log's actor for this viewer's actions."""
        return f"dashboard:{self.name}" if self.name else "dashboard"


class SessionRevocations(Protocol):
    """Where signed-out session ids are kept until their cookies would have expired anyway."""

    def revoke(self, session_id: str, until: float) -> None:
        """Refuse ``session_id`` from now until ``until`` (Unix time)."""

    def is_revoked(self, session_id: str) -> bool: ...


class MemoryRevocations:
    """Revocations held in this process only (tests; a dashboard without a database)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._until: dict[str, float] = {}
        self._clock = clock

    def revoke(self, session_id: str, until: float) -> None:
        now = self._clock()
        self._until = {sid: end for sid, end in self._until.items() if end > now}
        self._until[session_id] = until

    def is_revoked(self, session_id: str) -> bool:
        return self._until.get(session_id, 0.0) > self._clock()


def clean_name(text: str) -> str:
    """The operator's name for the audit log: kept only if it is plain (letters, digits...)."""
    text = text.strip()
    return text if _NAME.fullmatch(text) else ""


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()


class DashboardAuth:
    """The token of one dashboard (``realm``: ``dsp`` or ``supplier``) and its sessions."""

    def __init__(
        self,
        token: str,
        *,
        realm: str = "dsp",
        generated: bool = False,
        prefix: str = "/dashboard",
        clock: Callable[[], float] = time.time,
        throttle: FailureThrottle | None = None,
        revocations: SessionRevocations | None = None,
    ) -> None:
        if len(token) < MIN_TOKEN_LENGTH:
            raise ConfigError(
                f"dashboard_token must be at least {MIN_TOKEN_LENGTH} characters; make one with "
                "`python3 -c 'import secrets; print(secrets.token_urlsafe(24))'`"
            )
        self._token = token.encode()
        self._key = hashlib.sha256(
            b"chfw dashboard session\0" + realm.encode() + b"\0" + self._token
        ).digest()
        self.realm = realm
        self.generated = generated
        self.prefix = prefix
        self.cookie = f"chfw_{realm}_session"
        self._clock = clock
        # Replaceable after construction: the serving command applies the deployment's
        # limits, the dashboard its database (mount_*_dashboard).
        self.throttle = throttle or FailureThrottle()
        self.revocations: SessionRevocations = revocations or MemoryRevocations(clock)

    @classmethod
    def from_setting(
        cls,
        token: str | None,
        *,
        realm: str = "dsp",
        prefix: str = "/dashboard",
        throttle: FailureThrottle | None = None,
    ) -> DashboardAuth:
        """The configured token, or a new random one (``generated``) when there is none."""
        if token:
            return cls(token, realm=realm, prefix=prefix, throttle=throttle)
        return cls(
            secrets.token_urlsafe(24), realm=realm, generated=True, prefix=prefix, throttle=throttle
        )

    def __repr__(self) -> str:  # never show the token
        return f"DashboardAuth(realm={self.realm!r}, generated={self.generated})"

    def login_url(self, base_url: str) -> str:
        """A link that signs in at once (print it only to a terminal, never to a log).

        The token is in the fragment, which browsers do not send: the sign-in
        page's script posts it, so it never appears in a request line or log.
        """
        return f"{base_url.rstrip('/')}{self.prefix}/login#token={quote(self._token.decode())}"

    def token_matches(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.strip().encode(), self._token)

    # --- sessions -----------------------------------------------------------------------------

    def _mac(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def issue(self, name: str) -> str:
        """A session cookie value for an operator who gave the right token."""
        payload = f"{_b64(clean_name(name))}.{int(self._clock())}.{secrets.token_hex(16)}"
        return f"{payload}.{self._mac(payload)}"

    def _signed_parts(self, value: str) -> list[str] | None:
        """The cookie's name, issue time and session id when its MAC is right and it is in
        date; None when it is forged, malformed or expired."""
        parts = value.split(".")
        if len(parts) != 4 or not parts[1].isdigit() or not _SESSION_ID.fullmatch(parts[2]):
            return None
        payload = ".".join(parts[:3])
        if not _same(parts[3], self._mac(payload)):
            return None
        age = self._clock() - int(parts[1])
        if not -_CLOCK_SKEW <= age <= SESSION_SECONDS:
            return None
        return parts[:3]

    def session_viewer(self, value: str) -> Viewer | None:
        """The viewer of a session cookie; None when forged, malformed, expired or signed out."""
        parts = self._signed_parts(value)
        if parts is None or self.revocations.is_revoked(parts[2]):
            return None
        try:
            name = _unb64(parts[0])
        except (ValueError, UnicodeDecodeError):
            return None
        return Viewer(clean_name(name), value)

    def end_session(self, value: str) -> bool:
        """Sign a session out on the server: its cookie is refused from now on, even if replayed.

        Returns whether ``value`` was a live session.
        """
        parts = self._signed_parts(value)
        if parts is None:
            return False
        self.revocations.revoke(parts[2], int(parts[1]) + SESSION_SECONDS + _CLOCK_SKEW)
        return True

    def viewer(self, request: Request) -> Viewer | None:
        """The session's viewer, or an API viewer for a right bearer token, else None.

        A bearer token is a credential guess until it matches: a client over its
        failure limit gets 429 before it is compared, and a wrong one is counted.
        """
        cookie = request.cookies.get(self.cookie)
        if cookie:
            found = self.session_viewer(cookie)
            if found is not None:
                return found
        credential = bearer_token(request.headers.get("authorization"))
        if credential is not None:
            auth_throttle.check(self.throttle, request)
            if self.token_matches(credential):
                return Viewer("api", "")
            auth_throttle.refused(
                self.throttle, request, f"dashboard:{self.realm}", "dashboard API token"
            )
        return None

    def page_viewer(self, request: Request) -> Viewer:
        """Dependency of HTML pages: the viewer, or a redirect to the sign-in page."""
        found = self.viewer(request)
        if found is None:
            raise LoginRequired(f"{self.prefix}/login")
        return found

    def api_viewer(self, request: Request) -> Viewer:
        """Dependency of JSON and chart endpoints: the viewer, or 401."""
        found = self.viewer(request)
        if found is None:
            raise HTTPException(
                401,
                f"sign in at {self.prefix}/login, or send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return found

    # --- CSRF ---------------------------------------------------------------------------------

    def csrf_token(self, viewer: Viewer) -> str:
        """The token forms of this session must send back (empty for API viewers)."""
        if not viewer.session:
            return ""
        return self._mac(f"csrf.{viewer.session}")[:40]

    def check_post(
        self, request: Request, viewer: Viewer, form: dict[str, list[str]]
    ) -> str | None:
        """Why a state-changing POST must be refused (None: it may proceed)."""
        origin_problem = same_origin_problem(request)
        if origin_problem:
            return origin_problem
        if not viewer.session:
            return None  # bearer token: not a browser, no ambient credential to abuse
        sent = (form.get("csrf") or [""])[0]
        if not sent or not _same(sent, self.csrf_token(viewer)):
            return "the form's security token is missing or stale: reload the page and try again"
        return None

    def signed_in(self, request: Request, name: str, target: str) -> RedirectResponse:
        """Redirect to ``target`` with a new session cookie."""
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            self.cookie,
            self.issue(name),
            max_age=SESSION_SECONDS,
            path=self.prefix,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    def signed_out(self, target: str) -> RedirectResponse:
        response = RedirectResponse(target, status_code=303)
        response.delete_cookie(self.cookie, path=self.prefix, httponly=True, samesite="strict")
        return response


def _same(sent: str, expected: str) -> bool:
    """Constant-time equality of a value from outside and ours, whatever characters it holds
    (``hmac.compare_digest`` raises TypeError on non-ASCII text: a 500, not a refusal)."""
    return hmac.compare_digest(sent.encode("utf-8", "replace"), expected.encode())


def same_origin_problem(request: Request) -> str | None:
    """A cross-site POST is refused: the browser's Origin must be this server (when sent)."""
    origin = request.headers.get("origin")
    if origin is None:
        return None
    expected = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if origin != expected:
        return f"cross-site request refused (Origin {origin!r} is not {expected!r})"
    return None


async def read_form(request: Request) -> dict[str, list[str]] | None:
    """An urlencoded form body (no multipart dependency); None when it is over
    ``FORM_MAX_BYTES`` (or the client left). Read with the one body reader,
    :func:`chfw.shared.bodylimit.read_within`: what passes the limit is never read."""
    declared = declared_length(request.scope["headers"])
    if declared is not None and declared > FORM_MAX_BYTES:
        return None
    try:
        body = await read_within(request.receive, FORM_MAX_BYTES)
    except BodyTooLarge:
        return None
    if body is None:
        return None
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)


def base_url(host: str, port: int, *, tls: bool = False) -> str:
    """The URL an operator on this machine opens (a wildcard interface means localhost)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104 -- compared only
    if ":" in shown:
        shown = f"[{shown}]"
    return f"{'https' if tls else 'http'}://{shown}:{port}"


def announce(
    auth: DashboardAuth, url: str, *, how_to_set: str, stream: TextIO | None = None
) -> None:
    """Tell the operator where the dashboard is, on the terminal (never in the structured log).

    A generated token is shown (as a sign-in link) only when ``stream`` is a
    terminal; otherwise the operator is told how to configure one.
    """
    out = stream if stream is not None else sys.stderr
    page = f"{url.rstrip('/')}{auth.prefix}/"
    if stream is None and json_mode():  # a line of the log: never the token
        text = f"dashboard: {page}" + (
            f" (no token configured: set {how_to_set} to sign in)" if auth.generated else ""
        )
        notice("dashboard", text, url=page)
    elif not auth.generated:
        print(f"dashboard: {page} (sign in with the configured token)", file=out)
    elif out.isatty():
        print(
            f"dashboard: {auth.login_url(url)}\n"
            f"  (a token made for this run; set {how_to_set} to keep one across restarts)",
            file=out,
        )
    else:
        print(
            f"dashboard: {page} -- no token is configured and this is not a terminal, so the "
            f"one made for this run is not shown; set {how_to_set} to sign in",
            file=out,
        )
