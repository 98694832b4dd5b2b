"""Process parked outcomes: those that came for a CH before the estate had it.

The intake parks an outcome for a CH not in the estate (answered ``parked``,
kept in ``parked_outcomes``). Once an estate import adds the CH,
:func:`process_ready` submits the parked outcomes of every CH now in the
estate through the :class:`~chfw.dsp.processing.ActivationService` -- the same
decisions, firmware history and alerts as if they had arrived now, with the
CSP that sent them -- in the order they were received. Each is deleted in
the transaction that processes it (chfw.dsp.processing); outcomes of CHs still
unknown stay parked. Nothing expires: ``chfw parked list`` shows what waits.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import groupby

from sqlalchemy.engine import Engine

from chfw.dsp.processing import ActivationService, BatchTally, SubmissionResult
from chfw.dsp.store import parked_outcomes
from chfw.shared.db.sql import chunked

#: Parked outcomes submitted per batch (one transaction each).
BATCH_SIZE = 500


@dataclass(frozen=True)
class ParkedRun:
    """What :func:`process_ready` did."""

    results: tuple[SubmissionResult, ...]
    still_parked: int  # outcomes of CHs still not in the estate

    @property
    def tally(self) -> BatchTally:
        return BatchTally.of(self.results)

    def summary(self) -> dict[str, object]:
        tally = self.tally
        return {
            "processed": len(self.results),
            "statuses": dict(sorted(tally.statuses.items())),
            "decisions": dict(sorted(tally.decisions.items())),
            "alerts": {code: n for code, n in sorted(tally.alerts.items()) if n},
            "still_parked": self.still_parked,
        }

    def lines(self) -> list[str]:
        """What the CLI prints: one line for what was processed, one for what waits."""
        tally = self.tally
        lines = []
        if self.results:
            lines.append(
                f"parked outcomes processed: {len(self.results)} "
                f"({_listed(tally.statuses)}; decisions: {_listed(tally.decisions) or 'none'}); "
                f"alerts queued: {_listed(+tally.alerts) or 'none'}"
            )
            lines.extend(
                f"  {result.key}: {result.status.value}"
                + (f" ({result.error})" if result.error else "")
                for result in self.results
                if result.status.value not in ("processed", "duplicate")
            )
        if self.still_parked:
            lines.append(
                f"{self.still_parked} outcome(s) still parked: their CH is not in the estate "
                "(`chfw parked list`)"
            )
        return lines


def _listed(counts: Counter[str]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))


def ready_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return parked_outcomes.count_ready(conn)


def process_ready(engine: Engine, service: ActivationService) -> ParkedRun:
    """Submit the parked outcomes of CHs now in the estate, oldest first.

    Consecutive outcomes from one CSP go in one submission (at most
    :data:`BATCH_SIZE`), so that each keeps its CSP and the order of receipt
    holds across CSPs; one submission processes its outcomes in order, as if
    posted one after the other. An outcome processed meanwhile (sent again
    after the import) comes back ``duplicate``: no second alert.
    """
    with engine.connect() as conn:
        rows = parked_outcomes.ready(conn)
    results: list[SubmissionResult] = []
    for csp, run in groupby(rows, key=lambda row: row.csp):
        for chunk in chunked(run, BATCH_SIZE):
            results.extend(service.submit([row.payload for row in chunk], csp))
    with engine.connect() as conn:
        waiting = parked_outcomes.count(conn)
    return ParkedRun(tuple(results), waiting)
