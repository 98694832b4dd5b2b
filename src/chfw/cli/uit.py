"""`chfw uit`: the integration-test kit a supplier runs against its own alert endpoint (issue 25).

Exit codes of ``run``: 0 every case passed; 1 a case failed; 2 the run could
not start (bad option, unreadable key, not https without --allow-http).
"""

from __future__ import annotations

import itertools
import json
import secrets
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from chfw.cli import _output as output
from chfw.cli._context import run_guarded
from chfw.core.clock import utc_now
from chfw.core.domain import DeviceId, DuisVersion, FirmwareVersion, UserId
from chfw.core.signing import PemSigner
from chfw.exceptions import ConfigError
from chfw.shared.config import DEFAULT_DCC_USER_ID
from chfw.shared.tls import TlsConfig
from chfw.uit import report
from chfw.uit.cases import CASES, DEFAULT_OVERSIZED_BYTES, Material, select
from chfw.uit.documents import AlertMaker
from chfw.uit.observe import ChfwBackOffice, HttpObserver, Observer
from chfw.uit.report import CaseResult
from chfw.uit.run import (
    DEFAULT_TIMEOUT,
    HttpSender,
    check_target,
    check_timeout,
    run,
    shown_target,
)

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
def list_cases(
    duis_version: VersionOption = "5.1",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Every case for a DUIS version: id (group.name), expected answer, what it checks."""
    with run_guarded(2):
        version = DuisVersion.parse(duis_version)
    chosen = [case for case in CASES if case.applies(version)]
    if as_json:
        rows = [
            {"id": c.id, "expected": c.expect.value, "description": c.description} for c in chosen
        ]
        typer.echo(json.dumps({"duis_version": str(version), "cases": rows}, indent=2))
        return
    grid = Table(title=f"chfw uit cases for DUIS {version}")
    grid.add_column("case", no_wrap=True)
    grid.add_column("expected")
    grid.add_column("description")
    for case in chosen:
        grid.add_row(case.id, case.expect.value, case.description)
    output.console().print(grid)


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
    oversized_bytes: Annotated[int, typer.Option(help="Size of size.oversized's body")] = (
        DEFAULT_OVERSIZED_BYTES
    ),
    chfw_database: Annotated[
        str | None, typer.Option(help="Endpoint is chfw's receiver: check its records here")
    ] = None,
    observe_url: Annotated[
        str | None, typer.Option(help="GET records here: a URL with {response_id} in it")
    ] = None,
    observe_token: Annotated[
        str | None, typer.Option(envvar="CHFW_UIT_OBSERVE_TOKEN", help="Bearer for --observe-url")
    ] = None,
) -> None:
    """Send the suite to ENDPOINT and judge each answer; exit 0 only if every case passed."""
    with run_guarded(2):
        target = check_target(endpoint, allow_http=allow_http)
        check_timeout(timeout)
        version = DuisVersion.parse(duis_version)
        cases = select(version, _names(only), _names(skip))
        signer = PemSigner.from_files(sign_key, sign_cert)
        material = Material(
            _maker(signer, version, dcc_user_id, device_id, firmware_version), oversized_bytes
        )
        context = TlsConfig(*(str(f) if f else None for f in (ca_bundle, client_cert, client_key)))
        verify = context.ssl_context()
        if chfw_database and observe_url:
            raise ConfigError("give --chfw-database or --observe-url, not both")
    console = _console()
    shown = shown_target(target)
    console.print(f"chfw uit: {len(cases)} cases to {shown} (DUIS {version})")
    with ExitStack() as stack:
        client = stack.enter_context(httpx.Client(verify=verify, follow_redirects=False))
        with run_guarded(2):
            observer, observed_by = _observer(
                stack, client, chfw_database, observe_url, observe_token
            )
        result = run(
            cases,
            material,
            HttpSender(target, client),
            target=shown,
            now=utc_now,
            observer=observer,
            observed_by=observed_by,
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


def _maker(
    signer: PemSigner, version: DuisVersion, dcc_user_id: str, device_id: str, firmware: str
) -> AlertMaker:
    """The run's alert maker: ResponseID counters from a random start (never a replay of a run)."""
    counter = itertools.count(secrets.randbelow(1 << 48))
    return AlertMaker(
        signer=signer,
        dcc_user_id=UserId.parse(dcc_user_id),
        device_id=DeviceId.parse(device_id),
        duis_version=version,
        firmware_version=FirmwareVersion.parse(firmware),
        at=utc_now,
        counters=lambda: next(counter),
    )


def _observer(
    stack: ExitStack,
    client: httpx.Client,
    database: str | None,
    url: str | None,
    token: str | None,
) -> tuple[Observer | None, str | None]:
    """The way to see the endpoint's records, and how the report names it (None: answers only)."""
    if url is not None:
        return HttpObserver(url, client, token=token), f"GET {url}"
    if database is None:
        return None, None
    from chfw.shared.db.engine import create_engine_for

    engine = create_engine_for(database)
    stack.callback(engine.dispose)
    return ChfwBackOffice(engine), "chfw back office database"


def _line(result: CaseResult) -> str:
    return f"  {'pass' if result.passed else 'FAIL'}  {result.id}"
