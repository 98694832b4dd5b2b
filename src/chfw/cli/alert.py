"""`chfw alert`: render and verify DUIS alert documents, for integrators and our own checks."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from chfw.cli._context import fail, run_guarded
from chfw.core.clock import utc_now
from chfw.core.domain import Decision, DuisVersion, UserId, alert_kind_for, decide, withheld_note
from chfw.core.domain.decide import PlannedAlert
from chfw.core.duis import bundled_schemas, official_schemas
from chfw.core.gbcs import decode_outcome
from chfw.core.signing import PemSigner, TrustStore, verify_document
from chfw.core.xmlsafe import parse_untrusted
from chfw.dsp.alerts import AlertBuilder
from chfw.shared.config import DEFAULT_DCC_USER_ID

app = typer.Typer(help="Render and verify DCC Alert N64/N999 documents.", no_args_is_help=True)


def _read_hex(value: str) -> str:
    return sys.stdin.read() if value == "-" else value


@app.command()
def render(
    gbcs: Annotated[str, typer.Option("--gbcs", help="CS06 response/alert as hex, or - for stdin")],
    duis_version: Annotated[
        str,
        typer.Option("--duis-version", help="Recipient's DUIS version: N64 from 5.1, else N999"),
    ],
    sign_key: Annotated[Path | None, typer.Option(help="PKCS#8 PEM P-256 key")] = None,
    sign_cert: Annotated[Path | None, typer.Option(help="PEM certificate of the key")] = None,
    counter: Annotated[
        int | None, typer.Option(help="ResponseID counter (default: the CS06 command's counter)")
    ] = None,
    dcc_user_id: Annotated[
        str, typer.Option(help="DCC User ID, first part of the ResponseID")
    ] = DEFAULT_DCC_USER_ID,
    xsd_dir: Annotated[
        Path | None, typer.Option(help="Validate against official DUIS XSDs in DIR/<version>/")
    ] = None,
) -> None:
    """Print the alert a CS06 outcome causes (the CH treated as having no recorded version)."""
    if (sign_key is None) != (sign_cert is None):
        raise fail("--sign-key and --sign-cert go together", 2)
    with run_guarded(2):
        outcome = decode_outcome(_read_hex(gbcs))
        version = DuisVersion.parse(duis_version)
        decision = decide(outcome, None)
        if decision is Decision.VERSION_NOT_CARRIABLE:
            assert outcome.firmware_version is not None
            typer.echo(f"no alert: {withheld_note(outcome.firmware_version, ())}", err=True)
            raise typer.Exit(1)
        if not decision.alerts_due:
            typer.echo(
                f"no alert: the outcome is {outcome.result.value} ({decision.value}); "
                "N64 is sent only for a successful activation of a new version",
                err=True,
            )
            raise typer.Exit(1)
        assert outcome.firmware_version is not None
        signer = PemSigner.from_files(sign_key, sign_cert) if sign_key and sign_cert else None
        builder = AlertBuilder(
            dcc_user=UserId.parse(dcc_user_id),
            signer=signer,
            schemas=official_schemas(xsd_dir) if xsd_dir else bundled_schemas(),
        )
        planned = PlannedAlert(UserId(bytes(8)), alert_kind_for(version), version)
        built = builder.build(
            planned,
            outcome.device_id,
            outcome.firmware_version,
            utc_now(),
            outcome.originator_counter if counter is None else counter,
        )
    sys.stdout.buffer.write(built.document + b"\n")


@app.command()
def verify(
    file: Annotated[Path, typer.Argument(help="Signed DUIS Response document, or - for stdin")],
    trust: Annotated[
        list[Path], typer.Option("--trust", help="Trusted signer certificate (PEM); repeatable")
    ],
    duis_version: Annotated[
        str | None, typer.Option(help="Check the schema of this version (default: schemaVersion)")
    ] = None,
    xsd_dir: Annotated[
        Path | None, typer.Option(help="Validate against official DUIS XSDs in DIR/<version>/")
    ] = None,
) -> None:
    """Exit 0 when signature and schema are valid; 1 with the reason otherwise."""
    with run_guarded(1):
        data = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
        store = TrustStore.from_files(*trust)
        verified = verify_document(data, store)
        root = parse_untrusted(data)
        version = DuisVersion.parse(duis_version or root.get("schemaVersion") or "")
        schemas = official_schemas(xsd_dir) if xsd_dir else bundled_schemas()
        schemas.validate(data, version)
    typer.echo(
        f"valid: signed by {verified.certificate.subject.rfc4514_string()}, DUIS {version} schema"
    )
