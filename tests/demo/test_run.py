"""The demo's wave preparation: small waves are encoded before posting, large ones lazily;
a campaign's phase gets exactly its hubs' messages either way."""

from __future__ import annotations

from collections import defaultdict

import pytest

from chfw.core.domain import FirmwareVersion
from chfw.demo import run
from chfw.demo.campaign import phase_messages
from chfw.sim.estate import generate_estate
from chfw.sim.wave import InventoryStart, Wave, generate_wave


def _wave(hubs: int) -> Wave:
    estate = generate_estate(hubs, 7)
    return generate_wave(
        estate, FirmwareVersion.parse("02010300"), 7, inventory_start=InventoryStart.ESTATE
    )


def test_small_wave_is_encoded_up_front_as_the_same_bytes() -> None:
    wave = _wave(50)
    prepared = run._prepared(wave)
    assert prepared is not None
    assert [text for _, text in prepared] == [data.hex() for data in wave.payloads()]
    assert list(phase_messages(wave, prepared, None)) == [t for _, t in prepared]
    assert len(prepared) == wave.ground_truth.messages


def test_large_wave_is_encoded_while_posting(monkeypatch: pytest.MonkeyPatch) -> None:
    wave = _wave(50)
    monkeypatch.setattr(run, "PREPARE_LIMIT", wave.ground_truth.messages - 1)
    assert run._prepared(wave) is None


def _per_hub(wave: Wave, hexes: list[str]) -> dict[str, list[str]]:
    by_data = {m.data.hex(): str(m.activation.hub.device_id) for m in wave.messages()}
    out: dict[str, list[str]] = defaultdict(list)
    for text in hexes:
        out[by_data[text]].append(text)
    return dict(out)


def test_a_phase_gets_its_hubs_messages_in_their_order_either_way() -> None:
    wave = _wave(200)
    phase = {hub.device_id for hub in list(wave.estate)[::3]}
    picked = list(phase_messages(wave, run._prepared(wave), phase))
    encoded = list(phase_messages(wave, None, phase))
    assert _per_hub(wave, picked) == _per_hub(wave, encoded)
    assert {str(d) for d in phase} == set(_per_hub(wave, picked))
    everything = [m.data.hex() for m in wave.messages()]
    rest = {hub.device_id for hub in wave.estate} - phase
    both = picked + list(phase_messages(wave, None, rest))
    assert sorted(both) == sorted(everything)  # the phases together are the whole wave
