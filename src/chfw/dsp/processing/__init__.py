"""Process CSP submissions in one transaction: decode, decide, inventory + history, alerts.

This is the application service behind the intake API (and the CLI and
benchmarks): the only place that joins the pure core to the store.

- :mod:`.service` -- :class:`ActivationService`, what the intake calls;
- :mod:`.batch` -- one batch's read, decisions, alerts and write;
- :mod:`.results` -- what each submission came to, a batch's tally and log line.
"""

from chfw.dsp.processing.batch import content_digest
from chfw.dsp.processing.results import BatchTally, Status, SubmissionResult
from chfw.dsp.processing.service import ActivationService
from chfw.dsp.processing.steps import CounterSource

__all__ = [
    "ActivationService",
    "BatchTally",
    "CounterSource",
    "Status",
    "SubmissionResult",
    "content_digest",
]
