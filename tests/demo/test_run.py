"""The demo's wave preparation: small waves are encoded before posting, large ones lazily."""

from __future__ import annotations

import pytest

from chfw.core.domain import FirmwareVersion
from chfw.demo import run
from chfw.sim.estate import generate_estate
from chfw.sim.wave import InventoryStart, Wave, generate_wave


def _wave(hubs: int) -> Wave:
    estate = generate_estate(hubs, 7)
    return generate_wave(
        estate, FirmwareVersion.parse("02010300"), 7, inventory_start=InventoryStart.ESTATE
    )


def test_small_wave_is_encoded_up_front_as_the_same_hex() -> None:
    wave = _wave(50)
    prepared = run._prepared(wave)
    assert isinstance(prepared, list)
    assert prepared == [payload.hex() for payload in wave.payloads()]
    assert len(prepared) == wave.ground_truth.messages


def test_large_wave_is_encoded_while_posting(monkeypatch: pytest.MonkeyPatch) -> None:
    wave = _wave(50)
    monkeypatch.setattr(run, "PREPARE_LIMIT", wave.ground_truth.messages - 1)
    prepared = run._prepared(wave)
    assert not isinstance(prepared, list)
    assert list(prepared) == [payload.hex() for payload in wave.payloads()]
