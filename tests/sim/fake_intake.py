"""A brute-force, in-memory stand-in for the intake: decode, dedupe, decide, count alerts.

It runs each message through chfw's real decoder and domain rules
(``decode_outcome``, ``plan_activation``) with a dict for an inventory, so
counting a wave with it is an independent recount of the simulator's ground
truth. ``app`` serves it as ``POST /csp/v1/messages/batch`` for HTTP tests.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from chfw.core.domain import (
    DeviceId,
    FirmwareVersion,
    OutcomeKey,
    UserId,
    plan_activation,
)
from chfw.core.gbcs import decode_outcome
from chfw.exceptions import GbcsDecodeError
from chfw.sim import InventoryStart, SimHub, SyntheticEstate


class InMemoryPipeline:
    """What chfw does with CS06 answers, minus storage, rendering and delivery."""

    def __init__(
        self, estate: SyntheticEstate, start: InventoryStart = InventoryStart.EMPTY
    ) -> None:
        self.hubs: dict[DeviceId, SimHub] = {hub.device_id: hub for hub in estate}
        self.duis = {s.user_id: s.duis_version for s in estate.suppliers}
        self.inventory: dict[DeviceId, FirmwareVersion | None] = {
            device: hub.firmware if start is InventoryStart.ESTATE else None
            for device, hub in self.hubs.items()
        }
        self.seen: set[OutcomeKey] = set()
        self.statuses: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.decisions: Counter[str] = Counter()
        self.alerts: Counter[tuple[UserId, str]] = Counter()

    def submit(self, payload: bytes | str) -> dict[str, Any]:
        try:
            outcome = decode_outcome(payload)
        except GbcsDecodeError as exc:
            self.statuses["malformed"] += 1
            return {"status": "malformed", "error": str(exc)}
        hub = self.hubs.get(outcome.device_id)
        if hub is None:
            self.statuses["unknown_device"] += 1
            return {"status": "unknown_device"}
        current = self.inventory[outcome.device_id]
        plan = plan_activation(outcome, current, hub.meter_points, self.duis)
        if outcome.key in self.seen:
            self.statuses["duplicate"] += 1
            return {"status": "duplicate", "decision": plan.decision.value, "alerts": {}}
        self.seen.add(outcome.key)
        self.statuses["processed"] += 1
        self.outcomes[outcome.result.value] += 1
        self.decisions[plan.decision.value] += 1
        self.inventory[outcome.device_id] = plan.new_version
        kinds: Counter[str] = Counter()
        for alert in plan.alerts:
            self.alerts[(alert.user_id, alert.kind.value)] += 1
            kinds[alert.kind.value] += 1
        return {"status": "processed", "decision": plan.decision.value, "alerts": dict(kinds)}

    def alerts_by_recipient(self) -> dict[str, dict[str, int]]:
        return {
            str(user): {kind: self.alerts[(user, kind)] for kind in ("N64", "N999")}
            for user in self.duis
        }

    def firmware_distribution(self) -> dict[str | None, int]:
        counts = Counter(None if v is None else v.hex for v in self.inventory.values())
        return dict(counts)


def fake_intake_app(pipeline: InMemoryPipeline, credential: str) -> Starlette:
    """The batch endpoint of the intake, answering like chfw's (status per message, counts)."""

    async def batch(request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {credential}":
            return JSONResponse({"detail": "credential not recognised"}, status_code=401)
        body = await request.json()
        results = [pipeline.submit(message) for message in body["messages"]]
        counts = Counter(result["status"] for result in results)
        return JSONResponse({"results": results, "counts": dict(counts)})

    return Starlette(routes=[Route("/csp/v1/messages/batch", batch, methods=["POST"])])
