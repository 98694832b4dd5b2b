"""AlertReceiver without HTTP: the same checks, the clock it is given, and its configuration."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from chfw.core.domain import DeviceId
from chfw.core.signing import TrustStore
from chfw.exceptions import ConfigError
from chfw.supplier.pipeline import AlertReceiver, ReceiverConfig
from chfw.supplier.validation import AlertSchemas
from tests.supplier.helpers import CH, T0, Dsp, count_rows


class TestReceive:
    """receive() answers like the endpoint: 204, or 4xx with a reason and a rejection row."""

    def test_accept_then_duplicate(self, engine: Engine, dsp: Dsp) -> None:
        receiver = AlertReceiver(ReceiverConfig(trust=dsp.trust), engine)
        body = dsp.n64()
        first = receiver.receive(body, "10.0.0.1")
        again = receiver.receive(body, "10.0.0.1")
        assert (first.status, first.duplicate) == (204, False)
        assert (again.status, again.duplicate) == (204, True)
        assert first.facts is not None
        assert first.facts.device_id == CH
        assert count_rows(engine, "bo_alerts") == 1

    def test_refusal_records_only_a_rejection(self, engine: Engine, dsp: Dsp) -> None:
        receiver = AlertReceiver(ReceiverConfig(trust=dsp.trust), engine)
        outcome = receiver.receive(b"<x/>", "10.0.0.1")
        assert outcome.status == 400
        assert outcome.reason is not None
        assert "not signed" in outcome.reason
        assert count_rows(engine, "bo_alerts") == 0
        assert count_rows(engine, "bo_rejections") == 1

    def test_oversize_body_given_whole(self, engine: Engine, dsp: Dsp) -> None:
        receiver = AlertReceiver(ReceiverConfig(trust=dsp.trust, max_bytes=100), engine)
        assert receiver.receive(dsp.n64()).status == 413

    def test_certificate_validity_is_checked_at_the_clock_given(
        self, engine: Engine, dsp: Dsp
    ) -> None:
        certificate = next(iter(dsp.trust))
        after_expiry = certificate.not_valid_after_utc + timedelta(seconds=1)
        receiver = AlertReceiver(
            ReceiverConfig(trust=dsp.trust, clock=lambda: after_expiry), engine
        )
        outcome = receiver.receive(dsp.n64())
        assert outcome.status == 400
        assert outcome.reason is not None
        assert "expired" in outcome.reason

    def test_lookup_hook_runs_after_commit(self, engine: Engine, dsp: Dsp) -> None:
        seen: list[tuple[DeviceId, int]] = []

        def hook(device: DeviceId) -> None:  # the alert is visible to the hook's own reads
            seen.append((device, count_rows(engine, "bo_hubs")))

        receiver = AlertReceiver(ReceiverConfig(trust=dsp.trust, on_lookup_needed=hook), engine)
        receiver.receive(dsp.n999(at=T0))
        receiver.receive(dsp.n64(at=T0 + timedelta(minutes=1)))
        assert seen == [(CH, 1)]


class TestConfig:
    """A receiver that could never accept anything is refused at start-up."""

    def test_empty_trust_store(self) -> None:
        with pytest.raises(ConfigError, match="trust store is empty"):
            ReceiverConfig(trust=TrustStore([]))

    @pytest.mark.parametrize("size", [0, 2 * 1024 * 1024])
    def test_size_limit_out_of_range(self, dsp: Dsp, size: int) -> None:
        with pytest.raises(ConfigError, match="max_bytes"):
            ReceiverConfig(trust=dsp.trust, max_bytes=size)

    def test_path_must_be_absolute(self, dsp: Dsp) -> None:
        with pytest.raises(ConfigError, match="must start with '/'"):
            ReceiverConfig(trust=dsp.trust, path="alerts")

    def test_bundled_schemas_by_default(self, dsp: Dsp) -> None:
        schemas = ReceiverConfig(trust=dsp.trust).schemas
        assert isinstance(schemas, AlertSchemas)
        assert schemas.envelope is not None
