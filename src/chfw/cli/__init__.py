"""The ``chfw`` command. One module per command group; this file only assembles them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chfw.cli import _context
from chfw.shared.logs import configure_logging

app = typer.Typer(
    name="chfw",
    help="Communications Hub firmware activation alerts (DCC Alert N64/N999).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(wanted: bool) -> None:
    if wanted:
        from chfw import __version__

        typer.echo(f"chfw {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Config file (default: $CHFW_CONFIG or ./chfw.toml)."),
    ] = None,
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    _context.set_config_path(config)
    configure_logging()


def _register() -> None:
    # Imported here so that each group stays independent.
    from chfw.cli import (
        alert,
        campaign,
        csp,
        db,
        demo,
        estate,
        gbcs,
        inventory,
        keys,
        outbox,
        parked,
        pilot,
        receiver,
        serve,
        setup,
        simulate,
        uit,
        users,
        worker,
    )

    app.command("init")(setup.init)
    app.command("serve")(serve.serve)
    app.command("worker")(worker.worker)
    app.command("demo")(demo.demo)
    for name, group in (
        ("gbcs", gbcs.app),
        ("alert", alert.app),
        ("keys", keys.app),
        ("db", db.app),
        ("csp", csp.app),
        ("campaign", campaign.app),
        ("users", users.app),
        ("estate", estate.app),
        ("inventory", inventory.app),
        ("outbox", outbox.app),
        ("parked", parked.app),
        ("pilot", pilot.app),
        ("simulate", simulate.app),
        ("receiver", receiver.app),
        ("uit", uit.app),
    ):
        app.add_typer(group, name=name)


_register()


def main() -> None:
    app()
