"""DUIS Service Users: who gets alerts, on which DUIS version, at which endpoint.

Endpoints are https: a signed alert is not secret, but over plain http anyone
on the path reads which CHs a supplier has and can answer in the supplier's
place. A plain ``http://`` endpoint is written only for a user marked
``allow_insecure_http`` (``chfw users add|set-endpoint --allow-insecure-http``,
for local testing; ``make demo`` does so for its 127.0.0.1 receivers), and the
delivery worker refuses to post to any other user's http endpoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chfw.core.clock import utc_now
from chfw.core.domain import DuisVersion, UserId
from chfw.dsp.store.schema import service_users
from chfw.exceptions import InvalidValueError, StoreError
from chfw.shared.db.sql import from_db_opt, insert_for

# DUIS User Roles: Import/Export/Gas Supplier, Electricity/Gas Network Operator,
# Registered Supplier Agent, Other User.
KNOWN_ROLES = frozenset({"IS", "ES", "GS", "ED", "GT", "RSA", "OU"})


def parse_roles(text: str | Iterable[str]) -> frozenset[str]:
    """``"IS,GS"`` (or an iterable of codes) as a set of known role codes."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    roles = frozenset(part.strip().upper() for part in parts if part.strip())
    unknown = roles - KNOWN_ROLES
    if unknown:
        raise InvalidValueError(
            f"unknown User Role(s) {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(KNOWN_ROLES))})"
        )
    if not roles:
        raise InvalidValueError("a Service User needs at least one User Role (e.g. IS,GS)")
    return roles


def check_endpoint(url: str) -> str:
    """An http(s) URL with a host; anything else could never be delivered to."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidValueError(
            f"endpoint {url!r} is not an http(s) URL with a host (e.g. https://supplier.example/duis)"
        )
    return url


def check_transport(url: str | None, allow_insecure_http: bool) -> str | None:
    """``url`` unless it is plain http for a user not marked ``allow_insecure_http``."""
    if url is not None and urlsplit(url).scheme == "http" and not allow_insecure_http:
        raise InvalidValueError(
            f"endpoint {url!r} is plain http (alerts would cross the network unencrypted): "
            "use https://, or pass --allow-insecure-http for local testing only"
        )
    return url


@dataclass(frozen=True, slots=True)
class ServiceUser:
    """A Service User as chfw needs it to send alerts."""

    user_id: UserId
    name: str
    roles: frozenset[str]
    duis_version: DuisVersion
    endpoint_url: str | None = None
    tls_ca_bundle: str | None = None  # path; None = the default trust store
    tls_client_cert: str | None = None  # path to the client certificate we present
    tls_client_key: str | None = None
    max_in_flight: int | None = None  # None: the deployment's delivery_max_in_flight
    allow_insecure_http: bool = False  # may the endpoint be plain http (local testing only)
    # Delivery state (chfw.dsp.store.suspension), read only: never written from here.
    suspended_at: datetime | None = None
    suspended_reason: str | None = None
    refusals_in_a_row: int = 0

    @property
    def suspended(self) -> bool:
        return self.suspended_at is not None

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise InvalidValueError(f"Service User {self.user_id} needs a name")
        object.__setattr__(self, "roles", parse_roles(self.roles))
        if self.endpoint_url is not None:
            check_endpoint(self.endpoint_url)
        if (self.tls_client_cert is None) != (self.tls_client_key is None):
            raise InvalidValueError(
                f"Service User {self.user_id}: give both a client certificate and its key, "
                "or neither"
            )
        try:
            check_max_in_flight(self.max_in_flight)
        except InvalidValueError as exc:
            raise InvalidValueError(f"Service User {self.user_id}: {exc}") from None


def _row(user: ServiceUser) -> dict[str, Any]:
    """The columns of ``user``, as written: a plain http endpoint needs the user's mark."""
    check_transport(user.endpoint_url, user.allow_insecure_http)
    return {
        "user_id": user.user_id.hex,
        "name": user.name,
        "roles": ",".join(sorted(user.roles)),
        "duis_version": str(user.duis_version),
        "endpoint_url": user.endpoint_url,
        "tls_ca_bundle": user.tls_ca_bundle,
        "tls_client_cert": user.tls_client_cert,
        "tls_client_key": user.tls_client_key,
        "max_in_flight": user.max_in_flight,
        "allow_insecure_http": user.allow_insecure_http,
    }


def _user(row: Any) -> ServiceUser:
    return ServiceUser(
        user_id=UserId.parse(row.user_id),
        name=row.name,
        roles=parse_roles(row.roles),
        duis_version=DuisVersion.parse(row.duis_version),
        endpoint_url=row.endpoint_url,
        tls_ca_bundle=row.tls_ca_bundle,
        tls_client_cert=row.tls_client_cert,
        tls_client_key=row.tls_client_key,
        max_in_flight=row.max_in_flight,
        allow_insecure_http=bool(row.allow_insecure_http),
        suspended_at=from_db_opt(row.suspended_at),
        suspended_reason=row.suspended_reason,
        refusals_in_a_row=row.refusals_in_a_row or 0,
    )


def add_user(conn: Connection, user: ServiceUser, at: datetime | None = None) -> None:
    """Register a new Service User; StoreError if the User ID is already registered."""
    moment = at or utc_now()
    stmt = (
        insert_for(conn, service_users)
        .values(**_row(user), created_at=moment, updated_at=moment)
        .on_conflict_do_nothing(index_elements=["user_id"])
    )
    if conn.execute(stmt).rowcount == 0:
        raise StoreError(
            f"Service User {user.user_id} already exists; use set-duis / set-endpoint to change it"
        )


def upsert_user(conn: Connection, user: ServiceUser, at: datetime | None = None) -> None:
    """Register or replace a Service User (the simulator and imports use this)."""
    moment = at or utc_now()
    values = _row(user)
    insert = insert_for(conn, service_users).values(**values, created_at=moment, updated_at=moment)
    changed = {name: insert.excluded[name] for name in values if name != "user_id"}
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=["user_id"], set_={**changed, "updated_at": moment}
        )
    )


def get_user(conn: Connection, user_id: UserId) -> ServiceUser | None:
    row = conn.execute(
        sa.select(service_users).where(service_users.c.user_id == user_id.hex)
    ).first()
    return None if row is None else _user(row)


def get_users(conn: Connection, user_ids: Iterable[UserId]) -> dict[UserId, ServiceUser]:
    """The registered users among ``user_ids``, in one query; unknown ones are left out."""
    wanted = {user.hex for user in user_ids}
    if not wanted:
        return {}
    rows = conn.execute(sa.select(service_users).where(service_users.c.user_id.in_(wanted)))
    return {user.user_id: user for user in map(_user, rows)}


def list_users(conn: Connection) -> list[ServiceUser]:
    rows = conn.execute(sa.select(service_users).order_by(service_users.c.user_id))
    return [_user(row) for row in rows]


def _update(conn: Connection, user_id: UserId, **values: Any) -> None:
    result = conn.execute(
        sa.update(service_users)
        .where(service_users.c.user_id == user_id.hex)
        .values(**values, updated_at=utc_now())
    )
    if result.rowcount == 0:
        raise StoreError(f"Service User {user_id} is not registered (add it with `chfw users add`)")


def set_duis_version(conn: Connection, user_id: UserId, version: DuisVersion) -> None:
    """Change the DUIS version alerts are rendered in for this user (N999 below 5.1)."""
    _update(conn, user_id, duis_version=str(version))


def set_endpoint(
    conn: Connection, user_id: UserId, url: str | None, *, allow_insecure_http: bool = False
) -> None:
    """Change (or with None, remove) the URL alerts are delivered to, and whether it may be
    plain http (``allow_insecure_http``: local testing only)."""
    if url is not None:
        check_transport(check_endpoint(url), allow_insecure_http)
    _update(conn, user_id, endpoint_url=url, allow_insecure_http=allow_insecure_http)


def set_tls(
    conn: Connection,
    user_id: UserId,
    *,
    ca_bundle: str | None,
    client_cert: str | None,
    client_key: str | None,
) -> None:
    """Change how the worker connects to the user's endpoint: the CA bundle that verifies it
    (None: the deployment's) and the client certificate and key it presents (both or
    neither: None, no client certificate)."""
    if (client_cert is None) != (client_key is None):
        raise InvalidValueError(
            f"Service User {user_id}: give both a client certificate and its key, or neither"
        )
    _update(
        conn,
        user_id,
        tls_ca_bundle=ca_bundle,
        tls_client_cert=client_cert,
        tls_client_key=client_key,
    )


def set_max_in_flight(conn: Connection, user_id: UserId, limit: int | None) -> None:
    """Change how many of a user's alerts a worker POSTs at once (None: the deployment's
    ``delivery_max_in_flight``)."""
    _update(conn, user_id, max_in_flight=check_max_in_flight(limit))


def check_max_in_flight(limit: int | None) -> int | None:
    """``limit`` if it is a usable in-flight limit (None: the deployment's setting)."""
    if limit is not None and limit < 1:
        raise InvalidValueError(f"max_in_flight must be at least 1, got {limit}")
    return limit


def duis_versions_for(conn: Connection, user_ids: Iterable[UserId]) -> dict[UserId, DuisVersion]:
    """The DUIS version of each registered user among ``user_ids``, in one query.

    Users that are not registered are absent from the answer; the caller
    reports them (chfw.core.domain.plan_activation's ``unknown_recipients``).
    """
    by_hex = {user.hex: user for user in user_ids}
    if not by_hex:
        return {}
    rows = conn.execute(
        sa.select(service_users.c.user_id, service_users.c.duis_version).where(
            service_users.c.user_id.in_(by_hex)
        )
    )
    return {by_hex[row.user_id]: DuisVersion.parse(row.duis_version) for row in rows}
