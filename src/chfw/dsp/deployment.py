"""Create a working DSP deployment in one folder: config file, database, signing identity."""

from __future__ import annotations

import os
from pathlib import Path

from chfw.core.signing import create_development_identity
from chfw.exceptions import ConfigError
from chfw.shared.config import DEFAULT_CONFIG_NAME, Settings, render_settings_toml

KEY_FILE = "signing-key.pem"
CERT_FILE = "signing-cert.pem"


def write_private(path: Path, data: bytes) -> None:
    """Write ``path`` readable and writable by its owner only (0600), even when it existed.

    chfw.toml may hold a database password and the dashboard token: created
    0600 (never world-readable, not even for a moment) and, when overwritten,
    set back to 0600.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(data)


def create_deployment(
    directory: Path,
    *,
    database_url: str | None = None,
    force: bool = False,
    **overrides: object,
) -> tuple[Path, Settings, str | None]:
    """Write DIR/chfw.toml, a development key pair in DIR/keys/, and migrate the database.

    Returns the config path, the settings and the schema revision. An existing
    key pair is kept (its certificate may already be in receivers' trust stores).
    """
    from chfw.dsp.store.migrate import upgrade

    directory = directory.resolve()
    config_path = directory / DEFAULT_CONFIG_NAME
    if config_path.exists() and not force:
        raise ConfigError(f"{config_path} exists; use --force to overwrite it")
    directory.mkdir(parents=True, exist_ok=True)
    keys = directory / "keys"
    key_path, cert_path = keys / KEY_FILE, keys / CERT_FILE
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
    ).replace(**overrides)
    write_private(config_path, render_settings_toml(settings).encode())
    revision = upgrade(settings.database_url)
    return config_path, settings, revision
