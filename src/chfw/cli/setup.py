"""`chfw init`: a working deployment in one folder (config, SQLite database, dev signing key)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chfw.cli._context import run_guarded
from chfw.dsp.deployment import create_deployment
from chfw.shared.db.engine import display_url


def init(
    directory: Annotated[Path, typer.Option("--dir", help="Folder for the deployment")] = Path("."),
    database_url: Annotated[
        str | None, typer.Option(help="Database URL (default: SQLite file chfw.db in --dir)")
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing config file")] = False,
) -> None:
    """Create chfw.toml, the database (migrated) and a development signing key + certificate.

    chfw.toml and the key are readable by their owner only (0600): the file may
    hold a database password and the dashboard token.
    """
    with run_guarded():
        config_path, settings, revision = create_deployment(
            directory, database_url=database_url, force=force
        )
    typer.echo(f"wrote {config_path}")
    typer.echo(f"database {display_url(settings.database_url)} at revision {revision}")
    typer.echo(
        f"signing certificate {settings.signing_cert} (give it to Service Users' trust stores)"
    )
    typer.echo(
        f"next: chfw --config {config_path} serve   and   chfw --config {config_path} worker"
    )
