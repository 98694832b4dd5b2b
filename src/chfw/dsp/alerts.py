"""Turn a planned alert into a signed, schema-valid DUIS document (pure: keys in, bytes out)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from chfw.core.domain import AlertKind, DeviceId, FirmwareVersion, PlannedAlert, UserId
from chfw.core.duis import ResponseId, SchemaSet, render_n64, render_n999
from chfw.core.signing import Signer, sign_canonical
from chfw.exceptions import ConfigError, InvalidValueError, SchemaValidationError


@dataclass(frozen=True, slots=True)
class BuiltAlert:
    """A document ready for the outbox."""

    planned: PlannedAlert
    response_id: ResponseId
    document: bytes


@dataclass(frozen=True, slots=True)
class ParkedAlert:
    """An alert rendered but not built: its schema could not be had or did not accept it.

    ``reason`` is a ConfigError (no usable schema folder for the recipient's DUIS
    version: a setting to fix) or a SchemaValidationError (this version's
    document is refused). Either concerns this recipient's version only, so the
    alert is parked -- kept, with its ResponseID, to be built again once fixed
    (``chfw outbox retry``, docs/configuration.md) -- instead of failing the
    other recipients' alerts.
    """

    planned: PlannedAlert
    response_id: ResponseId
    reason: ConfigError | SchemaValidationError


@dataclass(frozen=True, slots=True)
class AlertRequest:
    """One alert to build: who gets what, about which CH and version.

    ``response_id`` is given when a parked alert is built again (it keeps the
    ResponseID it was parked with); otherwise a new counter is taken.
    """

    planned: PlannedAlert
    device_id: DeviceId
    firmware_version: FirmwareVersion
    response_id: ResponseId | None = None


def counters_needed(requests: Iterable[AlertRequest]) -> int:
    """How many fresh ResponseID counters building ``requests`` takes."""
    return sum(1 for request in requests if request.response_id is None)


@dataclass(frozen=True)
class AlertBuilder:
    """Renders, validates (before signing, always) and signs alert documents.

    Pure: it allocates nothing. The caller takes ResponseID counters that never
    repeat (:class:`chfw.dsp.store.counters.CounterBlock` in the service, a plain
    range in tests) and passes them to :meth:`build_many`.
    """

    dcc_user: UserId
    signer: Signer | None
    schemas: SchemaSet

    def build(
        self,
        planned: PlannedAlert,
        device_id: DeviceId,
        firmware_version: FirmwareVersion,
        at: datetime,
        counter: int,
    ) -> BuiltAlert:
        """One alert with ResponseID ``counter``; raises what :meth:`build_many` would
        return for it (a parked alert's reason)."""
        request = AlertRequest(planned, device_id, firmware_version)
        (built,) = self.build_many([request], at, [counter])
        if isinstance(built, BuiltAlert):
            return built
        raise built.reason if isinstance(built, ParkedAlert) else built

    def build_many(
        self, requests: Sequence[AlertRequest], at: datetime, counters: Iterable[int] = ()
    ) -> list[BuiltAlert | ParkedAlert | InvalidValueError]:
        """Build ``requests`` in order: each one's alert, or why it could not be rendered
        (InvalidValueError: a version longer than DUIS carries, a counter out of range),
        or, rendered, why it could not be validated (ParkedAlert).

        ``counters`` gives the ResponseID counters, used in request order by the
        requests that carry no ResponseID (:func:`counters_needed` of them; fewer
        is a caller's error, ValueError). A schema that cannot be loaded for a DUIS
        version (ConfigError: its official folder is missing or broken) or that refuses a document
        (SchemaValidationError) parks that version's alerts only: one recipient's
        setting must not stop the others' alerts. A signing failure is the key's,
        not one alert's, so it is raised for the whole call.

        The work goes in three passes (render all, validate all, sign all) rather
        than alert by alert: libxml2's schema and OpenSSL's P-256 tables then stay
        in the CPU cache through a pass instead of evicting each other at every
        alert. In a 500-message intake batch that cut the intake's CPU per alert
        by ~15 % (docs/performance.md, seventh session).
        """
        built: list[BuiltAlert | ParkedAlert | InvalidValueError] = []
        fresh = iter(counters)
        for request in requests:
            response_id = request.response_id
            try:
                if response_id is None:
                    counter = next(fresh, None)
                    if counter is None:
                        raise ValueError(
                            f"{counters_needed(requests)} counters needed, fewer given"
                        )
                    response_id = ResponseId(self.dcc_user, request.device_id, counter)
                built.append(self._render(request, response_id, at))
            except InvalidValueError as exc:
                built.append(exc)
        schemas = self.schemas
        for i, alert in enumerate(built):
            if isinstance(alert, BuiltAlert):
                try:
                    schemas.validate(alert.document, alert.planned.duis_version)
                except (ConfigError, SchemaValidationError) as exc:
                    built[i] = ParkedAlert(alert.planned, alert.response_id, exc)
        signer = self.signer
        if signer is None:
            return built
        return [
            BuiltAlert(a.planned, a.response_id, sign_canonical(a.document, signer))
            if isinstance(a, BuiltAlert)
            else a
            for a in built
        ]

    @staticmethod
    def _render(request: AlertRequest, response_id: ResponseId, at: datetime) -> BuiltAlert:
        """The unsigned, not yet validated document (only ever seen inside this class)."""
        planned, device_id = request.planned, request.device_id
        if planned.kind is AlertKind.N64:
            document = render_n64(
                response_id=response_id,
                device_id=device_id,
                firmware_version=request.firmware_version,
                duis_version=planned.duis_version,
                at=at,
            )
        else:
            document = render_n999(
                response_id=response_id,
                device_id=device_id,
                duis_version=planned.duis_version,
                at=at,
            )
        return BuiltAlert(planned, response_id, document)
