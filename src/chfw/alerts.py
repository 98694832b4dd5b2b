"""Turn a planned alert into a signed, schema-valid DUIS document (pure: keys in, bytes out)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from chfw.domain import AlertKind, DeviceId, FirmwareVersion, PlannedAlert, UserId
from chfw.duis import ResponseId, SchemaSet, render_n64, render_n999
from chfw.signing import Signer, sign_canonical


@dataclass(frozen=True, slots=True)
class BuiltAlert:
    """A document ready for the outbox."""

    planned: PlannedAlert
    response_id: ResponseId
    document: bytes


@dataclass(frozen=True)
class AlertBuilder:
    """Renders, validates (before signing, always) and signs alert documents.

    ``next_counter`` supplies ResponseID counters that never repeat (a
    database-backed block allocator in the service, a plain counter in tests).
    """

    dcc_user: UserId
    signer: Signer | None
    schemas: SchemaSet
    next_counter: Callable[[], int]

    def build(
        self,
        planned: PlannedAlert,
        device_id: DeviceId,
        firmware_version: FirmwareVersion,
        at: datetime,
    ) -> BuiltAlert:
        response_id = ResponseId(self.dcc_user, device_id, self.next_counter())
        if planned.kind is AlertKind.N64:
            document = render_n64(
                response_id=response_id,
                device_id=device_id,
                firmware_version=firmware_version,
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
        self.schemas.validate(document, planned.duis_version)
        if self.signer is not None:
            document = sign_canonical(document, self.signer)
        return BuiltAlert(planned, response_id, document)
