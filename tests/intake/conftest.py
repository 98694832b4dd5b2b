"""The DSP the intake tests post to, with the CSP credential cache cleared around each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from chfw.store import csps
from tests.dsp import Dsp, build_dsp


@pytest.fixture
def dsp(engine: Engine) -> Iterator[Dsp]:
    csps.clear_cache()
    yield build_dsp(engine)
    csps.clear_cache()
