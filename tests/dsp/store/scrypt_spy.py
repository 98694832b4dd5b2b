"""Count the scrypt work an authentication does, with its parameters (never its timing)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from chfw.dsp.store import credentials


class ScryptSpy:
    """Wraps ``hashlib.scrypt`` as chfw.dsp.store.credentials calls it; records each call's cost."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.costs: list[tuple[Any, ...]] = []
        credentials.dummy_hash()  # made once per process: not part of any one refusal
        real = hashlib.scrypt

        def spy(password: bytes, **kwargs: Any) -> bytes:
            self.costs.append(
                (kwargs["n"], kwargs["r"], kwargs["p"], len(kwargs["salt"]), kwargs["dklen"])
            )
            return real(password, **kwargs)

        monkeypatch.setattr(credentials.hashlib, "scrypt", spy)

    def take(self) -> list[tuple[Any, ...]]:
        """The costs recorded since the last call."""
        taken, self.costs = self.costs, []
        return taken
