"""Assemble a running DSP from settings: signer, schemas, counters, builder, service."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy.engine import Engine

from chfw.alerts import AlertBuilder
from chfw.config import Settings
from chfw.duis import SchemaSet, bundled_schemas, official_schemas
from chfw.exceptions import ConfigError
from chfw.processing import ActivationService
from chfw.signing import PemSigner, Signer
from chfw.store.counters import CounterBlock

RESPONSE_COUNTER = "response_id"


def load_signer(settings: Settings) -> Signer:
    """The DSP's signing identity; DCC signs every alert, so it is required."""
    if not settings.signing_key or not settings.signing_cert:
        raise ConfigError(
            "signing_key and signing_cert must be set (run `chfw init`, or set "
            "CHFW_SIGNING_KEY and CHFW_SIGNING_CERT)"
        )
    for path in (settings.signing_key, settings.signing_cert):
        if not Path(path).is_file():
            raise ConfigError(f"{path} does not exist")
    check_key_permissions(Path(settings.signing_key))
    return PemSigner.from_files(settings.signing_key, settings.signing_cert)


def check_key_permissions(path: Path) -> None:
    """Refuse a private key other users can read or change, as ssh does.

    Whoever can read the DSP's signing key can forge alerts every supplier
    trusts; a key left open by a careless copy must stop the service, not
    run it. (POSIX permissions only: elsewhere nothing is checked.)
    """
    if os.name != "posix":
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"signing key {path} has permissions {mode:04o}: other users can read or change "
            f"it, so it cannot be trusted to sign alerts; run `chmod 600 {path}` (and check "
            "who has had access to it)"
        )


def load_schemas(settings: Settings) -> SchemaSet:
    if settings.duis_xsd_dir:
        return official_schemas(Path(settings.duis_xsd_dir))
    return bundled_schemas()


def build_service(settings: Settings, engine: Engine) -> ActivationService:
    counter = CounterBlock(engine, RESPONSE_COUNTER)
    builder = AlertBuilder(
        dcc_user=settings.dcc_user,
        signer=load_signer(settings),
        schemas=load_schemas(settings),
        next_counter=counter.next,
        reserve_counters=counter.reserve,
    )
    return ActivationService(engine, builder, concurrent_batches=settings.intake_concurrency)
