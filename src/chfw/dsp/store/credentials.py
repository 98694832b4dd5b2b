"""Bearer credentials: scrypt hashes of their secrets, and a cache of recent verifications.

Shared by every credential chfw issues (CSP intake tokens, Service User
inventory tokens). Only a scrypt hash of a secret is stored, so a copy of the
database does not let anyone authenticate. scrypt is deliberately slow (tens
of milliseconds), too slow to pay per request, so callers keep successful
verifications in a :class:`VerifiedCache` keyed by the credential's SHA-256
(:func:`cache_key`) for a short time to live.

A refused credential costs the same whether its ID names a row or not:
:func:`check_secret` hashes the secret against a dummy hash of the same
parameters when there is no stored hash, so the time an answer takes does
not tell an attacker which IDs exist.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from functools import cache

# scrypt cost: 16 MiB of memory per verification (RFC 7914 interactive-login parameters).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def new_secret() -> str:
    """A fresh random secret: 32 bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt$hash`` (salt and hash in hex)."""
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.scrypt(
        secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_secret(secret: str, encoded: str) -> bool:
    """Whether ``secret`` matches an encoded hash; False for a hash chfw cannot read."""
    try:
        scheme, n, r, p, salt, expected = encoded.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            secret.encode(),
            salt=bytes.fromhex(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected) // 2,
            maxmem=256 * 1024 * 1024,
        )
    except ValueError:
        return False
    return hmac.compare_digest(digest.hex(), expected)


@cache
def dummy_hash() -> str:
    """A hash of no one's secret, with the parameters of real ones (made once per process)."""
    return hash_secret("chfw: no such credential", salt=b"\0" * 16)


def check_secret(secret: str, encoded: str | None) -> bool:
    """:func:`verify_secret`, paying the same scrypt when there is no stored hash (``None``).

    An unknown credential ID must cost what a wrong secret for a known one
    costs; otherwise the answer's timing tells which IDs exist.
    """
    if encoded is None:
        verify_secret(secret, dummy_hash())
        return False
    return verify_secret(secret, encoded)


def cache_key(credential: str) -> bytes:
    """What a :class:`VerifiedCache` is keyed by: the credential's SHA-256, never the credential."""
    return hashlib.sha256(credential.encode()).digest()


class VerifiedCache:
    """A bounded, thread-safe LRU of recently verified credentials: key -> (owner, expiry).

    The owner is whatever names the credential's holder (a CSP name, a User
    ID as hex); :meth:`forget` drops every entry of one owner when its
    credential is rotated or disabled.
    """

    def __init__(self, size: int, ttl: float) -> None:
        self.size = size
        self.ttl = ttl
        self._entries: OrderedDict[bytes, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> str | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[1] < time.monotonic():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: bytes, owner: str) -> None:
        with self._lock:
            self._entries[key] = (owner, time.monotonic() + self.ttl)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def forget(self, owner: str) -> None:
        with self._lock:
            for key in [key for key, entry in self._entries.items() if entry[0] == owner]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
