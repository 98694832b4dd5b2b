"""CSP credentials: bearer tokens stored as scrypt hashes, verified cheaply on hot paths.

A credential reads ``chfw_csp_<token_id>_<secret>``: ``token_id`` (16 hex
digits) is public and finds the row; only a scrypt hash of ``secret`` is
stored, so a copy of the database does not let anyone post as a CSP.
The credential is shown once, when made. :func:`rotate` issues a new one and keeps
the replaced one valid for a grace period (``csp_rotation_grace_seconds``), so the CSP
can switch without refused posts.

Hashing and the verification cache are :mod:`chfw.dsp.store.credentials`'s:
successful verifications are cached in-process for :data:`CACHE_TTL_SECONDS`
(scrypt is too slow to pay per intake request). A CSP disabled
by another process (``chfw csp disable``) is therefore refused by running
intake processes within that time; in this process, at once.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chfw.core.clock import utc_now
from chfw.dsp.estate_file import CspRegion
from chfw.dsp.store.credentials import VerifiedCache as _VerifiedCache
from chfw.dsp.store.credentials import cache_key, check_secret, new_secret
from chfw.dsp.store.credentials import hash_secret as hash_secret  # re-exported: tests, callers
from chfw.dsp.store.credentials import verify_secret as verify_secret
from chfw.dsp.store.schema import csps
from chfw.exceptions import InvalidValueError, StoreError
from chfw.shared.db.sql import from_db, insert_for, to_db

PREFIX = "chfw_csp_"
CACHE_TTL_SECONDS = 30.0
CACHE_SIZE = 4096
_CREDENTIAL = re.compile(r"chfw_csp_([0-9a-f]{16})_([A-Za-z0-9_\-]{20,100})")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._\-]{0,99}")


@dataclass(frozen=True, slots=True)
class Csp:
    """A CSP allowed (or no longer allowed) to post to the intake."""

    name: str
    token_id: str
    enabled: bool
    created_at: datetime
    regions: tuple[CspRegion, ...] | None = None  # None: every region (bound to none)


_cache = _VerifiedCache(CACHE_SIZE, CACHE_TTL_SECONDS)


def clear_cache() -> None:
    """Forget every cached verification (tests; or after a mass disable)."""
    _cache.clear()


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidValueError(
            f"CSP name {name!r} must be 1-100 letters, digits, spaces, '.', '_' or '-' "
            "and start with a letter or digit"
        )
    return name


def _new_credential() -> tuple[str, str, str]:
    token_id = secrets.token_hex(8)
    secret = new_secret()
    return f"{PREFIX}{token_id}_{secret}", token_id, secret


def _regions_text(regions: Iterable[CspRegion] | None) -> str | None:
    if regions is None:
        return None
    chosen = sorted({r.value for r in regions})
    if not chosen:
        raise InvalidValueError("give at least one CSP region (north, central, south)")
    return ",".join(chosen)


def _regions_of_text(text: str | None) -> tuple[CspRegion, ...] | None:
    return None if text is None else tuple(CspRegion(r) for r in text.split(","))


def add_csp(
    conn: Connection,
    name: str,
    at: datetime | None = None,
    regions: Iterable[CspRegion] | None = None,
) -> str:
    """Register a CSP serving ``regions`` (None: every region) and return its credential:
    the only time it can be seen."""
    credential, token_id, secret = _new_credential()
    stmt = (
        insert_for(conn, csps)
        .values(
            name=_check_name(name),
            token_id=token_id,
            token_hash=hash_secret(secret),
            enabled=True,
            created_at=at or utc_now(),
            regions=_regions_text(regions),
        )
        .on_conflict_do_nothing(index_elements=["name"])
    )
    if conn.execute(stmt).rowcount == 0:
        raise StoreError(
            f"CSP {name!r} already exists; use `chfw csp rotate {name}` for a new credential"
        )
    return credential


def rotate(
    conn: Connection, name: str, *, grace_seconds: float = 0.0, now: datetime | None = None
) -> str:
    """Issue a new credential for a CSP (re-enabling it); the old one is still accepted for
    ``grace_seconds`` (0, or a CSP that was disabled: it stops working at once)."""
    credential, token_id, secret = _new_credential()
    at = now or utc_now()
    until = to_db(at + timedelta(seconds=grace_seconds))

    def kept(column: Any) -> Any:
        """The old value while it stays valid: never for a CSP that was disabled (its old
        credential must not come back with the new one) or without a grace period."""
        if grace_seconds <= 0:
            return None
        return sa.case((csps.c.enabled, column), else_=sa.null())

    result = conn.execute(
        sa.update(csps)
        .where(csps.c.name == name)
        .values(
            token_id=token_id,
            token_hash=hash_secret(secret),
            enabled=True,
            previous_token_id=kept(csps.c.token_id),
            previous_token_hash=kept(csps.c.token_hash),
            previous_valid_until=kept(sa.literal(until, type_=csps.c.previous_valid_until.type)),
        )
    )
    if result.rowcount == 0:
        raise StoreError(f"CSP {name!r} is not registered (add it with `chfw csp add`)")
    _cache.forget(name)
    return credential


def disable_csp(conn: Connection, name: str) -> None:
    """Refuse this CSP's credential from now on (other processes: within the cache TTL)."""
    result = conn.execute(sa.update(csps).where(csps.c.name == name).values(enabled=False))
    if result.rowcount == 0:
        raise StoreError(f"CSP {name!r} is not registered")
    _cache.forget(name)


def set_regions(conn: Connection, name: str, regions: Iterable[CspRegion] | None) -> None:
    """Bind the CSP to ``regions`` (None: every region)."""
    result = conn.execute(
        sa.update(csps).where(csps.c.name == name).values(regions=_regions_text(regions))
    )
    if result.rowcount == 0:
        raise StoreError(f"CSP {name!r} is not registered")


def regions_of(conn: Connection, name: str | None) -> tuple[CspRegion, ...] | None:
    """The regions the CSP serves; None for every region (or no CSP: a local tool)."""
    if name is None:
        return None
    text = conn.execute(sa.select(csps.c.regions).where(csps.c.name == name)).scalar()
    return _regions_of_text(text)


def _csp(row: Any) -> Csp:
    return Csp(
        row.name,
        row.token_id,
        bool(row.enabled),
        from_db(row.created_at),
        _regions_of_text(row.regions),
    )


def list_csps(conn: Connection) -> list[Csp]:
    return [_csp(row) for row in conn.execute(sa.select(csps).order_by(csps.c.name))]


def authenticate(conn: Connection, credential: str) -> str | None:
    """The name of the enabled CSP this credential belongs to, or None.

    Malformed, unknown, wrong and disabled credentials all answer None, so a
    caller cannot tell them apart (and neither can an attacker).
    """
    match = _CREDENTIAL.fullmatch(credential)
    if match is None:
        return None
    key = cache_key(credential)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    token_id, secret = match.groups()
    row = conn.execute(
        sa.select(csps.c.name, csps.c.token_hash, csps.c.enabled).where(csps.c.token_id == token_id)
    ).first()
    if row is None:  # a credential a rotation replaced, within its grace period
        row = conn.execute(
            sa.select(
                csps.c.name, csps.c.previous_token_hash.label("token_hash"), csps.c.enabled
            ).where(
                csps.c.previous_token_id == token_id,
                csps.c.previous_valid_until > to_db(utc_now()),
            )
        ).first()
    # The secret is hashed even for an unknown ID or a disabled CSP (check_secret), so
    # every refusal costs the same and none tells which token IDs exist.
    matches = check_secret(secret, None if row is None else row.token_hash)
    if row is None or not row.enabled or not matches:
        return None
    _cache.put(key, row.name)
    return str(row.name)
