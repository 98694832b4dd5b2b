"""What happens to one POSTed alert, without HTTP: check it, record it, or record why not.

Order (each failure is answered 4xx, logged with its reason, and leaves only
a ``bo_rejections`` row): size (413) -> safe parse and signature against the
trust store (:func:`chfw.core.signing.verify_document`: no DTD, no entities, no
network, bounded depth and size) -> DUIS version of the endpoint -> schema
(:class:`~chfw.supplier.validation.AlertSchemas`) -> shape of the alert ->
record (204). Only a verified document can be a duplicate.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache

import structlog
from cryptography import x509
from sqlalchemy.engine import Connection, Engine

from chfw.core.clock import utc_now
from chfw.core.domain import DeviceId, DuisVersion
from chfw.core.signing import TrustStore, VerifiedDocument, verify_document
from chfw.core.xmlsafe import DEFAULT_MAX_BYTES as PARSER_MAX_BYTES
from chfw.exceptions import ChfwError, ConfigError, InvalidValueError
from chfw.supplier import recording
from chfw.supplier.facts import AlertFacts, read_alert, response_id_of
from chfw.supplier.recording import NewAlert, NewRejection, RecordResult
from chfw.supplier.validation import AlertSchemas

log = structlog.get_logger("chfw.supplier")

DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_CHECK_THREADS = 2
DEFAULT_CHECK_SECONDS = 10.0


@dataclass(frozen=True)
class ReceiverConfig:
    """One alert endpoint: whom it trusts, which DUIS version it speaks, how much it reads."""

    trust: TrustStore
    schemas: AlertSchemas = field(default_factory=AlertSchemas.bundled)
    duis_version: DuisVersion | None = None  # None: each document's own schemaVersion
    max_bytes: int = DEFAULT_MAX_BYTES
    path: str = "/"
    # Served: checks run on this many threads, each answered 503 after this long.
    check_threads: int = DEFAULT_CHECK_THREADS
    check_seconds: float = DEFAULT_CHECK_SECONDS
    # Called after an N999-for-N64 is recorded: the version must be read from the DSP.
    on_lookup_needed: Callable[[DeviceId], None] | None = field(default=None, compare=False)
    clock: Callable[[], datetime] = field(default=utc_now, compare=False)

    def __post_init__(self) -> None:
        if len(self.trust) == 0:
            raise ConfigError(
                "the receiver's trust store is empty: give the DSP's signing certificate "
                "(--trust CERT.pem), or every alert would be refused"
            )
        if not 0 < self.max_bytes <= PARSER_MAX_BYTES:
            raise ConfigError(
                f"max_bytes {self.max_bytes} must be between 1 and {PARSER_MAX_BYTES}: the safe "
                "XML parser refuses larger documents anyway"
            )
        if not self.path.startswith("/"):
            raise ConfigError(f"the alert path {self.path!r} must start with '/'")
        if not 1 <= self.check_threads <= 64:
            raise ConfigError(f"check_threads {self.check_threads} must be between 1 and 64")
        if not 0 < self.check_seconds <= 300:
            raise ConfigError(
                f"check_seconds {self.check_seconds} must be more than 0 and at most 300"
            )


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to one POST: 204, or 4xx with a reason."""

    status: int
    reason: str | None = None
    facts: AlertFacts | None = None
    duplicate: bool = False

    @property
    def accepted(self) -> bool:
        return self.status == 204


@dataclass(frozen=True, slots=True)
class Accepted:
    """A verified, valid alert, ready to be recorded."""

    facts: AlertFacts
    document: bytes
    signer: str  # subject of the trusted certificate
    digest: str  # hex SHA-256 of the signed content
    at: datetime
    remote: str | None


@dataclass(frozen=True, slots=True)
class Refused:
    """A POST refused (4xx, or 503 when its check overran); only this note of it is recorded."""

    status: int
    reason: str
    at: datetime
    remote: str | None
    size: int
    digest: str | None = None
    response_id: str | None = None  # only once the signature verified


Checked = Accepted | Refused


REASON_MAX = 500
"""Refusal reasons are cut to this many characters: they quote what the sender wrote."""


class _Rejected(Exception):
    def __init__(self, reason: str, response_id: str | None = None) -> None:
        if len(reason) > REASON_MAX:
            reason = reason[: REASON_MAX - 3] + "..."
        super().__init__(reason)
        self.reason = reason
        self.response_id = response_id


class AlertReceiver:
    """Checks and records alerts for one endpoint; thread-safe.

    :meth:`receive` does everything for one body in its own transaction. The
    HTTP app splits it: :meth:`check` (CPU only), :meth:`record` (inside a
    transaction shared with other alerts: group commit), :meth:`finish` (after
    the commit: log, N999 hook, the answer).
    """

    def __init__(self, config: ReceiverConfig, engine: Engine) -> None:
        self.config = config
        self.engine = engine

    def receive(self, body: bytes, remote: str | None = None) -> Outcome:
        """Handle one complete body: check it, record it (or its refusal), answer."""
        checked = self.check(body, remote)
        with self.engine.begin() as conn:
            result = self.record(conn, checked)
        return self.finish(checked, result)

    def check(self, body: bytes, remote: str | None = None) -> Checked:
        """Size, safe parse, signature, DUIS version, schema, shape: no database access."""
        now = self.config.clock()
        if len(body) > self.config.max_bytes:
            return self.too_large(len(body), remote)
        try:
            verified, facts = self._check(body, now)
        except _Rejected as rejected:
            return Refused(
                400,
                rejected.reason,
                now,
                remote,
                size=len(body),
                digest=hashlib.sha256(body).hexdigest(),
                response_id=rejected.response_id,
            )
        return Accepted(
            facts=facts,
            document=body,
            signer=_subject(verified),
            digest=verified.digest.hex(),
            at=now,
            remote=remote,
        )

    def too_large(self, size: int, remote: str | None = None) -> Refused:
        """Refuse a body over the limit; ``size`` is what was read before giving up."""
        reason = f"body exceeds {self.config.max_bytes} bytes; DUIS alerts are a few kilobytes"
        return Refused(413, reason, self.config.clock(), remote, size=size)

    @staticmethod
    def record(conn: Connection, checked: Checked) -> RecordResult | None:
        """Write the alert (or the refusal) in the caller's transaction."""
        (result,) = AlertReceiver.record_many(conn, [checked])
        return result

    @staticmethod
    def record_many(conn: Connection, batch: Sequence[Checked]) -> list[RecordResult | None]:
        """Write alerts and refusals in the caller's transaction, a few statements in all;
        one result per item (None for a refusal), in order."""
        alerts = [
            NewAlert(c.facts, c.document, c.signer, c.digest, c.at)
            for c in batch
            if isinstance(c, Accepted)
        ]
        recorded = iter(recording.record_alerts(conn, alerts))
        recording.record_rejections(
            conn,
            [
                NewRejection(c.at, c.status, c.reason, c.remote, c.size, c.digest, c.response_id)
                for c in batch
                if isinstance(c, Refused)
            ],
        )
        return [next(recorded) if isinstance(c, Accepted) else None for c in batch]

    def finish(self, checked: Checked, result: RecordResult | None) -> Outcome:
        """After the commit: log, ask for an N999 lookup, and say what to answer."""
        if isinstance(checked, Refused):
            log.warning(
                "alert_rejected",
                status=checked.status,
                reason=checked.reason,
                remote=checked.remote,
                size=checked.size,
                response_id=checked.response_id,
            )
            return Outcome(checked.status, reason=checked.reason)
        assert result is not None
        facts = checked.facts
        if log.is_enabled_for(logging.DEBUG):  # one per alert, thousands a second in a wave
            log.debug(
                "alert_received",
                response_id=facts.response_id,
                alert_code=facts.alert_code,
                device_id=str(facts.device_id) if facts.device_id else None,
                firmware_version=facts.firmware_version,
                duplicate=result.duplicate,
                applied=result.applied,
                remote=checked.remote,
            )
        if result.duplicate and not result.same_content:
            log.warning(
                "alert_replayed_with_other_content",
                response_id=facts.response_id,
                device_id=str(facts.device_id) if facts.device_id else None,
                hint="the DSP reused a ResponseID for another signed document; the first is kept",
            )
        if result.lookup_needed and facts.device_id and self.config.on_lookup_needed:
            self.config.on_lookup_needed(facts.device_id)
        return Outcome(204, facts=facts, duplicate=result.duplicate)

    def _check(self, body: bytes, now: datetime) -> tuple[VerifiedDocument, AlertFacts]:
        try:
            verified = verify_document(body, self.config.trust, at=now)
        except ChfwError as exc:  # its messages say what was wrong: unreadable, unsigned...
            raise _Rejected(str(exc)) from None
        # From here the document is the DSP's: its ResponseID can go in the log.
        response_id = response_id_of(verified.root)
        try:
            version = self._version_of(verified.root.get("schemaVersion"))
            self.config.schemas.validate(verified.root, version)
            facts = read_alert(verified.root, str(version))
        except ChfwError as exc:
            raise _Rejected(str(exc), response_id) from None
        return verified, facts

    def _version_of(self, declared: str | None) -> DuisVersion:
        expected = self.config.duis_version
        if expected is None:
            try:
                return DuisVersion.parse(declared or "")
            except InvalidValueError as exc:
                raise InvalidValueError(f"schemaVersion: {exc}") from None
        if not _same_decimal(declared, str(expected)):
            raise InvalidValueError(
                f"schemaVersion {declared!r} is not this endpoint's DUIS version {expected}"
            )
        return expected


@lru_cache(maxsize=16)
def _subject_text(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string()


def _subject(verified: VerifiedDocument) -> str:
    """The signer's subject (cached: a receiver trusts one or two certificates)."""
    return _subject_text(verified.certificate)


@lru_cache(maxsize=64)
def _same_decimal(declared: str | None, expected: str) -> bool:
    """xs:decimal equality: ``5.10`` and ``05.1`` are DUIS 5.1 too."""
    if declared is None:
        return False
    try:
        return Decimal(declared.strip()) == Decimal(expected)
    except InvalidOperation:
        return False
