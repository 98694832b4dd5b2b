"""`chfw uit`: the integration-test kit a supplier runs against its own alert endpoint (issue 25).

Exit codes of ``run``: 0 every case passed; 1 a case failed; 2 the run could
not start (bad option, unreadable key, not https without --allow-http).
"""

from __future__ import annotations

import itertools
import secrets
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from chfw.cli._context import run_guarded
from chfw.core.clock import utc_now
from chfw.core.domain import DeviceId, DuisVersion, FirmwareVersion, UserId
from chfw.core.signing import PemSigner
from chfw.shared.config import DEFAULT_DCC_USER_ID
from chfw.shared.tls import TlsConfig
from chfw.uit import report
from chfw.uit.cases import CASES, DEFAULT_OVERSIZED_BYTES, Material, select
from chfw.uit.documents import AlertMaker
from chfw.uit.observe import ChfwBackOffice, Observer
from chfw.uit.report import CaseResult
from chfw.uit.run import DEFAULT_TIMEOUT, HttpSender, check_target, run

app = typer.Typer(
    help="Integration-test kit: throw N64/N999 alerts, genuine and hostile, at an endpoint.",
    no_args_is_help=True,
)

EndpointOption = Annotated[str, typer.Option(help="The endpoint's URL (https)")]
VersionOption = Annotated[str, typer.Option(help="The endpoint's DUIS version, e.g. 5.1")]
FileOption = Annotated[Path | None, typer.Option(dir_okay=False)]
NamesOption = Annotated[
    list[str] | None, typer.Option(help="A group or case id; repeat or separate with commas")
]
DEFAULT_DEVICE = "00-1D-A1-FF-FF-FF-FF-64"


def _names(values: list[str] | None) -> list[str]:
    return [name.strip() for value in values or () for name in value.split(",") if name.strip()]


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False)


@app.command("cases")
def list_cases(duis_version: VersionOption = "5.1") -> None:
    """Every case for a DUIS version: id (group.name), expected answer, what it checks."""
    with run_guarded(2):
        version = DuisVersion.parse(duis_version)
    grid = Table(title=f"chfw uit cases for DUIS {version}")
    grid.add_column("case", no_wrap=True)
    grid.add_column("expected")
    grid.add_column("description")
    for case in CASES:
        if case.applies(version):
            grid.add_row(case.id, case.expect.value, case.description)
    _console().print(grid)


@app.command("run")
def run_kit(
    endpoint: EndpointOption,
    duis_version: VersionOption,
    sign_key: Annotated[Path, typer.Option(help="PKCS#8 PEM P-256 key the endpoint trusts")],
    sign_cert: Annotated[Path, typer.Option(help="PEM certificate of --sign-key")],
    ca_bundle: FileOption = None,
    client_cert: FileOption = None,
    client_key: FileOption = None,
    json_file: Annotated[Path | None, typer.Option("--json", dir_okay=False)] = None,
    html_file: Annotated[Path | None, typer.Option("--html", dir_okay=False)] = None,
    only: NamesOption = None,
    skip: NamesOption = None,
    timeout: Annotated[float, typer.Option(help="Seconds each case may take")] = DEFAULT_TIMEOUT,
    allow_http: Annotated[bool, typer.Option(help="Allow a plain http endpoint")] = False,
    device_id: Annotated[str, typer.Option(help="The test CH's Device ID")] = DEFAULT_DEVICE,
    firmware_version: Annotated[str, typer.Option(help="Version the N64s carry")] = "0A0B0C0D",
    dcc_user_id: Annotated[str, typer.Option(help="DCC's User ID")] = DEFAULT_DCC_USER_ID,
    oversized_bytes: Annotated[int, typer.Option(min=1)] = DEFAULT_OVERSIZED_BYTES,
    chfw_database: Annotated[
        str | None, typer.Option(help="Endpoint is chfw's receiver: check its records here")
    ] = None,
) -> None:
    """Send the suite to ENDPOINT and judge each answer; exit 0 only if every case passed."""
    with run_guarded(2):
        target = check_target(endpoint, allow_http=allow_http)
        version = DuisVersion.parse(duis_version)
        cases = select(version, _names(only), _names(skip))
        counter = itertools.count(secrets.randbelow(1 << 48))
        maker = AlertMaker(
            signer=PemSigner.from_files(sign_key, sign_cert),
            dcc_user_id=UserId.parse(dcc_user_id),
            device_id=DeviceId.parse(device_id),
            duis_version=version,
            firmware_version=FirmwareVersion.parse(firmware_version),
            at=utc_now,
            counters=lambda: next(counter),
        )
        context = TlsConfig(
            str(ca_bundle) if ca_bundle else None,
            str(client_cert) if client_cert else None,
            str(client_key) if client_key else None,
        ).ssl_context()
        observer = _observer(chfw_database)
    console = _console()
    console.print(f"chfw uit: {len(cases)} cases to {target} (DUIS {version})")
    with httpx.Client(verify=context, follow_redirects=False) as client:
        result = run(
            cases,
            Material(maker, oversized_bytes),
            HttpSender(target, client),
            target=target,
            now=utc_now,
            observer=observer,
            observed_by="chfw back office database" if observer else None,
            timeout=timeout,
            progress=lambda case: console.print(_line(case)),
        )
    console.print(report.table(result))
    console.print(report.summary(result))
    if json_file is not None:
        report.write_json(result, json_file)
    if html_file is not None:
        report.write_html(result, html_file)
    raise typer.Exit(0 if result.all_passed else 1)


def _observer(database: str | None) -> Observer | None:
    if database is None:
        return None
    from chfw.shared.db.engine import create_engine_for

    return ChfwBackOffice(create_engine_for(database))


def _line(result: CaseResult) -> str:
    return f"  {'pass' if result.passed else 'FAIL'}  {result.id}"
