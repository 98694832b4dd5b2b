"""`chfw users`: the DUIS Service Users alerts go to."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.engine import Connection

from chfw.cli._context import fail, run_guarded, settings
from chfw.cli._output import console
from chfw.cli._store import transaction
from chfw.core.clock import utc_now
from chfw.core.domain import DuisVersion, UserId
from chfw.dsp.schema_check import check_version
from chfw.dsp.store import audit, inventory_access, suspension, users
from chfw.dsp.store.users import ServiceUser
from chfw.exceptions import InvalidValueError

app = typer.Typer(help="Service Users: who receives alerts, how.", no_args_is_help=True)

InsecureOption = Annotated[
    bool,
    typer.Option(
        "--allow-insecure-http",
        help="Accept a plain http:// endpoint (alerts unencrypted): for local testing only",
    ),
]


def _as_json(user: ServiceUser) -> dict[str, Any]:
    return {
        "user_id": str(user.user_id),
        "name": user.name,
        "roles": sorted(user.roles),
        "duis_version": str(user.duis_version),
        "endpoint_url": user.endpoint_url,
        "tls_ca_bundle": user.tls_ca_bundle,
        "tls_client_cert": user.tls_client_cert,
        "tls_client_key": user.tls_client_key,
        "max_in_flight": user.max_in_flight,
        "allow_insecure_http": user.allow_insecure_http,
        "suspended": user.suspended,
        "suspended_at": None
        if user.suspended_at is None
        else user.suspended_at.isoformat(timespec="seconds"),
        "suspended_reason": user.suspended_reason,
        "refusals_in_a_row": user.refusals_in_a_row,
    }


@app.command()
def add(
    user_id: Annotated[str, typer.Argument(help="EUI-64 User ID, e.g. 90-B3-D5-1F-30-01-00-00")],
    name: Annotated[str, typer.Option(help="Organisation name")],
    roles: Annotated[str, typer.Option(help="User Roles, comma-separated, e.g. IS,GS")],
    duis_version: Annotated[str, typer.Option(help="DUIS version its systems accept, e.g. 5.1")],
    endpoint: Annotated[str | None, typer.Option(help="URL alerts are POSTed to")] = None,
    ca_bundle: Annotated[
        str | None, typer.Option(help="CA bundle to verify the endpoint (default: system CAs)")
    ] = None,
    client_cert: Annotated[
        str | None, typer.Option(help="Client certificate chfw presents (mutual TLS)")
    ] = None,
    client_key: Annotated[str | None, typer.Option(help="Key of --client-cert")] = None,
    max_in_flight: Annotated[
        int | None,
        typer.Option(
            help="Alerts in flight to this endpoint at once "
            "(default: the deployment's delivery_max_in_flight)",
            min=1,
        ),
    ] = None,
    allow_insecure_http: InsecureOption = False,
) -> None:
    """Register a Service User (endpoints are https unless --allow-insecure-http)."""
    with run_guarded():
        user = ServiceUser(
            user_id=UserId.parse(user_id),
            name=name,
            roles=users.parse_roles(roles),
            duis_version=DuisVersion.parse(duis_version),
            endpoint_url=endpoint,
            tls_ca_bundle=ca_bundle,
            tls_client_cert=client_cert,
            tls_client_key=client_key,
            max_in_flight=max_in_flight,
            allow_insecure_http=allow_insecure_http,
        )
        users.check_transport(user.endpoint_url, allow_insecure_http)
        check_version(settings(), user.duis_version)  # its schema is installed
    with transaction() as conn:
        users.add_user(conn, user)
        audit.record(conn, audit.current_actor(), "users.add", _as_json(user))
    typer.echo(
        f"added Service User {user.user_id} ({user.name}), roles {','.join(sorted(user.roles))}, "
        f"DUIS {user.duis_version}, endpoint {user.endpoint_url or 'none'}"
    )


@app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """List Service Users."""
    with transaction() as conn:
        found = users.list_users(conn)
    if as_json:
        typer.echo(json.dumps([_as_json(user) for user in found], indent=2))
        return
    if not found:
        typer.echo("no Service Users registered (add one with `chfw users add`)")
        return
    table = Table("User ID", "Name", "Roles", "DUIS", "Endpoint", "TLS", "In flight", "Delivery")
    for user in found:
        tls = "mutual" if user.tls_client_cert else ("custom CA" if user.tls_ca_bundle else "")
        if user.endpoint_url and user.endpoint_url.lower().startswith("http://"):
            tls = "none (insecure http)" if user.allow_insecure_http else "none: refused"
        table.add_row(
            str(user.user_id),
            user.name,
            ",".join(sorted(user.roles)),
            str(user.duis_version),
            user.endpoint_url or "-",
            tls,
            "default" if user.max_in_flight is None else str(user.max_in_flight),
            f"suspended: {user.suspended_reason}" if user.suspended else "active",
        )
    console().print(table)


def _change(
    uid: UserId,
    action: str,
    apply: Callable[[Connection], None],
    value_of: Callable[[ServiceUser], Any],
    after: Any,
) -> Any:
    """Apply one change to a user and audit it with its before and after, in one
    transaction; returns the value before (None for an unknown user, whose change fails)."""
    with transaction() as conn:
        old = users.get_user(conn, uid)
        apply(conn)
        before = None if old is None else value_of(old)
        audit.record(
            conn,
            audit.current_actor(),
            action,
            {"user_id": str(uid), "before": before, "after": after},
        )
    return before


@app.command("set-duis")
def set_duis(
    user_id: Annotated[str, typer.Argument(help="EUI-64 User ID")],
    version: Annotated[str, typer.Argument(help="DUIS version, e.g. 5.1 (below 5.1: N999)")],
) -> None:
    """Change the DUIS version a user's alerts are rendered in (audited)."""
    with run_guarded():
        uid, new = UserId.parse(user_id), DuisVersion.parse(version)
        check_version(settings(), new)  # its schema is installed
    before = _change(
        uid,
        "users.set-duis",
        lambda conn: users.set_duis_version(conn, uid, new),
        lambda user: str(user.duis_version),
        str(new),
    )
    typer.echo(f"Service User {uid}: DUIS version {before} -> {new}")


@app.command("set-endpoint")
def set_endpoint(
    user_id: Annotated[str, typer.Argument(help="EUI-64 User ID")],
    url: Annotated[str, typer.Argument(help="URL alerts are POSTed to (https://)")],
    allow_insecure_http: InsecureOption = False,
) -> None:
    """Change where a user's alerts are delivered (audited); https unless --allow-insecure-http."""
    with run_guarded():
        uid = UserId.parse(user_id)
        users.check_transport(users.check_endpoint(url), allow_insecure_http)
    before = _change(
        uid,
        "users.set-endpoint",
        lambda conn: users.set_endpoint(conn, uid, url, allow_insecure_http=allow_insecure_http),
        lambda user: user.endpoint_url,
        url,
    )
    typer.echo(f"Service User {uid}: endpoint {before or 'none'} -> {url}")


def _tls_json(user: ServiceUser) -> dict[str, str | None]:
    return {
        "ca_bundle": user.tls_ca_bundle,
        "client_cert": user.tls_client_cert,
        "client_key": user.tls_client_key,
    }


def _readable(path: Path | None, what: str) -> str | None:
    """The absolute path of a file the worker will read, refused when it cannot be read now."""
    if path is None:
        return None
    try:
        path.read_bytes()
    except OSError as exc:
        raise InvalidValueError(f"{what} {path}: {exc.strerror or exc}") from None
    return str(path.resolve())


def _check_tls_options(
    ca_bundle: Path | None,
    system_ca: bool,
    client_cert: Path | None,
    client_key: Path | None,
    no_client_cert: bool,
) -> None:
    """The options of set-tls make one change that can be meant."""
    if ca_bundle is not None and system_ca:
        raise InvalidValueError("give --ca-bundle or --system-ca, not both")
    if (client_cert is None) != (client_key is None):
        raise InvalidValueError("give --client-cert and --client-key together")
    if client_cert is not None and no_client_cert:
        raise InvalidValueError("give --client-cert/--client-key or --no-client-cert")
    if ca_bundle is None and not system_ca and client_cert is None and not no_client_cert:
        raise InvalidValueError(
            "nothing to change: give --ca-bundle/--system-ca and/or "
            "--client-cert with --client-key/--no-client-cert"
        )


@app.command("set-tls")
def set_tls(
    user_id: Annotated[str, typer.Argument(help="EUI-64 User ID")],
    ca_bundle: Annotated[
        Path | None,
        typer.Option(help="CA bundle verifying the endpoint (default: keep the current one)"),
    ] = None,
    system_ca: Annotated[
        bool,
        typer.Option(
            "--system-ca", help="Verify with the deployment's delivery_ca_bundle / system CAs"
        ),
    ] = False,
    client_cert: Annotated[
        Path | None, typer.Option(help="Client certificate chfw presents (with --client-key)")
    ] = None,
    client_key: Annotated[Path | None, typer.Option(help="Key of --client-cert")] = None,
    no_client_cert: Annotated[
        bool, typer.Option("--no-client-cert", help="Present no client certificate")
    ] = False,
) -> None:
    """Change how alerts reach an existing user's endpoint: the CA bundle that verifies it,
    the client certificate and key chfw presents (audited with before and after). Workers
    use the new files from the user's next alert on."""
    with run_guarded():
        uid = UserId.parse(user_id)
        _check_tls_options(ca_bundle, system_ca, client_cert, client_key, no_client_cert)
        ca = _readable(ca_bundle, "CA bundle")
        cert = _readable(client_cert, "client certificate")
        key = _readable(client_key, "client key")
    with transaction() as conn:
        old = users.get_user(conn, uid)
        if old is None:
            raise fail(f"Service User {uid} is not registered (add it with `chfw users add`)")
        after = {
            "ca_bundle": None if system_ca else (ca or old.tls_ca_bundle),
            "client_cert": None if no_client_cert else (cert or old.tls_client_cert),
            "client_key": None if no_client_cert else (key or old.tls_client_key),
        }
        users.set_tls(
            conn,
            uid,
            ca_bundle=after["ca_bundle"],
            client_cert=after["client_cert"],
            client_key=after["client_key"],
        )
        audit.record(
            conn,
            audit.current_actor(),
            "users.set-tls",
            {"user_id": str(uid), "before": _tls_json(old), "after": after},
        )
    typer.echo(
        f"Service User {uid}: CA bundle {after['ca_bundle'] or 'default'}, client certificate "
        f"{after['client_cert'] or 'none'}"
    )


@app.command("set-in-flight")
def set_in_flight(
    user_id: Annotated[str, typer.Argument(help="EUI-64 User ID")],
    limit: Annotated[
        str, typer.Argument(help="Alerts in flight at once, or 'default' for the setting")
    ],
) -> None:
    """Change how many of a user's alerts a worker POSTs at once (audited)."""
    with run_guarded():
        uid = UserId.parse(user_id)
        if limit.strip().lower() == "default":
            new: int | None = None
        elif limit.strip().isdigit() and int(limit) >= 1:
            new = int(limit)
        else:
            raise InvalidValueError(
                f"in-flight limit must be a whole number >= 1 or 'default', got {limit!r}"
            )
    before = _change(
        uid,
        "users.set-in-flight",
        lambda conn: users.set_max_in_flight(conn, uid, new),
        lambda user: user.max_in_flight,
        new,
    )
    shown = "default" if new is None else str(new)
    typer.echo(f"Service User {uid}: in flight {before or 'default'} -> {shown}")


@app.command("token")
def token(
    user_id: Annotated[str, typer.Argument(help="EUI-64 User ID")],
) -> None:
    """Issue an inventory read token (replacing the old one); printed once (audited)."""
    with run_guarded():
        uid = UserId.parse(user_id)
    with transaction() as conn:
        replaced = inventory_access.has_token(conn, uid)
        issued = inventory_access.issue_token(conn, uid)
        audit.record(
            conn,
            audit.current_actor(),
            "users.token",
            {"user_id": str(uid), "replaced": replaced},
        )
    typer.echo(issued)
    typer.echo(
        f"inventory token for Service User {uid}"
        + (
            " (the previous one is refused from now on; by running intake processes within "
            f"{inventory_access.CACHE_TTL_SECONDS:.0f} s)"
            if replaced
            else ""
        )
        + ": shown once, store it now; it is sent as 'Authorization: Bearer <token>' "
        "to GET /su/v1/inventory/{device_id}",
        err=True,
    )


@app.command("resume")
def resume(
    user_id: Annotated[str, typer.Argument(help="EUI-64 User ID")],
) -> None:
    """Resume delivery to a suspended user (audited): the alerts dead-lettered by its run of
    refusals are replayed, and every pending alert is due now, delivered in order."""
    with run_guarded():
        uid = UserId.parse(user_id)
    with transaction() as conn:
        done = suspension.resume(conn, uid, audit.current_actor(), utc_now())
    state = "resumed" if done.was_suspended else "was not suspended; run of refusals cleared"
    typer.echo(
        f"Service User {uid}: {state}; {done.replayed} dead letter(s) of the run replayed, "
        f"{done.made_due} pending alert(s) due now"
    )
