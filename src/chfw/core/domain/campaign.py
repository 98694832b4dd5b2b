"""Firmware campaigns (issue 22): phases of a cohort, their gates, the campaign's state.

Pure: no clock, no store. A campaign moves a cohort of Communications Hubs to a
target firmware version in ordered phases (``pilot``, then waves). Each phase is
a count or a share of the cohort. Hubs are assigned to phases deterministically
from the campaign's name (:func:`assign_phases`); held hubs are never assigned.

Gates (:class:`Gates`), checked by :func:`evaluate` over each phase's counts:

- the *error threshold*: once a phase has at least ``min_sample`` outcomes
  (succeeded + failed), a failed share above the threshold pauses a running
  campaign by itself (:func:`error_crossed` gives the reason);
- the *success threshold*: a phase must have that share of its hubs succeeded
  before the next phase opens.

State machine::

    draft --start--> running --pause (by hand, or the error threshold)--> paused
                      |  ^                                                   |
                      |  +------------------resume (by hand only)-----------+
                      +--every phase passed, every hub dispatched--> completed
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass

from chfw.core.domain.values import ActivationResult, DeviceId, FirmwareVersion
from chfw.exceptions import InvalidValueError

_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,39}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
REST = "rest"


class CampaignState(enum.Enum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"


class PhaseState(enum.Enum):
    WAITING = "waiting"  # an earlier phase has not passed its success threshold yet
    OPEN = "open"  # its hubs are handed out (a paused campaign's phase stays open)
    PASSED = "passed"  # succeeded share reached the success threshold


def check_name(name: str) -> str:
    """A campaign name: 1-100 letters, digits, '.', '_' or '-' (it appears in URLs)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidValueError(
            f"campaign name {name!r} must be 1-100 letters, digits, '.', '_' or '-' "
            "and start with a letter or digit"
        )
    return name


def percent(value: float) -> str:
    """``15`` for 15.0, ``12.5`` for 12.5: how shares and thresholds are written."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True, slots=True)
class PhaseSize:
    """A phase's size: a count of hubs, a share (percent) of the cohort, or the rest."""

    count: int | None = None
    share: float | None = None  # percent of the cohort, 0 < share <= 100

    def __post_init__(self) -> None:
        if self.count is not None and self.share is not None:
            raise InvalidValueError("a phase size is a count or a share, not both")
        if self.count is not None and self.count < 1:
            raise InvalidValueError(f"a phase needs at least one hub, got {self.count}")
        if self.share is not None and not 0 < self.share <= 100:
            raise InvalidValueError(
                f"a phase share must be over 0 % and at most 100 %, got {self.share}"
            )

    @property
    def is_rest(self) -> bool:
        return self.count is None and self.share is None

    @classmethod
    def parse(cls, text: str) -> PhaseSize:
        """``500`` (hubs), ``10%`` (of the cohort) or ``rest`` (what the phases before leave)."""
        text = text.strip()
        try:
            if text.lower() == REST:
                return cls()
            if text.endswith("%"):
                return cls(share=float(text[:-1]))
            return cls(count=int(text))
        except ValueError:
            raise InvalidValueError(
                f"phase size {text!r} must be a number of hubs (500), a share (10%) or 'rest'"
            ) from None

    def resolve(self, cohort: int, left: int) -> int:
        """Hubs in this phase, for a cohort of ``cohort`` with ``left`` not yet assigned."""
        if self.count is not None:
            wanted = self.count
        elif self.share is not None:
            wanted = max(1, round(cohort * self.share / 100))
        else:
            wanted = left
        return min(wanted, left)

    def __str__(self) -> str:
        if self.count is not None:
            return str(self.count)
        if self.share is not None:
            return f"{percent(self.share)}%"
        return REST


@dataclass(frozen=True, slots=True)
class PhaseSpec:
    """One phase as planned: its label and size."""

    label: str
    size: PhaseSize

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not _LABEL.fullmatch(self.label):
            raise InvalidValueError(
                f"phase label {self.label!r} must be 1-40 letters, digits, '.', '_' or '-'"
            )

    @classmethod
    def parse(cls, text: str) -> PhaseSpec:
        """``LABEL=SIZE``, e.g. ``pilot=20``, ``wave-1=25%``, ``wave-2=rest``."""
        label, sep, size = text.partition("=")
        if not sep:
            raise InvalidValueError(f"phase {text!r} must read LABEL=SIZE, e.g. pilot=20")
        return cls(label.strip(), PhaseSize.parse(size))


def check_phases(phases: Sequence[PhaseSpec]) -> tuple[PhaseSpec, ...]:
    """At least one phase, labels unique, ``rest`` only as the last phase's size."""
    if not phases:
        raise InvalidValueError("a campaign needs at least one phase (--phase LABEL=SIZE)")
    labels = [p.label for p in phases]
    if len(set(labels)) != len(labels):
        raise InvalidValueError(f"phase labels must be unique, got {', '.join(labels)}")
    if any(p.size.is_rest for p in phases[:-1]):
        raise InvalidValueError("only the last phase may have the size 'rest'")
    return tuple(phases)


@dataclass(frozen=True, slots=True)
class Gates:
    """The error threshold (percent failed, once ``min_sample`` outcomes are in) and the
    success threshold (percent succeeded a phase needs before the next one opens)."""

    error_threshold: float = 10.0
    min_sample: int = 20
    success_threshold: float = 90.0

    def __post_init__(self) -> None:
        for name in ("error_threshold", "success_threshold"):
            value = getattr(self, name)
            if not 0 <= value <= 100:
                raise InvalidValueError(f"{name.replace('_', ' ')} must be 0-100 %, got {value}")
        if self.min_sample < 1:
            raise InvalidValueError(f"min sample must be at least 1, got {self.min_sample}")


def _rank(name: str, device: DeviceId) -> bytes:
    return hashlib.sha256(f"{name}\x00{device.hex}".encode()).digest()


def assign_phases(
    name: str,
    cohort: Iterable[DeviceId],
    phases: Sequence[PhaseSpec],
    held: Set[DeviceId] = frozenset(),
) -> list[list[DeviceId]]:
    """The hubs of each phase, in the order they are handed out.

    Deterministic: the cohort (duplicates ignored, held hubs left out) is ordered
    by SHA-256 of the campaign name and Device ID -- the same for any input order,
    a different spread for another campaign -- and cut into the phases' sizes.
    Every phase must get at least one hub and every hub a phase (else
    InvalidValueError: make the last phase ``rest``).
    """
    phases = check_phases(phases)
    ordered = sorted(set(cohort) - set(held), key=lambda d: _rank(name, d))
    if not ordered:
        raise InvalidValueError("the cohort has no hub (after holds)")
    out: list[list[DeviceId]] = []
    start = 0
    for phase in phases:
        size = phase.size.resolve(len(ordered), len(ordered) - start)
        if size == 0:
            raise InvalidValueError(
                f"phase {phase.label!r} gets no hub: the phases before it take all "
                f"{len(ordered)} of the cohort"
            )
        out.append(ordered[start : start + size])
        start += size
    if start < len(ordered):
        raise InvalidValueError(
            f"the phases cover {start} of the cohort's {len(ordered)} hubs: give the last "
            f"phase the size '{REST}'"
        )
    return out


@dataclass(frozen=True, slots=True)
class PhaseCounts:
    """One phase's hubs: ``size`` assigned and not held; of them ``dispatched`` (handed to
    a CSP), ``succeeded``, ``failed``, ``unconfirmed`` (dispatched, no outcome in time)."""

    label: str
    size: int
    dispatched: int = 0
    succeeded: int = 0
    failed: int = 0
    unconfirmed: int = 0
    held: int = 0

    @property
    def sample(self) -> int:
        return self.succeeded + self.failed


def error_crossed(phase: PhaseCounts, gates: Gates) -> str | None:
    """Why the phase stops the campaign, or None: only with ``min_sample`` outcomes in,
    and only when the failed share is *over* the threshold."""
    sample = phase.sample
    if sample < gates.min_sample or phase.failed * 100 <= gates.error_threshold * sample:
        return None
    share = phase.failed * 100 / sample
    return (
        f"error threshold: {phase.failed} of {sample} failed ({percent(share)} %) > "
        f"{percent(gates.error_threshold)} % in phase {phase.label}"
    )


def phase_passed(phase: PhaseCounts, gates: Gates) -> bool:
    """Whether the phase's succeeded share reached the success threshold (an empty phase,
    every hub held, has nothing to wait for)."""
    return phase.succeeded * 100 >= gates.success_threshold * phase.size


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A campaign's state after its gates: the phases' states, the open phase's index (its
    hubs and those of passed phases are handed out), and a reason an operator can read."""

    state: CampaignState
    reason: str
    phases: tuple[PhaseState, ...]
    open_index: int | None


def evaluate(
    state: CampaignState,
    reason: str | None,
    phases: Sequence[PhaseCounts],
    gates: Gates,
    *,
    check_errors: bool = False,
) -> Evaluation:
    """Apply the gates: a running campaign whose phases all passed with every hub dispatched
    is completed; with ``check_errors`` (when outcomes just came in), one over an error
    threshold becomes paused -- so a campaign a person resumed goes on until its next
    outcome. Draft and paused campaigns keep their state (and ``reason``); only a person
    starts or resumes one."""
    passed = [phase_passed(p, gates) for p in phases]
    open_index = next((i for i, ok in enumerate(passed) if not ok), None)
    if state is CampaignState.DRAFT:
        waiting = tuple(PhaseState.WAITING for _ in phases)
        return Evaluation(state, reason or "draft: not started", waiting, None)
    reach = len(phases) - 1 if open_index is None else open_index
    states = tuple(
        PhaseState.PASSED if ok else PhaseState.OPEN if i == reach else PhaseState.WAITING
        for i, ok in enumerate(passed)
    )
    if state is CampaignState.RUNNING:
        crossed = next(
            (r for p in phases[: reach + 1] if (r := error_crossed(p, gates)) is not None), None
        )
        if not check_errors:
            crossed = None
        if crossed is not None:
            return Evaluation(CampaignState.PAUSED, crossed, states, reach)
        if open_index is None and all(p.dispatched >= p.size for p in phases):
            return Evaluation(CampaignState.COMPLETED, "every phase passed", states, None)
        return Evaluation(state, _progress(phases, open_index, gates), states, reach)
    if state is CampaignState.COMPLETED:
        return Evaluation(state, reason or "every phase passed", states, None)
    return Evaluation(state, reason or "paused", states, reach)


def _progress(phases: Sequence[PhaseCounts], open_index: int | None, gates: Gates) -> str:
    if open_index is None:
        return "every phase passed; hubs left to dispatch"
    phase = phases[open_index]
    share = phase.succeeded * 100 / phase.size if phase.size else 100.0
    after = (
        f" before {phases[open_index + 1].label} opens"
        if open_index + 1 < len(phases)
        else " to complete"
    )
    return (
        f"phase {phase.label} open: {percent(share)} % succeeded, "
        f"{percent(gates.success_threshold)} % needed{after}"
    )


class HubOutcome(enum.Enum):
    """What an outcome means for a dispatched hub of a campaign."""

    SUCCEEDED = "succeeded"  # a success at the campaign's target version
    FAILED = "failed"  # a failure, or a success at another version


def hub_outcome(
    result: ActivationResult, version: FirmwareVersion | None, target: FirmwareVersion
) -> HubOutcome | None:
    """The campaign's reading of one CS06 outcome; None for 'command accepted' (the
    future-dated outcome comes later)."""
    if result is ActivationResult.ACCEPTED:
        return None
    if result is ActivationResult.SUCCESS and version == target:
        return HubOutcome.SUCCEEDED
    return HubOutcome.FAILED
