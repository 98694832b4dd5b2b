"""`chfw receiver ready`: CHs whose active firmware is at or above a version (HAN readiness)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from chfw.cli._backoffice import DatabaseOption, backoffice_transaction
from chfw.cli._context import fail, run_guarded
from chfw.core.domain import FirmwareVersion

if TYPE_CHECKING:  # imported when used, so that `chfw --help` stays quick
    from chfw.supplier import readiness as han


def _summary_line(summary: han.Readiness) -> str:
    odd = (
        f", {summary.unrecognised} on a version that is not a hex number"
        if summary.unrecognised
        else ""
    )
    if summary.never_alerted:
        odd += f"; {summary.never_alerted} of the unknown never sent an alert"
    return (
        f"{summary.ready} CHs at or above {summary.min_version.hex} "
        f"({summary.below} below, {summary.unknown} with a version not known yet{odd})"
    )


def ready(
    min_version: Annotated[
        str,
        typer.Option(
            "--min-version",
            help="Lowest firmware version that is ready (hex, compared as octets)",
        ),
    ],
    csv_file: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            help="Write device_id, active_firmware_version, changed_at as CSV ('-': stdout)",
            dir_okay=False,
        ),
    ] = None,
    count: Annotated[
        bool, typer.Option("--count", help="Print the counts only (per version with --json)")
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the counts as JSON: ready, below, unknown, per version"),
    ] = False,
    database: DatabaseOption = None,
) -> None:
    """List CHs ready for the next HAN-device firmware step (active firmware >= --min-version).

    Versions compare as one unsigned big-endian number (0102 < 00000103 < 0200).
    Without --csv, prints one 'DEVICE-ID VERSION' line per CH and the counts on stderr.
    'unknown' counts CHs whose version is being fetched (N999) and CHs of the estate
    (`chfw receiver hubs import`) that never sent an alert.
    """
    from chfw.supplier import readiness as han

    with run_guarded():
        minimum = FirmwareVersion.parse(min_version)
    with backoffice_transaction(database) as conn:
        summary = han.readiness(conn, minimum)
        if count or as_json:
            if as_json:
                typer.echo(json.dumps(summary.to_json(), indent=2))
            else:
                typer.echo(_summary_line(summary))
            return
        hubs = han.ready_hubs(conn, summary)
        if csv_file is not None and str(csv_file) == "-":
            han.write_csv(hubs, sys.stdout)
        elif csv_file is not None:
            try:
                with csv_file.open("w", encoding="utf-8", newline="") as handle:
                    han.write_csv(hubs, handle)
            except OSError as exc:
                raise fail(f"cannot write {csv_file}: {exc.strerror or exc}") from None
        else:
            for hub in hubs:
                typer.echo(f"{hub.device_id} {hub.active_version}")
    written = f"; written to {csv_file}" if csv_file is not None and str(csv_file) != "-" else ""
    typer.echo(_summary_line(summary) + written, err=True)
