"""The integration-test kit for suppliers' N64 handling (``chfw uit``), issue 25.

A supplier points it at its own DUIS alert endpoint in a test environment: it
acts as the DSP, sends genuine and hostile DCC alerts signed with the identity
that environment trusts, and judges each answer as DUIS expects
(:mod:`~chfw.uit.cases`, :mod:`~chfw.uit.run`), with a report for people and
machines (:mod:`~chfw.uit.report`). docs/uit.md is the supplier's guide.
"""

from chfw.uit.cases import CASES, GROUPS, Case, Expect, Material, select
from chfw.uit.documents import AlertMaker
from chfw.uit.observe import ChfwBackOffice, Observer, Recorded
from chfw.uit.report import CaseResult, Report
from chfw.uit.run import Answer, HttpSender, check_target, judge, run, run_cases

__all__ = [
    "CASES",
    "GROUPS",
    "AlertMaker",
    "Answer",
    "Case",
    "CaseResult",
    "ChfwBackOffice",
    "Expect",
    "HttpSender",
    "Material",
    "Observer",
    "Recorded",
    "Report",
    "check_target",
    "judge",
    "run",
    "run_cases",
    "select",
]
