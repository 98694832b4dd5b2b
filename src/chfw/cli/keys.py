"""``chfw keys``: development signing keys (production keys come from the DCC PKI)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from chfw.core.signing import create_development_identity
from chfw.exceptions import ChfwError

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
    _create_pair(out, common_name)


@app.command("rotate")
def rotate(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help=f"New directory for the new {KEY_FILE} and {CERT_FILE} (not the current one's).",
            file_okay=False,
        ),
    ],
    common_name: Annotated[
        str, typer.Option("--common-name", help="Subject and issuer CN of the certificate.")
    ] = "chfw development signer",
) -> None:
    """Key rollover: a new development pair beside the current one, and how to switch to it.

    Nothing is switched here: the current files stay configured until the
    settings are changed, so the new certificate can reach every Service User
    first. Once switched, alerts not yet delivered are re-signed with the new key
    by `chfw worker` as they go out (docs/deployment.md, key rollover).
    """
    from chfw.cli._context import settings

    try:
        current = settings()
    except ChfwError:
        current = None
    key_path, cert_path = _create_pair(out, common_name)
    if current is not None and current.signing_cert:
        typer.echo(f"currently configured: signing_cert {current.signing_cert}")
    typer.echo(
        "\nto roll over (docs/deployment.md, key rollover):\n"
        f"  1. give {cert_path} to every Service User; their receivers trust both certificates "
        "meanwhile (chfw receiver serve --trust OLD.pem --trust NEW.pem)\n"
        "  2. point the settings at the new pair, in chfw.toml:\n"
        f'       signing_key = "{key_path.resolve()}"\n'
        f'       signing_cert = "{cert_path.resolve()}"\n'
        f"     or CHFW_SIGNING_KEY={key_path.resolve()} CHFW_SIGNING_CERT={cert_path.resolve()}\n"
        "  3. restart `chfw serve`, and restart `chfw worker` or send it SIGHUP: alerts not yet\n"
        "     delivered go out re-signed with the new key; `chfw outbox replay` sends dead\n"
        "     letters refused for the old signature again, re-signed"
    )


def _create_pair(out: Path, common_name: str) -> tuple[Path, Path]:
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
    return key_path, cert_path


def _write_new(path: Path, data: bytes, *, mode: int) -> None:
    """Create ``path`` exclusively (never replacing a file) with ``mode`` from the start."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as handle:
        os.fchmod(handle.fileno(), mode)
        handle.write(data)
