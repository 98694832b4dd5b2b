"""A firmware wave: the GBCS answers every CH of an estate gives to CS06, and the ground truth.

Pure and deterministic from ``seed``: each hub gets one CS06 command counter
and a scenario — immediate success, immediate failure (no image held, hash
mismatch, activation failure: the hub reports the version it still runs), or
future-dated ("command accepted" now, a 0x8F66 success or 0x8F67 failure
alert later) — and a few messages are sent twice, as a CSP redelivering.

Messages stream out in a bounded window: a duplicate or an alert is held
back a random number of messages after the message it follows, so memory
grows with that window, not with the estate. An "accepted" always comes
before its alert, an original before its copy. The default alert delay (at
least 2,000 messages) keeps an alert out of the batches in flight with its
"accepted" for the poster's default 4 x 500.

The ground truth (``chfw.sim.truth``) is what chfw must end up with — outcomes,
alerts per recipient, firmware distribution — counted from the simulator's intent
alone, never from what the pipeline answered, so it can judge the pipeline.
"""

from __future__ import annotations

import enum
import hashlib
import heapq
import random
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from chfw.core.domain import (
    ActivationOutcome,
    ActivationResult,
    DeviceId,
    Eui64,
    FirmwareVersion,
    OutcomeSource,
    UserId,
)
from chfw.core.gbcs import (
    ALERT_ACTIVATION_FAILURE,
    ALERT_ACTIVATION_SUCCESS,
    CS06_ALERT_CODE,
    CS06_RESPONSE_CODE,
    encode_accepted,
    encode_alert,
    encode_response,
)
from chfw.exceptions import InvalidValueError
from chfw.sim.estate import INITIAL_FIRMWARE, SimHub, SyntheticEstate

if TYPE_CHECKING:
    from chfw.sim.truth import GroundTruth

#: Who sends CS06 (and so receives the answers): DCC, as in chfw's default settings.
DEFAULT_COMMANDER = UserId.parse("90-B3-D5-1F-30-00-00-02")
#: When future-dated activations execute, unless told otherwise (fixed, for reproducible bytes).
DEFAULT_SCHEDULED_AT = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)
#: The version a wave activates unless told otherwise.
DEFAULT_TARGET = FirmwareVersion(bytes.fromhex("02010300"))

_FAILURES = (
    ActivationResult.NO_IMAGE_HELD,
    ActivationResult.HASH_MISMATCH,
    ActivationResult.ACTIVATION_FAILURE,
)
_COUNTER_BASE_LIMIT = 1 << 56  # leaves room for 2^32 hubs below 2^64
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_NO_SIGNATURE = b"\x00"
_SIGNATURE_TAG = b"\x40"


class InventoryStart(enum.Enum):
    """What the inventory holds for each CH before the wave."""

    EMPTY = "empty"  # as after `chfw estate import`: no version recorded for any CH
    ESTATE = "estate"  # each CH's starting firmware (SimHub.firmware) is recorded


class MessageKind(enum.Enum):
    RESPONSE = "response"  # immediate execution outcome (CRA 02, SEQUENCE)
    ACCEPTED = "accepted"  # command accepted, future-dated (CRA 02, NULL)
    ALERT = "alert"  # future-dated outcome 0x8F66 / 0x8F67 (CRA 03)


@dataclass(frozen=True, slots=True)
class WaveMix:
    """Probabilities per hub (``duplicate``: per message) and delays, counted in messages."""

    immediate_failure: float = 0.07
    future_dated: float = 0.08
    future_failure: float = 0.15  # share of future-dated activations that fail (0x8F67)
    # no image held, hash mismatch, activation failure
    failure_weights: tuple[float, float, float] = (0.4, 0.35, 0.25)
    duplicate: float = 0.02
    duplicate_delay: tuple[int, int] = (1, 2_000)
    alert_delay: tuple[int, int] = (2_000, 50_000)
    execution_spread_seconds: int = 900  # future-dated executions spread after scheduled_at

    def __post_init__(self) -> None:
        for name in ("immediate_failure", "future_dated", "future_failure", "duplicate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InvalidValueError(f"WaveMix.{name} must be a probability, got {value}")
        if self.immediate_failure + self.future_dated > 1.0:
            raise InvalidValueError(
                "WaveMix.immediate_failure + future_dated must not exceed 1 "
                f"(got {self.immediate_failure} + {self.future_dated})"
            )
        if len(self.failure_weights) != len(_FAILURES) or min(self.failure_weights) < 0:
            raise InvalidValueError("WaveMix.failure_weights needs 3 non-negative weights")
        if sum(self.failure_weights) <= 0:
            raise InvalidValueError("WaveMix.failure_weights must not all be zero")
        for name in ("duplicate_delay", "alert_delay"):
            low, high = getattr(self, name)
            if not 1 <= low <= high:
                raise InvalidValueError(f"WaveMix.{name} must be (low, high) with 1 <= low <= high")
        if self.execution_spread_seconds < 0:
            raise InvalidValueError("WaveMix.execution_spread_seconds must not be negative")


@dataclass(frozen=True, slots=True)
class HubActivation:
    """What one CH does in the wave: the simulator's intent for it."""

    hub: SimHub
    command_counter: int
    result: ActivationResult  # the execution result; never ACCEPTED
    reported_version: FirmwareVersion  # the target on success, the running version on failure
    future_dated: bool
    alert_counter: int | None  # the hub's own counter for its alert
    executed_at: datetime | None  # the alert's executionDateTime
    duplicated: frozenset[MessageKind]  # which of its messages the CSP sends twice

    @property
    def kinds(self) -> tuple[MessageKind, ...]:
        """Its distinct messages, in the order the hub sends them."""
        if self.future_dated:
            return (MessageKind.ACCEPTED, MessageKind.ALERT)
        return (MessageKind.RESPONSE,)


@dataclass(frozen=True, slots=True)
class WaveMessage:
    """One GBCS message to post; ``copy`` marks a redelivery of bytes already sent."""

    data: bytes
    kind: MessageKind
    activation: HubActivation
    copy: bool = False
    recipient: UserId = DEFAULT_COMMANDER

    def expected_outcome(self) -> ActivationOutcome:
        """What ``chfw.core.gbcs.decode_outcome`` makes of ``data`` (recipient: a plain EUI-64)."""
        act = self.activation
        device = act.hub.device_id
        if self.kind is MessageKind.ALERT:
            assert act.alert_counter is not None  # alerts exist only for future-dated hubs
            success = act.result is ActivationResult.SUCCESS
            return ActivationOutcome(
                device_id=device,
                originator_counter=act.command_counter,
                result=act.result,
                firmware_version=act.reported_version,
                source=OutcomeSource.ALERT,
                message_code=CS06_ALERT_CODE,
                message_counter=act.alert_counter,
                recipient=Eui64(self.recipient.octets),
                occurred_at=act.executed_at,
                alert_code=ALERT_ACTIVATION_SUCCESS if success else ALERT_ACTIVATION_FAILURE,
            )
        accepted = self.kind is MessageKind.ACCEPTED
        return ActivationOutcome(
            device_id=device,
            originator_counter=act.command_counter,
            result=ActivationResult.ACCEPTED if accepted else act.result,
            firmware_version=None if accepted else act.reported_version,
            source=OutcomeSource.RESPONSE,
            message_code=CS06_RESPONSE_CODE,
            message_counter=act.command_counter,
            recipient=Eui64(self.recipient.octets),
        )


def simulator_device_key(seed: int = 0) -> ec.EllipticCurvePrivateKey:
    """The P-256 key every simulated CH signs with, derived from ``seed`` (a test key, public)."""
    digest = hashlib.sha256(f"chfw-sim-device-key:{seed}".encode()).digest()
    return ec.derive_private_key(
        int.from_bytes(digest, "big") % (_P256_ORDER - 1) + 1, ec.SECP256R1()
    )


class Wave:
    """A wave over an estate; iterate :meth:`messages` (as often as needed) to get its bytes."""

    def __init__(
        self,
        estate: SyntheticEstate,
        target_version: FirmwareVersion,
        seed: int,
        mix: WaveMix,
        *,
        inventory_start: InventoryStart,
        recipient: UserId,
        scheduled_at: datetime,
        device_key: ec.EllipticCurvePrivateKey | None,
    ) -> None:
        if scheduled_at.tzinfo is None or scheduled_at.microsecond:
            raise InvalidValueError(
                f"scheduled_at must be timezone-aware whole seconds, got {scheduled_at.isoformat()}"
            )
        if device_key is not None and not isinstance(device_key.curve, ec.SECP256R1):
            raise InvalidValueError(f"a GBCS device key is EC P-256, not {device_key.curve.name}")
        self.estate = estate
        self.target_version = target_version
        self.seed = seed
        self.mix = mix
        self.inventory_start = inventory_start
        self.recipient = recipient
        self.scheduled_at = scheduled_at.astimezone(UTC)
        self.device_key = device_key

    def __repr__(self) -> str:
        return (
            f"Wave({self.estate!r}, target={self.target_version}, seed={self.seed}, "
            f"signed={self.device_key is not None})"
        )

    # -- intent --------------------------------------------------------------------------------

    def activations(self) -> Iterator[HubActivation]:
        """Each hub's scenario, in estate order; the same on every call."""
        mix = self.mix
        rng = random.Random(f"chfw-wave:{self.seed}")
        draw = rng.random
        counter_base = rng.randrange(1, _COUNTER_BASE_LIMIT)
        future_limit = mix.future_dated
        failure_limit = mix.future_dated + mix.immediate_failure
        target = self.target_version
        for hub in self.estate:
            scenario = draw()
            future = scenario < future_limit
            failed = draw() < mix.future_failure if future else scenario < failure_limit
            if failed:
                (result,) = rng.choices(_FAILURES, weights=mix.failure_weights)
                version = hub.firmware or INITIAL_FIRMWARE
            else:
                result, version = ActivationResult.SUCCESS, target
            duplicated = []
            if draw() < mix.duplicate:
                duplicated.append(MessageKind.ACCEPTED if future else MessageKind.RESPONSE)
            alert_counter = executed_at = None
            if future:
                if draw() < mix.duplicate:
                    duplicated.append(MessageKind.ALERT)
                alert_counter = rng.randrange(1, 1 << 32)
                spread = rng.randint(0, mix.execution_spread_seconds)
                executed_at = self.scheduled_at + timedelta(seconds=spread)
            yield HubActivation(
                hub=hub,
                command_counter=counter_base + hub.index,
                result=result,
                reported_version=version,
                future_dated=future,
                alert_counter=alert_counter,
                executed_at=executed_at,
                duplicated=frozenset(duplicated),
            )

    # -- bytes ---------------------------------------------------------------------------------

    def messages(self, only: AbstractSet[DeviceId] | None = None) -> Iterator[WaveMessage]:
        """Every message in posting order, duplicates and alerts held back in a bounded window;
        with ``only``, just those of these CHs (a campaign's CSP sends a phase at a time),
        in the same way."""
        ordering = random.Random(f"chfw-wave-order:{self.seed}")
        held: list[tuple[int, int, WaveMessage]] = []
        position = 0
        sequence = 0
        dup_low, dup_high = self.mix.duplicate_delay
        alert_low, alert_high = self.mix.alert_delay

        def follow_ups(message: WaveMessage) -> None:
            # Schedules what this message, just sent at ``position - 1``, brings later.
            nonlocal sequence
            if message.copy:
                return
            act = message.activation
            if message.kind in act.duplicated:
                copy = WaveMessage(message.data, message.kind, act, True, self.recipient)
                heapq.heappush(
                    held, (position + ordering.randint(dup_low, dup_high), sequence, copy)
                )
                sequence += 1
            if message.kind is MessageKind.ACCEPTED:
                alert = self._message(act, MessageKind.ALERT)
                heapq.heappush(
                    held, (position + ordering.randint(alert_low, alert_high), sequence, alert)
                )
                sequence += 1

        for activation in self.activations():
            if only is not None and activation.hub.device_id not in only:
                continue
            while held and held[0][0] <= position:
                message = heapq.heappop(held)[2]
                yield message
                position += 1
                follow_ups(message)
            message = self._message(activation, activation.kinds[0])
            yield message
            position += 1
            follow_ups(message)
        while held:
            message = heapq.heappop(held)[2]
            yield message
            position += 1
            follow_ups(message)

    def payloads(self, only: AbstractSet[DeviceId] | None = None) -> Iterator[bytes]:
        """Just the bytes of :meth:`messages` (of these CHs only, if given)."""
        return (message.data for message in self.messages(only))

    def _message(self, act: HubActivation, kind: MessageKind) -> WaveMessage:
        device = act.hub.device_id
        if kind is MessageKind.ACCEPTED:
            data = encode_accepted(
                device_id=device, recipient=self.recipient, counter=act.command_counter
            )
        elif kind is MessageKind.RESPONSE:
            data = encode_response(
                device_id=device,
                recipient=self.recipient,
                counter=act.command_counter,
                result=act.result,
                firmware_version=act.reported_version,
            )
        else:
            assert act.alert_counter is not None
            assert act.executed_at is not None
            data = encode_alert(
                device_id=device,
                recipient=self.recipient,
                message_counter=act.alert_counter,
                originator_counter=act.command_counter,
                result=act.result,
                firmware_version=act.reported_version,
                executed_at=act.executed_at,
            )
        if self.device_key is not None:
            data = _sign(data, self.device_key)
        return WaveMessage(data, kind, act, False, self.recipient)

    # -- what chfw must do ---------------------------------------------------------------------

    @cached_property
    def ground_truth(self) -> GroundTruth:
        """Counted in one pass over :meth:`activations`, without encoding anything."""
        from chfw.sim.truth import count_ground_truth  # truth reads waves: imported late

        return count_ground_truth(self)


def generate_wave(
    estate: SyntheticEstate,
    target_version: FirmwareVersion = DEFAULT_TARGET,
    seed: int = 0,
    mix: WaveMix | None = None,
    *,
    inventory_start: InventoryStart = InventoryStart.EMPTY,
    recipient: UserId = DEFAULT_COMMANDER,
    scheduled_at: datetime = DEFAULT_SCHEDULED_AT,
    device_key: ec.EllipticCurvePrivateKey | None = None,
) -> Wave:
    """A wave activating ``target_version`` across ``estate``, reproducible from ``seed``.

    Messages are unsigned unless ``device_key`` is given (e.g.
    :func:`simulator_device_key`); signatures are deterministic (RFC 6979), so
    a signed wave is reproducible too.
    """
    return Wave(
        estate,
        target_version,
        seed,
        mix or WaveMix(),
        inventory_start=inventory_start,
        recipient=recipient,
        scheduled_at=scheduled_at,
        device_key=device_key,
    )


def _sign(unsigned: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """Replace the absent-signature octet with a deterministic ECDSA signature (r‖s).

    GBCS signs every byte after the leading DF tag through the end of the
    content, which in an unsigned message is everything but the final 00.
    """
    if unsigned[-1:] != _NO_SIGNATURE:
        raise InvalidValueError("expected an unsigned GBCS message (ending in 00)")
    body = unsigned[:-1]
    der = key.sign(body[1:], ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    r, s = decode_dss_signature(der)
    return body + _SIGNATURE_TAG + r.to_bytes(32, "big") + s.to_bytes(32, "big")
