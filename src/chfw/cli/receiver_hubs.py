"""`chfw receiver hubs import FILE`: the supplier's own estate, so hubs without an alert count."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chfw.cli._backoffice import DatabaseOption, backoffice_transaction
from chfw.cli._context import fail
from chfw.cli.pilot import audit, read_cohort_file, report_rejects
from chfw.core.clock import utc_now

app = typer.Typer(
    help="The supplier's own estate: the CHs it is Responsible Supplier of.",
    no_args_is_help=True,
)


@app.command("import")
def import_(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV with a device_id column and an optional label column, or one Device ID "
            "per line",
            dir_okay=False,
        ),
    ],
    database: DatabaseOption = None,
) -> None:
    """Add CHs to the estate (labels given replace those recorded; nothing is removed).

    `chfw receiver ready` then counts an imported CH that never sent an alert as
    'unknown', instead of not at all.
    """
    from chfw.supplier import estate

    members = read_cohort_file(file, "estate file")
    report_rejects(file, members)
    if not members.device_ids:
        raise fail(f"estate file {file} names no valid Device ID; nothing imported")
    with backoffice_transaction(database) as conn:
        done = estate.import_hubs(conn, members.device_ids, members.labels, utc_now())
        size, silent = estate.estate_size(conn), estate.never_alerted(conn)
        audit(
            conn,
            "estate.import",
            {"file": str(file), "added": done.added, "known": done.known, "estate": size},
        )
    typer.echo(
        f"imported {len(members.device_ids)} CHs from {file}: {done.added} new, {done.known} "
        f"already in the estate ({len(members.rejects)} lines rejected, {members.duplicates} "
        f"duplicates ignored); the estate holds {size} CHs, {silent} of them never sent an alert"
    )
