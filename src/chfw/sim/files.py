"""Write a synthetic estate in the formats `chfw estate import` reads, and its suppliers as JSON.

The estate CSV/JSON follow docs/estate-format.md (``chfw.dsp.estate_file``): one
record per meter point, a record without ``mpxn`` for a CH with no meter.
Writers stream, so a million-hub estate is never held in memory.

suppliers.json is ``{"service_users": [{"user_id", "name", "roles",
"duis_version"}, ...]}``: what `chfw users add` needs for each supplier.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from functools import cache
from typing import TextIO

from chfw.core.domain import DuisVersion, MeterPoint, UserId
from chfw.dsp.estate_file import COLUMNS
from chfw.exceptions import InvalidValueError
from chfw.sim.estate import SimHub, SimSupplier, SyntheticEstate

Progress = Callable[[int], None]  # called with the number of hubs written since the last call
_PROGRESS_EVERY = 10_000


@cache
def _user(user: UserId | None) -> str:
    # An estate has a handful of suppliers and millions of meter points: format each once.
    return "" if user is None else str(user)


def _point_fields(point: MeterPoint) -> list[str]:
    return [
        point.identifier,
        point.fuel.value,
        _user(point.import_supplier),
        _user(point.export_supplier),
        _user(point.gas_supplier),
    ]


def hub_rows(hub: SimHub) -> list[list[str]]:
    """The CSV rows of one CH, in ``chfw.dsp.estate_file.COLUMNS`` order."""
    head = [str(hub.device_id), hub.csp_region]
    if not hub.meter_points:
        return [[*head, "", "", "", "", ""]]
    return [head + _point_fields(point) for point in hub.meter_points]


def write_estate_csv(estate: SyntheticEstate, out: TextIO, progress: Progress | None = None) -> int:
    """Write the estate as CSV with a header; returns the number of rows written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    rows = 0
    for hubs_done, hub in enumerate(estate, start=1):
        lines = hub_rows(hub)
        writer.writerows(lines)
        rows += len(lines)
        if progress is not None and hubs_done % _PROGRESS_EVERY == 0:
            progress(_PROGRESS_EVERY)
    if progress is not None:
        progress(len(estate) % _PROGRESS_EVERY)
    return rows


def _point_json(point: MeterPoint) -> dict[str, str]:
    fields = {"mpxn": point.identifier, "fuel": point.fuel.value}
    for role, user in (
        ("import_supplier", point.import_supplier),
        ("export_supplier", point.export_supplier),
        ("gas_supplier", point.gas_supplier),
    ):
        if user is not None:
            fields[role] = str(user)
    return fields


def write_estate_json(
    estate: SyntheticEstate, out: TextIO, progress: Progress | None = None
) -> int:
    """Write ``{"hubs": [{device_id, csp_region, meter_points: [...]}, ...]}``, one hub a line.

    Returns the number of hubs written.
    """
    out.write('{"hubs": [')
    written = 0
    for hub in estate:
        element = {
            "device_id": str(hub.device_id),
            "csp_region": hub.csp_region,
            "meter_points": [_point_json(point) for point in hub.meter_points],
        }
        out.write(("\n" if written == 0 else ",\n") + json.dumps(element, separators=(",", ":")))
        written += 1
        if progress is not None and written % _PROGRESS_EVERY == 0:
            progress(_PROGRESS_EVERY)
    out.write("\n]}\n")
    if progress is not None:
        progress(written % _PROGRESS_EVERY)
    return written


def suppliers_document(estate: SyntheticEstate) -> dict[str, object]:
    return {"service_users": [supplier.as_json() for supplier in estate.suppliers]}


def write_suppliers_json(estate: SyntheticEstate, out: TextIO) -> None:
    json.dump(suppliers_document(estate), out, indent=2)
    out.write("\n")


def read_suppliers_json(stream: TextIO) -> list[SimSupplier]:
    """The suppliers of a suppliers.json (``share`` is not stored: each gets 1.0)."""
    try:
        document = json.load(stream)
    except json.JSONDecodeError as exc:
        raise InvalidValueError(f"suppliers JSON is not valid JSON: {exc}") from None
    items = document.get("service_users") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise InvalidValueError('suppliers JSON must be {"service_users": [...]}')
    suppliers = []
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise InvalidValueError("not a JSON object")
            roles = item.get("roles")
            if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
                raise InvalidValueError("roles must be a list of role codes, e.g. ['IS', 'GS']")
            suppliers.append(
                SimSupplier(
                    user_id=UserId.parse(_text(item.get("user_id"), "user_id")),
                    name=str(item.get("name") or ""),
                    roles=frozenset(roles),
                    duis_version=_duis(item.get("duis_version")),
                )
            )
        except InvalidValueError as exc:
            raise InvalidValueError(f"suppliers JSON service_users[{index}]: {exc}") from None
    return suppliers


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidValueError(f"{name} must be text, got {json.dumps(value)}")
    return value


def _duis(value: object) -> DuisVersion:
    return DuisVersion.parse(_text(value, "duis_version"))
