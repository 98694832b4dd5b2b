"""Fixtures for delivery tests: a real supplier endpoint, a settable clock, test settings."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chfw.shared.config import Settings
from tests.dsp.delivery.receiver import ScriptedReceiver


class FakeClock:
    """A clock tests move by hand, so retries fall due without sleeping."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def receiver() -> Iterator[ScriptedReceiver]:
    """A running scripted receiver on 127.0.0.1 (plain HTTP)."""
    server = ScriptedReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Delivery settings for tests: short timeouts, small batches, default retry policy."""
    return Settings(
        database_url=database_url,
        delivery_timeout_seconds=5.0,
        worker_batch_size=50,
        worker_poll_seconds=0.01,
    )


@dataclass(frozen=True)
class Pki:
    """Files of a throw-away PKI: a CA, a server certificate for localhost, a client one."""

    ca: Path
    other_ca: Path  # a CA that signed nothing we use
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    san: bool = False,
) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    keys = {name: ec.generate_private_key(ec.SECP256R1()) for name in ("ca", "other", "s", "c")}
    ca = _issue("Test Supplier CA", keys["ca"], _name("Test Supplier CA"), keys["ca"], ca=True)
    other = _issue("Other CA", keys["other"], _name("Other CA"), keys["other"], ca=True)
    server = _issue("localhost", keys["s"], ca.subject, keys["ca"], san=True)
    client = _issue("chfw DSP", keys["c"], ca.subject, keys["ca"])
    _write(folder / "ca.pem", ca, None)
    _write(folder / "other-ca.pem", other, None)
    _write(folder / "server.pem", server, keys["s"])
    _write(folder / "client.pem", client, keys["c"])
    return Pki(
        ca=folder / "ca.pem",
        other_ca=folder / "other-ca.pem",
        server_cert=folder / "server.pem",
        server_key=folder / "server.key",
        client_cert=folder / "client.pem",
        client_key=folder / "client.key",
    )


@pytest.fixture
def tls_receiver(pki: Pki) -> Iterator[ScriptedReceiver]:
    """A receiver on https://localhost that also requires a client certificate from our CA."""
    server = ScriptedReceiver(
        ssl={
            "ssl_certfile": str(pki.server_cert),
            "ssl_keyfile": str(pki.server_key),
            "ssl_ca_certs": str(pki.ca),
            "ssl_cert_reqs": ssl.CERT_REQUIRED,
        }
    ).start()
    yield server
    server.stop()
