"""The pure campaign core: phase assignment and gates, by example and by property."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chfw.core.domain import ActivationResult, DeviceId, FirmwareVersion
from chfw.core.domain.campaign import (
    CampaignState,
    Gates,
    HubOutcome,
    PhaseCounts,
    PhaseSize,
    PhaseSpec,
    PhaseState,
    assign_phases,
    error_crossed,
    evaluate,
    hub_outcome,
    phase_passed,
)
from chfw.exceptions import InvalidValueError

devices = st.integers(min_value=0, max_value=2**64 - 1).map(DeviceId.from_int)
cohorts = st.sets(devices, min_size=1, max_size=300)


def _phases(sizes: list[str]) -> list[PhaseSpec]:
    return [PhaseSpec(f"p{i}", PhaseSize.parse(s)) for i, s in enumerate(sizes)]


size_texts = st.one_of(
    st.integers(min_value=1, max_value=50).map(str),
    st.floats(min_value=0.5, max_value=60).map(lambda f: f"{f:.1f}%"),
)


@given(cohorts, st.lists(size_texts, max_size=4), st.data())
def test_assignment_is_a_deterministic_partition_without_held_hubs(cohort, sizes, data) -> None:
    held = data.draw(st.sets(st.sampled_from(sorted(cohort, key=lambda d: d.hex))))
    phases = _phases([*sizes, "rest"])
    total = len(cohort - held)
    left, empty = total, total == 0
    for spec in phases:
        size = spec.size.resolve(total, left)
        empty = empty or size == 0
        left -= size
    if empty:  # nothing left to assign, or earlier phases took everything
        with pytest.raises(InvalidValueError, match="no hub"):
            assign_phases("c1", cohort, phases, held)
        return
    assigned = assign_phases("c1", cohort, phases, held)
    flat = [d for phase in assigned for d in phase]
    assert len(flat) == len(set(flat))  # no hub twice
    assert set(flat) == set(cohort) - held  # every hub not held, and no held hub
    assert all(phase for phase in assigned)
    shuffled = list(cohort)
    random.Random(1).shuffle(shuffled)
    assert assign_phases("c1", [*shuffled, *shuffled[:3]], phases, held) == assigned
    left = len(flat)
    for phase, spec in zip(assigned[:-1], phases[:-1], strict=True):
        assert len(phase) == spec.size.resolve(len(flat), left)
        left -= len(phase)


def test_share_and_count_sizes() -> None:
    cohort = [DeviceId.from_int(i) for i in range(1, 201)]
    assigned = assign_phases("c", cohort, _phases(["10", "25%", "rest"]))
    assert [len(p) for p in assigned] == [10, 50, 140]


def test_phases_that_leave_hubs_over_are_refused() -> None:
    cohort = [DeviceId.from_int(i) for i in range(1, 11)]
    with pytest.raises(InvalidValueError, match="give the last phase the size 'rest'"):
        assign_phases("c", cohort, _phases(["3", "3"]))
    with pytest.raises(InvalidValueError, match="gets no hub"):
        assign_phases("c", cohort, _phases(["10", "rest"]))
    with pytest.raises(InvalidValueError, match="unique"):
        assign_phases("c", cohort, [PhaseSpec.parse("a=1"), PhaseSpec.parse("a=rest")])
    with pytest.raises(InvalidValueError, match="only the last"):
        assign_phases("c", cohort, _phases(["rest", "1"]))


@pytest.mark.parametrize("text", ["", "x", "0", "-1", "0%", "101%", "abc%"])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(InvalidValueError):
        PhaseSize.parse(text)


def test_another_campaign_spreads_hubs_otherwise() -> None:
    cohort = [DeviceId.from_int(i) for i in range(1, 101)]
    phases = _phases(["10", "rest"])
    assert assign_phases("a", cohort, phases)[0] != assign_phases("b", cohort, phases)[0]


counts = st.builds(
    lambda size, s, f: PhaseCounts("pilot", size, s + f, s, f),
    st.integers(0, 200),
    st.integers(0, 100),
    st.integers(0, 100),
).filter(lambda p: p.sample <= p.size)
gates = st.builds(
    Gates,
    st.floats(0, 100),
    st.integers(1, 50),
    st.floats(0, 100),
)


@given(counts, gates)
def test_error_threshold_only_after_min_sample_and_only_over_it(phase, gate) -> None:
    reason = error_crossed(phase, gate)
    if phase.sample < gate.min_sample:
        assert reason is None
    else:
        assert (reason is not None) == (phase.failed / phase.sample * 100 > gate.error_threshold)


@given(st.lists(counts, min_size=1, max_size=4), gates)
def test_a_phase_opens_only_after_the_ones_before_passed(phases, gate) -> None:
    result = evaluate(CampaignState.RUNNING, None, phases, gate, check_errors=True)
    open_seen = False
    for phase, state in zip(phases, result.phases, strict=True):
        if state is PhaseState.OPEN:
            assert not open_seen
            open_seen = True
        if state is PhaseState.WAITING:
            assert open_seen  # a waiting phase follows the open one
        assert (state is PhaseState.PASSED) == phase_passed(phase, gate)
    if result.state is CampaignState.COMPLETED:
        assert all(state is PhaseState.PASSED for state in result.phases)


def test_the_pilot_over_the_error_threshold_pauses_with_its_reason() -> None:
    gate = Gates(error_threshold=10, min_sample=20, success_threshold=90)
    pilot = PhaseCounts("pilot", 50, dispatched=20, succeeded=17, failed=3)
    phases = [pilot, PhaseCounts("rest", 500)]
    result = evaluate(CampaignState.RUNNING, None, phases, gate, check_errors=True)
    assert result.state is CampaignState.PAUSED
    assert result.reason == "error threshold: 3 of 20 failed (15 %) > 10 % in phase pilot"
    below = PhaseCounts("pilot", 50, dispatched=19, succeeded=16, failed=3)  # 19 < min sample
    running = CampaignState.RUNNING
    assert evaluate(running, None, [below], gate, check_errors=True).state is running
    # Resumed by hand over the threshold: it goes on until outcomes come in again.
    assert evaluate(running, None, phases, gate).state is running


def test_paused_and_draft_stay_until_a_person_acts() -> None:
    gate = Gates()
    done = PhaseCounts("pilot", 10, dispatched=10, succeeded=10)
    assert evaluate(CampaignState.PAUSED, "by hand", [done], gate).state is CampaignState.PAUSED
    assert evaluate(CampaignState.DRAFT, None, [done], gate).open_index is None
    completed = evaluate(CampaignState.RUNNING, None, [done], gate)
    assert completed.state is CampaignState.COMPLETED


def test_hub_outcome_reads_results_against_the_target() -> None:
    target = FirmwareVersion.parse("02010300")
    other = FirmwareVersion.parse("02010200")
    assert hub_outcome(ActivationResult.SUCCESS, target, target) is HubOutcome.SUCCEEDED
    assert hub_outcome(ActivationResult.SUCCESS, other, target) is HubOutcome.FAILED
    assert hub_outcome(ActivationResult.HASH_MISMATCH, other, target) is HubOutcome.FAILED
    assert hub_outcome(ActivationResult.ACCEPTED, None, target) is None
