"""chfw.dsp.store.credentials: secrets stored as salted scrypt hashes, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from chfw.dsp.store import credentials
from chfw.dsp.store.credentials import (
    cache_key,
    check_secret,
    dummy_hash,
    hash_secret,
    new_secret,
    verify_secret,
)
from tests.dsp.store.scrypt_spy import ScryptSpy


class Spy:
    """Wraps a function, recording every call's arguments."""

    def __init__(self, function: Any) -> None:
        self.function = function
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(args)
        return self.function(*args, **kwargs)


class TestHashing:
    """What is stored says nothing about the secret and differs for every credential."""

    def test_stored_form(self) -> None:
        secret = new_secret()
        encoded = hash_secret(secret)
        scheme, n, r, p, salt, digest = encoded.split("$")
        assert (scheme, int(n), int(r), int(p)) == ("scrypt", 2**14, 8, 1)
        assert len(bytes.fromhex(salt)) == 16
        assert len(bytes.fromhex(digest)) == 32
        assert secret not in encoded

    def test_salted(self) -> None:
        secret = new_secret()
        assert hash_secret(secret) != hash_secret(secret)

    def test_verifies_only_its_secret(self) -> None:
        secret = new_secret()
        encoded = hash_secret(secret)
        assert verify_secret(secret, encoded)
        assert not verify_secret(secret[:-1], encoded)
        assert not verify_secret(new_secret(), encoded)

    @pytest.mark.parametrize(
        "encoded",
        ["", "plain", "bcrypt$1$2$3$00$00", "scrypt$x$8$1$00$00", "scrypt$16384$8$1$zz$00"],
    )
    def test_unreadable_hash_never_verifies(self, encoded: str) -> None:
        assert not verify_secret("anything", encoded)

    def test_cache_key_is_a_digest_not_the_credential(self) -> None:
        credential = "chfw_csp_0123456789abcdef_" + new_secret()
        key = cache_key(credential)
        assert key == hashlib.sha256(credential.encode()).digest()
        assert credential.encode() not in key


class TestConstantTime:
    """A wrong secret costs the same work as a right one and is compared with compare_digest."""

    def test_comparison_uses_compare_digest(self, monkeypatch: pytest.MonkeyPatch) -> None:
        spy = Spy(hmac.compare_digest)
        monkeypatch.setattr(credentials.hmac, "compare_digest", spy)
        secret = new_secret()
        encoded = hash_secret(secret)
        expected = encoded.rsplit("$", 1)[1]
        assert verify_secret(secret, encoded)
        assert not verify_secret("wrong" + secret, encoded)
        assert len(spy.calls) == 2
        assert all(call[1] == expected for call in spy.calls)

    def test_wrong_secret_is_hashed_in_full(self, monkeypatch: pytest.MonkeyPatch) -> None:
        spy = Spy(hashlib.scrypt)
        monkeypatch.setattr(credentials.hashlib, "scrypt", spy)
        encoded = hash_secret(new_secret())
        spy.calls.clear()
        assert not verify_secret("x", encoded)
        assert len(spy.calls) == 1


class TestNoStoredHash:
    """An unknown credential ID costs one scrypt of the real parameters, and never verifies."""

    def test_missing_hash_costs_what_a_wrong_secret_costs(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        spy = ScryptSpy(monkeypatch)
        encoded = hash_secret(new_secret())
        spy.take()
        assert not check_secret("wrong", encoded)
        wrong = spy.take()
        assert not check_secret("wrong", None)
        unknown = spy.take()
        assert len(wrong) == 1
        assert unknown == wrong

    def test_dummy_hash_verifies_nothing_chfw_issues(self) -> None:
        assert not check_secret(new_secret(), None)
        assert dummy_hash().split("$")[:4] == hash_secret("x").split("$")[:4]
