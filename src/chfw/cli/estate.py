"""`chfw estate`: load the estate (CHs, regions, meter points, suppliers) and look at it."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from chfw.cli._context import fail, run_guarded
from chfw.cli._output import console
from chfw.cli._store import transaction
from chfw.core.domain import UserId
from chfw.dsp import estate_file
from chfw.dsp.estate_file import EstateRecord, RejectedRow
from chfw.dsp.store import audit, estate, users

app = typer.Typer(
    help="The estate: CHs, CSP regions, meter points, suppliers.", no_args_is_help=True
)


#: `chfw estate import`'s exit code when some rows were rejected (the others were imported).
EXIT_SOME_REJECTED = 3


def _batches(
    items: Iterator[EstateRecord | RejectedRow],
    size: int,
    rejected: list[RejectedRow],
    keep: int,
    counts: dict[str, int],
    suppliers: set[UserId],
) -> Iterator[list[EstateRecord]]:
    batch: list[EstateRecord] = []
    for item in items:
        if isinstance(item, RejectedRow):
            counts["rejected"] += 1
            if len(rejected) < keep:
                rejected.append(item)
            continue
        counts["accepted"] += 1
        point = item.meter_point
        if point is not None:
            named = (point.import_supplier, point.export_supplier, point.gas_supplier)
            suppliers.update(user for user in named if user is not None)
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="Estate file (.csv or .json)", dir_okay=False)],
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv or json (default: from the extension)")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Records written per transaction", min=1)] = 5000,
    show_rejected: Annotated[int, typer.Option(help="Rejected rows to list", min=0)] = 20,
    progress: Annotated[bool, typer.Option(help="Show a progress bar")] = True,
) -> None:
    """Import an estate file, validating row by row; re-importing updates (later rows win).

    Each batch is its own transaction, so a failure part-way keeps the batches
    already written; import the file again once it is fixed. Then the outcomes
    parked for CHs now in the estate are processed, in the order they came.

    Exit codes: 0 every row imported; 3 some rows rejected (the rest imported; the
    rejected ones are listed); 1 nothing imported or an error. Suppliers named in the
    file that are not registered Service Users are warned about on stderr (their CHs'
    alerts cannot be addressed until `chfw users add`).
    """
    with run_guarded():
        kind = estate_file.format_for(file.name, fmt)
    try:
        raw: BinaryIO = file.open("rb")
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror or exc}") from None
    counts = {"accepted": 0, "rejected": 0, "meter_points": 0}
    rejected: list[RejectedRow] = []
    suppliers: set[UserId] = set()
    with ExitStack() as stack:
        stack.enter_context(raw)
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        bar = stack.enter_context(
            Progress(
                TextColumn("importing {task.fields[name]}"),
                BarColumn(),
                DownloadColumn(),
                TimeRemainingColumn(),
                disable=not progress,
            )
        )
        task = bar.add_task("import", total=file.stat().st_size, name=file.name)
        try:
            with run_guarded():
                items = estate_file.parse(text, kind)
                batches = _batches(items, batch_size, rejected, show_rejected, counts, suppliers)
                for batch in batches:
                    with transaction() as conn:
                        written = estate.import_records(conn, batch)
                    counts["meter_points"] += written.meter_points
                    bar.update(task, completed=raw.tell())
        except UnicodeDecodeError as exc:
            raise fail(f"{file} is not UTF-8 text ({exc.reason} near byte {raw.tell()})") from None
        bar.update(task, completed=file.stat().st_size)
    with transaction() as conn:
        audit.record(
            conn,
            audit.current_actor(),
            "estate.import",
            {"file": str(file), "accepted": counts["accepted"], "rejected": counts["rejected"]},
        )
        hubs, points = estate.count_hubs(conn), estate.count_meter_points(conn)
        unknown = sorted(set(suppliers) - set(users.get_users(conn, suppliers)), key=str)
    typer.echo(
        f"{file.name}: {counts['accepted']} record(s) imported, {counts['rejected']} rejected; "
        f"the estate now has {hubs} CH(s) and {points} meter point(s)"
    )
    _list_rejected(rejected, counts["rejected"])
    if counts["accepted"]:
        from chfw.cli.parked import process_parked

        process_parked()  # outcomes that came before their CH: processed now, in order
    _warn_unknown(unknown)
    _exit_for(file, counts)


def _exit_for(file: Path, counts: dict[str, int]) -> None:
    """Exit 1 when nothing was imported, 3 when some rows were rejected (documented)."""
    if counts["accepted"] == 0:
        what = "every row was rejected" if counts["rejected"] else "the file has no records"
        raise fail(f"nothing imported from {file}: {what}")
    if counts["rejected"]:
        typer.echo(
            f"warning: {counts['rejected']} row(s) of {file.name} rejected (exit "
            f"{EXIT_SOME_REJECTED}); fix them and import the file again",
            err=True,
        )
        raise typer.Exit(EXIT_SOME_REJECTED)


def _list_rejected(rejected: list[RejectedRow], total: int) -> None:
    if not rejected:
        return
    more = total - len(rejected)
    typer.echo("rejected rows:" if not more else f"first {len(rejected)} rejected rows:")
    for row in rejected:
        typer.echo(f"  {row.where}: {row.reason}")
    if more:
        typer.echo(f"  ... and {more} more")


def _warn_unknown(unknown: list[UserId]) -> None:
    """Suppliers the estate names that are not Service Users: nobody to send their alerts to."""
    if not unknown:
        return
    shown = ", ".join(str(user) for user in unknown[:20])
    more = f" and {len(unknown) - 20} more" if len(unknown) > 20 else ""
    typer.echo(
        f"warning: {len(unknown)} supplier(s) named in the estate are not Service Users: "
        f"{shown}{more}; their alerts cannot be sent until they are added (`chfw users add`)",
        err=True,
    )


def _distribution(counts: dict[str | None, int]) -> dict[str, int]:
    ordered = sorted(counts.items(), key=lambda item: (item[0] is None, item[0] or ""))
    return {version or "never reported": count for version, count in ordered}


@app.command()
def stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """CHs per region, meter points, and CHs per active firmware version."""
    with transaction() as conn:
        by_region = estate.hubs_by_region(conn)
        summary: dict[str, Any] = {
            "hubs": estate.count_hubs(conn),
            "meter_points": estate.count_meter_points(conn),
            "hubs_by_region": {
                region.value: n
                for region, n in sorted(by_region.items(), key=lambda item: item[0].value)
            },
            "firmware_distribution": _distribution(estate.firmware_distribution(conn)),
            "firmware_by_region": {
                region.value: _distribution(counts)
                for region, counts in sorted(
                    estate.firmware_distribution_by_region(conn).items(),
                    key=lambda item: item[0].value,
                )
            },
        }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    out = console()
    out.print(f"CHs: {summary['hubs']}   meter points: {summary['meter_points']}")
    for region, n in summary["hubs_by_region"].items():
        out.print(f"  {region}: {n} CH(s)")
    out.print("Active firmware (CHs per version):")
    for version, n in summary["firmware_distribution"].items():
        out.print(f"  {version}: {n}")
