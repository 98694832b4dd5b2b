"""Who may read the inventory over HTTP: Service User tokens and the Responsible Supplier rule.

A token reads ``chfw_su_<user id, 16 lower-case hex>_<secret>``: the User ID
finds the row, only a scrypt hash of the secret is stored (in
``service_users.inventory_token_hash``), and the token is shown once, when
issued. Issuing a new one replaces the old. Verifications are cached like
CSP credentials (:mod:`chfw.dsp.store.credentials`), so a replaced token keeps
working in other running processes for up to :data:`CACHE_TTL_SECONDS`.

A Service User may read a CH only while it is registered as Import, Export or
Gas Supplier on one of the CH's meter points: its Responsible Suppliers and,
besides them, an Export Supplier beside an Import Supplier, which gets no N64
(chfw.core.domain.recipients) yet may still look its own CH up.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chfw.core.clock import utc_now
from chfw.core.domain import DeviceId, UserId
from chfw.dsp.store.credentials import (
    VerifiedCache,
    cache_key,
    check_secret,
    hash_secret,
    new_secret,
)
from chfw.dsp.store.estate import Hub, get_hub
from chfw.dsp.store.schema import meter_points, service_users
from chfw.exceptions import StoreError

PREFIX = "chfw_su_"
CACHE_TTL_SECONDS = 30.0
CACHE_SIZE = 4096
_TOKEN = re.compile(r"chfw_su_([0-9a-f]{16})_([A-Za-z0-9_\-]{20,100})")

_cache = VerifiedCache(CACHE_SIZE, CACHE_TTL_SECONDS)


def clear_cache() -> None:
    """Forget every cached verification (tests; or after replacing many tokens)."""
    _cache.clear()


def issue_token(conn: Connection, user_id: UserId) -> str:
    """A new inventory token for the Service User, replacing any earlier one; shown only now."""
    secret = new_secret()
    result = conn.execute(
        sa.update(service_users)
        .where(service_users.c.user_id == user_id.hex)
        .values(inventory_token_hash=hash_secret(secret), updated_at=utc_now())
    )
    if result.rowcount == 0:
        raise StoreError(f"Service User {user_id} is not registered (add it with `chfw users add`)")
    _cache.forget(user_id.hex)
    return f"{PREFIX}{user_id.hex.lower()}_{secret}"


def has_token(conn: Connection, user_id: UserId) -> bool:
    row = conn.execute(
        sa.select(service_users.c.inventory_token_hash).where(
            service_users.c.user_id == user_id.hex
        )
    ).first()
    return row is not None and row.inventory_token_hash is not None


def authenticate(conn: Connection, token: str) -> UserId | None:
    """The Service User this token belongs to, or None.

    Malformed, unknown, replaced and wrong tokens all answer None, so a
    caller cannot tell them apart (and neither can an attacker).
    """
    match = _TOKEN.fullmatch(token)
    if match is None:
        return None
    key = cache_key(token)
    cached = _cache.get(key)
    if cached is not None:
        return UserId.parse(cached)
    user_hex, secret = match[1].upper(), match[2]
    row = conn.execute(
        sa.select(service_users.c.inventory_token_hash).where(service_users.c.user_id == user_hex)
    ).first()
    # An unknown user, or one without a token, pays the same scrypt as a wrong secret
    # (check_secret), so the timing of a refusal does not tell which User IDs exist.
    if not check_secret(secret, None if row is None else row.inventory_token_hash):
        return None
    _cache.put(key, user_hex)
    return UserId.parse(user_hex)


def is_responsible_supplier(conn: Connection, user_id: UserId, device_id: DeviceId) -> bool:
    """Whether the user is Import, Export or Gas Supplier on any meter point of the CH
    (wider than the alert recipients: an Export Supplier always counts here)."""
    user = user_id.hex
    query = (
        sa.select(meter_points.c.identifier)
        .where(
            meter_points.c.device_id == device_id.hex,
            sa.or_(
                meter_points.c.import_supplier == user,
                meter_points.c.export_supplier == user,
                meter_points.c.gas_supplier == user,
            ),
        )
        .limit(1)
    )
    return conn.execute(query).first() is not None


def read_hub(conn: Connection, user_id: UserId, device_id: DeviceId) -> Hub | None:
    """The CH's inventory row if the user may read it; None for unknown and not-yours alike."""
    if not is_responsible_supplier(conn, user_id, device_id):
        return None
    return get_hub(conn, device_id)
