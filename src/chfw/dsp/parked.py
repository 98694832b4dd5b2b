"""Build parked alerts: those the intake could not build, once their setting is fixed.

An alert is parked when its recipient's DUIS version has no usable schema at
the time the intake builds it (an official-schema folder missing or broken,
or a schema refusing the document): the CS06 outcome is recorded, the other
recipients' alerts go out, and this one waits in the outbox as a ``parked``
row (visible in ``chfw outbox list --state parked``, the dashboard and
``chfw_outbox_alerts{state="parked"}``). ``chfw outbox retry`` calls
:func:`build_parked`: each row is rendered again for its user's *current*
DUIS version (so fixing it with ``chfw users set-duis`` works too; the alert
code follows the version), keeping its ResponseID, validated, signed and
made pending, due now. A row that still cannot be built stays parked with the
new reason.

A row whose version the CH no longer runs (a newer activation came after it)
is **superseded**: it is not built -- sent now, it would tell the supplier of
an older version after the newer one -- and stays parked, its reason saying
so (``ParkedBuild.superseded``); the firmware history keeps the activation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Connection, Engine

from chfw.core.domain import (
    DeviceId,
    DuisVersion,
    FirmwareVersion,
    PlannedAlert,
    UserId,
    alert_kind_for,
)
from chfw.core.duis import ResponseId
from chfw.dsp.alerts import AlertBuilder, AlertRequest, BuiltAlert, ParkedAlert
from chfw.dsp.store import audit, estate, outbox, users
from chfw.exceptions import ChfwError


@dataclass(frozen=True)
class ParkedBuild:
    """What :func:`build_parked` did: ids built (now pending), ids still parked and why."""

    built: tuple[int, ...] = ()
    still_parked: dict[int, str] = field(default_factory=dict)
    superseded: dict[int, str] = field(default_factory=dict)  # not built: the CH moved on


def build_parked(
    engine: Engine, builder: AlertBuilder, ids: Sequence[int], actor: str, now: datetime
) -> ParkedBuild:
    """Build the parked rows among ``ids`` and make them pending (audited under ``actor``).

    Ids of rows that are not parked are ignored (the caller reports them). One
    transaction: a row another operator built meanwhile is left alone.
    """
    with engine.begin() as conn:
        rows = outbox.parked_rows(conn, ids)
        if not rows:
            return ParkedBuild()
        versions = users.duis_versions_for(
            conn, {UserId(bytes.fromhex(row.user_id)) for row in rows}
        )
        requests: list[tuple[outbox.ParkedRow, AlertRequest]] = []
        reasons: dict[int, str] = {}
        superseded = _superseded(conn, rows)
        for row in rows:
            if row.id in superseded:
                continue
            try:
                requests.append((row, _request(row, versions)))
            except ChfwError as exc:
                reasons[row.id] = str(exc)
        results = builder.build_many([request for _, request in requests], now)
        done: list[outbox.Unparked] = []
        for (row, _), result in zip(requests, results, strict=True):
            if isinstance(result, BuiltAlert):
                done.append(
                    outbox.Unparked(
                        row.id,
                        result.planned.kind.value,
                        str(result.planned.duis_version),
                        result.document,
                    )
                )
            else:
                reasons[row.id] = str(result.reason if isinstance(result, ParkedAlert) else result)
        built = outbox.unpark(conn, done, now)
        outbox.still_parked(conn, {**reasons, **superseded})
        if built:
            audit.record(
                conn,
                actor,
                "outbox.build-parked",
                {"ids": built[:1000], "count": len(built)},
                at=now,
            )
    return ParkedBuild(tuple(built), reasons, superseded)


def _superseded(conn: Connection, rows: Sequence[outbox.ParkedRow]) -> dict[int, str]:
    """The rows whose firmware version their CH no longer runs, with the reason."""
    hubs = estate.lock_hubs(conn, {DeviceId(bytes.fromhex(row.device_id)) for row in rows})
    found: dict[int, str] = {}
    for row in rows:
        hub = hubs.get(DeviceId(bytes.fromhex(row.device_id)))
        active = hub.active_firmware.hex if hub and hub.active_firmware else None
        if active != row.firmware_version:
            found[row.id] = (
                f"superseded: {row.device_id} now runs {active or 'no known version'}, not "
                f"{row.firmware_version}; sent now, this alert would tell the supplier of an "
                "older version after a newer one -- not sent (the history keeps it)"
            )
    return found


def _request(row: outbox.ParkedRow, versions: dict[UserId, DuisVersion]) -> AlertRequest:
    """The row's alert for its user's current DUIS version (the stored one if the user is
    gone)."""
    user = UserId(bytes.fromhex(row.user_id))
    version = versions.get(user) or DuisVersion.parse(row.duis_version)
    if row.firmware_version is None:
        raise ChfwError(f"parked row {row.id} has no firmware version to build its alert from")
    return AlertRequest(
        PlannedAlert(user, alert_kind_for(version), version),
        DeviceId(bytes.fromhex(row.device_id)),
        FirmwareVersion.parse(row.firmware_version),
        ResponseId.parse(row.response_id),
    )
