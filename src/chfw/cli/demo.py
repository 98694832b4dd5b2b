"""`chfw demo`: a simulated firmware wave end to end, summary checked against ground truth."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from chfw.cli._context import run_guarded


def demo(
    hubs: Annotated[int, typer.Option(min=1, help="Communications Hubs in the estate")] = 10_000,
    summary_json: Annotated[
        Path | None, typer.Option(help="Also write the summary as JSON here")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Delivery worker processes")] = 1,
    intakes: Annotated[
        int, typer.Option(min=1, help="Intake processes (the CSP's batches spread over them)")
    ] = 1,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Work folder (default: a new temporary one)")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            envvar="CHFW_DATABASE_URL",
            help="DSP database (default: SQLite in the work folder); must be empty",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Simulation seed")] = 0,
    campaign: Annotated[
        bool,
        typer.Option(
            "--campaign/--no-campaign",
            help="Run the wave as a DCC campaign (a pilot phase, then the rest; the CSP takes "
            "its work from the work list), or post it all at once",
        ),
    ] = True,
    wait: Annotated[
        bool | None,
        typer.Option(
            "--wait/--no-wait",
            help="After the summary, print the dashboards' links and keep the services running "
            "until Ctrl-C (default: only when standard input is a terminal)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run a wave through intake, outbox, delivery and supplier receivers; print a summary."""
    from chfw.demo.run import DemoOptions, run_demo, write_summary

    console = Console()
    with run_guarded():
        summary = run_demo(
            DemoOptions(
                hubs=hubs,
                seed=seed,
                workdir=directory,
                database_url=database_url,
                workers=workers,
                intakes=intakes,
                campaign=campaign,
                wait=sys.stdin.isatty() if wait is None else wait,
            ),
            console,
        )
    if summary_json:
        write_summary(summary, summary_json)
        console.print(f"summary written to {summary_json}")
    if not all(ok is not False for ok in summary["checks"].values()):
        console.print("[red]the demo's checks against the simulator's ground truth failed[/]")
        raise typer.Exit(1)
