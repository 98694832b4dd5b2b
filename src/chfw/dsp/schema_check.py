"""Fail at start, not in a batch: every Service User's DUIS version must have a schema.

With official schemas configured (``duis_xsd_dir``), a version is usable only
when ``<duis_xsd_dir>/<version>/`` holds its DUIS XSD. ``chfw serve`` and
``chfw worker`` call :func:`check_user_schemas` before they start and refuse
to, naming each user and version without one; ``chfw users add|set-duis`` call
:func:`check_version` and refuse such a version. What still goes wrong at run
time (a folder removed, a version changed by another route) parks only the
alerts concerned (chfw.dsp.parked).
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from chfw.core.domain import DuisVersion
from chfw.dsp.runtime import load_schemas
from chfw.dsp.store import users
from chfw.exceptions import ConfigError
from chfw.shared.config import Settings
from chfw.shared.db.engine import reading

_USERS_NAMED = 10  # per DUIS version in the refusal; the rest are counted


def check_user_schemas(settings: Settings, engine: Engine) -> None:
    """Raise ConfigError naming every Service User whose DUIS version has no usable schema.

    Each version in use is compiled once (and kept for the process, so the
    intake's first batch does not pay for it).
    """
    schemas = load_schemas(settings)
    with reading(engine) as conn:
        registered = users.list_users(conn)
    on: dict[DuisVersion, list[str]] = {}
    for user in registered:
        on.setdefault(user.duis_version, []).append(f"{user.user_id} ({user.name})")
    problems: list[str] = []
    for version in sorted(on):
        try:
            schemas.schema_for(version)
        except ConfigError as exc:
            named = on[version]
            more = f" and {len(named) - _USERS_NAMED} more" if len(named) > _USERS_NAMED else ""
            who = "Service User" if len(named) == 1 else "Service Users"
            problems.append(
                f"{who} {', '.join(named[:_USERS_NAMED])}{more} on DUIS {version}: {exc}"
            )
    if problems:
        raise ConfigError(
            "; ".join(problems)
            + " -- install that version's schemas under duis_xsd_dir, or move the users to a "
            "version that has them (`chfw users set-duis USER_ID VERSION`)"
        )


def check_version(settings: Settings, version: DuisVersion) -> None:
    """Raise ConfigError when the configured schemas cannot validate DUIS ``version``."""
    try:
        load_schemas(settings).schema_for(version)
    except ConfigError as exc:
        raise ConfigError(f"DUIS {version} cannot be used here: {exc}") from None
