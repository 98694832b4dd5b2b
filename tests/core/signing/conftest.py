"""Fixtures for signing tests: one development identity per session (key generation is slow-ish)."""

from __future__ import annotations

import pytest

from chfw.core.signing import PemSigner, TrustStore, create_development_identity


@pytest.fixture(scope="session")
def identity() -> tuple[bytes, bytes]:
    """(key PEM, certificate PEM) of a development signer."""
    return create_development_identity("chfw test signer")


@pytest.fixture(scope="session")
def signer(identity: tuple[bytes, bytes]) -> PemSigner:
    return PemSigner.from_pem(*identity)


@pytest.fixture(scope="session")
def trust(identity: tuple[bytes, bytes]) -> TrustStore:
    return TrustStore.from_pem(identity[1])
