"""`chfw init`: a working deployment in one folder (config, SQLite database, dev signing key)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from chfw.cli._context import fail, run_guarded
from chfw.config import DEFAULT_CONFIG_NAME, Settings, render_settings_toml
from chfw.signing import create_development_identity


def init(
    directory: Annotated[Path, typer.Option("--dir", help="Folder for the deployment")] = Path("."),
    database_url: Annotated[
        str | None, typer.Option(help="Database URL (default: SQLite file chfw.db in --dir)")
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing config file")] = False,
) -> None:
    """Create chfw.toml, the database (migrated) and a development signing key + certificate."""
    from chfw.store.migrate import upgrade

    directory = directory.resolve()
    config_path = directory / DEFAULT_CONFIG_NAME
    if config_path.exists() and not force:
        raise fail(f"{config_path} exists; use --force to overwrite it")
    directory.mkdir(parents=True, exist_ok=True)
    keys = directory / "keys"
    key_path, cert_path = keys / "signing-key.pem", keys / "signing-cert.pem"
    with run_guarded():
        if not key_path.exists():
            keys.mkdir(exist_ok=True)
            key_pem, cert_pem = create_development_identity(common_name="chfw development DSP")
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(key_pem)
            cert_path.write_bytes(cert_pem)
        settings = Settings(
            database_url=database_url or f"sqlite:///{directory / 'chfw.db'}",
            signing_key=str(key_path),
            signing_cert=str(cert_path),
        )
        config_path.write_text(render_settings_toml(settings))
        revision = upgrade(settings.database_url)
    typer.echo(f"wrote {config_path}")
    typer.echo(f"database {settings.database_url} at revision {revision}")
    typer.echo(f"signing certificate {cert_path} (give it to Service Users' trust stores)")
