"""Assemble a running DSP from settings: signer, schemas, counters, builder, service."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import structlog
from cryptography import x509
from sqlalchemy.engine import Engine

from chfw.core.clock import utc_now
from chfw.core.duis import SchemaSet, bundled_schemas, official_schemas
from chfw.core.signing import PemSigner, Signer
from chfw.dsp.alerts import AlertBuilder
from chfw.dsp.processing import ActivationService
from chfw.dsp.store.counters import CounterBlock
from chfw.exceptions import ConfigError
from chfw.shared.config import Settings

RESPONSE_COUNTER = "response_id"
EXPIRY_WARNING = dt.timedelta(days=30)
"""From this long before its notAfter, starting with the signing certificate warns."""

log = structlog.get_logger("chfw.dsp.runtime")


def load_signer(settings: Settings, *, now: dt.datetime | None = None) -> Signer:
    """The DSP's signing identity; DCC signs every alert, so it is required.

    Refused (ConfigError) when the certificate is expired or not yet valid at
    ``now``: every alert signed with it would be refused by every receiver.
    """
    if not settings.signing_key or not settings.signing_cert:
        raise ConfigError(
            "signing_key and signing_cert must be set (run `chfw init`, or set "
            "CHFW_SIGNING_KEY and CHFW_SIGNING_CERT)"
        )
    for path in (settings.signing_key, settings.signing_cert):
        if not Path(path).is_file():
            raise ConfigError(f"{path} does not exist")
    check_key_permissions(Path(settings.signing_key))
    signer = PemSigner.from_files(settings.signing_key, settings.signing_cert)
    check_certificate_dates(signer.certificate, settings.signing_cert, now)
    return signer


def check_certificate_dates(
    certificate: x509.Certificate, path: str | Path, now: dt.datetime | None = None
) -> None:
    """Refuse a signing certificate outside its validity period at ``now`` (default: now)."""
    at = now or utc_now()
    not_before, not_after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if at >= not_after:
        raise ConfigError(
            f"signing certificate {path} expired at {_iso(not_after)} (notAfter): receivers "
            "refuse alerts signed with it; get a new certificate and key (DCC PKI; "
            "`chfw keys rotate --out DIR` for development), give the certificate to every "
            "Service User, then point signing_cert and signing_key (CHFW_SIGNING_CERT, "
            "CHFW_SIGNING_KEY) at the new files -- see docs/deployment.md, key rollover"
        )
    if at < not_before:
        raise ConfigError(
            f"signing certificate {path} is not valid before {_iso(not_before)} (notBefore): "
            "receivers refuse alerts signed with it until then; keep the previous certificate "
            "configured until that time (or check this machine's clock)"
        )


def expiry_warning(
    signer: Signer, path: str | Path | None, now: dt.datetime | None = None
) -> str | None:
    """A warning (also logged) when the certificate expires within :data:`EXPIRY_WARNING`."""
    at = now or utc_now()
    not_after = signer.certificate.not_valid_after_utc
    left = not_after - at
    if left > EXPIRY_WARNING:
        return None
    log.warning(
        "signing_certificate_expires_soon",
        certificate=str(path),
        not_after=_iso(not_after),
        days_left=round(left / dt.timedelta(days=1), 1),
    )
    return (
        f"warning: signing certificate {path} expires at {_iso(not_after)} "
        f"({_days(left)}); roll over to a new key before then (docs/deployment.md, key "
        "rollover): alerts not yet delivered are re-signed with the new one"
    )


def certificate_summary(signer: Signer) -> str:
    """Issuer, serial and notAfter of the signing certificate, for logs and start-up lines."""
    return (
        f"issuer {signer.issuer_name}, serial {signer.serial_number}, "
        f"expires {_iso(signer.certificate.not_valid_after_utc)}"
    )


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _days(left: dt.timedelta) -> str:
    days = left / dt.timedelta(days=1)
    return f"in {days:.1f} days" if days >= 1 else f"in {left.total_seconds() / 3600:.1f} hours"


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


def build_service(
    settings: Settings, engine: Engine, *, signer: Signer | None = None
) -> ActivationService:
    """The intake's service; ``signer`` when already loaded, else :func:`load_signer`."""
    counter = CounterBlock(engine, RESPONSE_COUNTER)
    builder = AlertBuilder(
        dcc_user=settings.dcc_user,
        signer=signer or load_signer(settings),
        schemas=load_schemas(settings),
    )
    return ActivationService(
        engine, builder, counter, concurrent_batches=settings.intake_concurrency
    )
