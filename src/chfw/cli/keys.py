"""``chfw keys``: development signing keys (production keys come from the DCC PKI)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from chfw.exceptions import ChfwError
from chfw.signing import create_development_identity

KEY_FILE = "signing-key.pem"
CERT_FILE = "signing-cert.pem"

app = typer.Typer(
    help="Development signing keys: an EC P-256 key and a self-signed certificate.",
    no_args_is_help=True,
)


@app.callback()
def _group() -> None:
    """Development signing keys: an EC P-256 key and a self-signed certificate."""


@app.command("create")
def create(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help=f"Directory to write {KEY_FILE} and {CERT_FILE} into (created if needed).",
            file_okay=False,
        ),
    ],
    common_name: Annotated[
        str, typer.Option("--common-name", help="Subject and issuer CN of the certificate.")
    ] = "chfw development signer",
) -> None:
    """Write a PKCS#8 P-256 key (mode 0600) and a self-signed X.509 certificate.

    Never overwrites: existing files are an error, so a key in use cannot be lost.
    """
    key_path, cert_path = out / KEY_FILE, out / CERT_FILE
    existing = [str(path) for path in (key_path, cert_path) if path.exists()]
    if existing:
        verb = "exists" if len(existing) == 1 else "exist"
        typer.echo(
            f"error: {' and '.join(existing)} already {verb}; refusing to overwrite — "
            "choose another --out directory or move the old files away",
            err=True,
        )
        raise typer.Exit(1)
    try:
        out.mkdir(parents=True, exist_ok=True)
        key_pem, cert_pem = create_development_identity(common_name)
        _write_new(key_path, key_pem, mode=0o600)
        _write_new(cert_path, cert_pem, mode=0o644)
    except (OSError, ValueError, ChfwError) as exc:
        typer.echo(f"error: cannot write the key pair into {out}: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote {key_path} (EC P-256 private key, PKCS#8, mode 0600)")
    typer.echo(f"wrote {cert_path} (self-signed certificate, CN={common_name})")


def _write_new(path: Path, data: bytes, *, mode: int) -> None:
    """Create ``path`` exclusively (never replacing a file) with ``mode`` from the start."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as handle:
        os.fchmod(handle.fileno(), mode)
        handle.write(data)
