"""`chfw inventory`: what the Smart Metering Inventory holds for a CH."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from chfw.cli._context import fail, run_guarded
from chfw.cli._output import console
from chfw.cli._store import transaction
from chfw.core.domain import DeviceId, FirmwareVersion, MeterPoint
from chfw.dsp.store import estate, inventory
from chfw.dsp.store.inventory import HistoryEntry

_SUPPLIER_KEYS = ("import_supplier", "export_supplier", "gas_supplier")

app = typer.Typer(help="The inventory: active firmware and history per CH.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Keep `show` a subcommand even while it is the group's only one."""


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _version(version: FirmwareVersion | None) -> str | None:
    return None if version is None else version.hex


def _point(point: MeterPoint) -> dict[str, Any]:
    def user(value: object) -> str | None:
        return None if value is None else str(value)

    return {
        "mpxn": point.identifier,
        "fuel": point.fuel.value,
        "import_supplier": user(point.import_supplier),
        "export_supplier": user(point.export_supplier),
        "gas_supplier": user(point.gas_supplier),
    }


def _entry(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "recorded_at": _time(entry.recorded_at),
        "occurred_at": _time(entry.occurred_at),
        "originator_counter": entry.originator_counter,
        "event": entry.event.value,
        "source": entry.source.value,
        "result": entry.result.value,
        "decision": entry.decision.value,
        "reported_version": _version(entry.reported_version),
        "version_before": _version(entry.version_before),
        "version_after": _version(entry.version_after),
        "csp": entry.csp,
        "alerts_created": entry.alerts_created,
        "note": entry.note,
    }


@app.command()
def show(
    ch_id: Annotated[str, typer.Argument(help="The CH's Device ID, e.g. 00-1D-A1-00-00-00-00-42")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """A CH's active firmware, when it changed, its meter points and its full firmware history."""
    with run_guarded():
        device = DeviceId.parse(ch_id)
    with transaction() as conn:
        hub = estate.get_hub(conn, device)
        points = estate.meter_points_for(conn, device) if hub else []
        history = inventory.history_for(conn, device) if hub else []
    if hub is None:
        raise fail(
            f"Communications Hub {device} is not in the estate (import it with "
            "`chfw estate import`)"
        )
    if as_json:
        body = {
            "device_id": str(hub.device_id),
            "csp_region": hub.csp_region.value,
            "status": hub.status,
            "active_firmware": _version(hub.active_firmware),
            "firmware_changed_at": _time(hub.firmware_changed_at),
            "meter_points": [_point(point) for point in points],
            "history": [_entry(entry) for entry in history],
        }
        typer.echo(json.dumps(body, indent=2))
        return
    out = console()
    out.print(
        f"Communications Hub {hub.device_id} (CSP region {hub.csp_region.value}, {hub.status})"
    )
    if hub.active_firmware is None:
        out.print("Active firmware: never reported")
    else:
        out.print(
            f"Active firmware: {hub.active_firmware.hex} since {_time(hub.firmware_changed_at)}"
        )
    if points:
        # IDs fold rather than being cut short: operators copy them.
        meters = Table(title="Meter points")
        for header in ("MPxN", "Fuel", "Import Supplier", "Export Supplier", "Gas Supplier"):
            meters.add_column(header, overflow="fold")
        for point in points:
            row = _point(point)
            suppliers = (row[key] or "-" for key in _SUPPLIER_KEYS)
            meters.add_row(row["mpxn"], row["fuel"], *suppliers)
        out.print(meters)
    else:
        out.print("Meter points: none")
    if not history:
        out.print("Firmware history: none")
        return
    table = Table(
        "Recorded (UTC)",
        "Counter",
        "Event",
        "Source",
        "Result",
        "Decision",
        "Before",
        "After",
        "Alerts",
        title=f"Firmware history ({len(history)})",
    )
    for entry in history:
        table.add_row(
            entry.recorded_at.strftime("%Y-%m-%d %H:%M:%S"),
            str(entry.originator_counter),
            entry.event.value,
            entry.source.value,
            entry.result.value,
            entry.decision.value,
            _version(entry.version_before) or "-",
            _version(entry.version_after) or "-",
            str(entry.alerts_created),
        )
    out.print(table)
