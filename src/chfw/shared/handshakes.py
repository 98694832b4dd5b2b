"""Failed TLS handshakes leave a trace: counted, and logged at most once a minute.

asyncio (and uvloop) drop a server-side handshake failure silently -- an
``ssl.SSLError`` is an ``OSError``, logged only in debug mode -- so a DSP
that presents no client certificate under mutual TLS, or does not trust the
server's, got nowhere and the server never said so. :class:`HandshakeFailures`
is given to the server's ``ssl.SSLContext`` as its ``sslobject_class``
(:meth:`HandshakeFailures.install`, the standard library's documented hook for
a custom ``SSLObject``): every handshake that raises is counted through
``on_failure`` (a metrics counter) and logged with the reason OpenSSL gives and
what to do about it, the first at once and then one line per ``every``
seconds with the number of failures since the last line.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable

import structlog

log = structlog.get_logger("chfw.shared.tls")

HINTS = {
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": (
        "the client presented no certificate, but mutual TLS (--tls-client-ca) requires one: "
        "set the DSP up with its client certificate for this endpoint"
    ),
    "CERTIFICATE_VERIFY_FAILED": (
        "the client's certificate is not issued by a CA in --tls-client-ca (or has expired)"
    ),
    "TLSV1_ALERT_UNKNOWN_CA": (
        "the client does not trust our certificate: give the DSP the CA that issued --tls-cert"
    ),
    "SSLV3_ALERT_BAD_CERTIFICATE": (
        "the client refused our certificate (expired, or not issued for the name it used)"
    ),
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "the client says our certificate has expired: renew it",
    "HTTP_REQUEST": "a client spoke plain HTTP to this HTTPS port: its URL must be https://",
    "WRONG_VERSION_NUMBER": "the client does not speak TLS (plain HTTP?) or an old version",
    "UNSUPPORTED_PROTOCOL": "the client offers only TLS versions this server refuses",
    "NO_SHARED_CIPHER": "the client and this server have no cipher suite in common",
}
_OTHER = "see the reason; the client could not establish TLS with this server"


def hint(reason: str) -> str:
    """What to do about a handshake failure, from OpenSSL's reason code."""
    return HINTS.get(reason, _OTHER)


def reason_of(exc: ssl.SSLError) -> str:
    """OpenSSL's reason code (e.g. ``PEER_DID_NOT_RETURN_A_CERTIFICATE``), else the class."""
    return str(exc.reason or type(exc).__name__)


class HandshakeFailures:
    """Counts and logs (rate-limited) the TLS handshakes a server's clients failed."""

    def __init__(
        self,
        on_failure: Callable[[str], None] | None = None,
        *,
        every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.on_failure = on_failure
        self.every = every
        self._clock = clock
        self._lock = threading.Lock()
        self._next_line = -float("inf")
        self._unlogged = 0
        self.total = 0

    def failed(self, exc: ssl.SSLError) -> None:
        """One handshake failed: count it, and log it unless a line went out recently."""
        reason = reason_of(exc)
        if self.on_failure is not None:
            self.on_failure(reason)
        with self._lock:
            self.total += 1
            self._unlogged += 1
            now = self._clock()
            if now < self._next_line:
                return
            failures, self._unlogged = self._unlogged, 0
            self._next_line = now + self.every
        log.warning(
            "tls_handshake_failed",
            reason=reason,
            hint=hint(reason),
            failures_since_last_line=failures,
            next_line_in_seconds_at_most=self.every,
        )

    def install(self, context: ssl.SSLContext) -> None:
        """Watch every server-side handshake made with ``context``."""
        context.sslobject_class = type("ObservedSSLObject", (ObservedSSLObject,), {"watch": self})


class ObservedSSLObject(ssl.SSLObject):
    """An ``SSLObject`` that reports a failed handshake to its class's ``watch``."""

    watch: HandshakeFailures

    def do_handshake(self) -> None:
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise  # not a failure: the handshake needs more bytes
        except ssl.SSLError as exc:
            self.watch.failed(exc)
            raise
