"""A wave posted over real HTTP to a fake intake on 127.0.0.1 lands as the ground truth says."""

from __future__ import annotations

import pytest

from chfw.exceptions import ConfigError
from chfw.sim import RetryPolicy, generate_estate, generate_wave, post_wave
from tests.sim.fake_intake import InMemoryPipeline, fake_intake_app
from tests.sim.live import serve

CREDENTIAL = "csp-test.0123456789abcdef"


class TestLiveServer:
    """The poster against uvicorn serving the in-memory intake."""

    def test_wave_over_http_matches_ground_truth(self) -> None:
        estate = generate_estate(1500, seed=51)
        wave = generate_wave(estate, seed=52)
        pipeline = InMemoryPipeline(estate)
        with serve(fake_intake_app(pipeline, CREDENTIAL)) as url:
            stats = post_wave(wave.payloads(), url, CREDENTIAL, batch_size=200, concurrency=3)
        truth = wave.ground_truth
        assert stats.failed_messages == 0
        assert stats.messages == truth.messages
        assert dict(stats.statuses) == {k: v for k, v in truth.statuses.items() if v}
        assert dict(stats.alerts) == {k: v for k, v in truth.alerts.items() if v}
        assert pipeline.alerts_by_recipient() == truth.alerts_by_recipient
        assert pipeline.firmware_distribution() == truth.firmware_distribution

    def test_wrong_credential_stops_with_advice(self) -> None:
        estate = generate_estate(20, seed=1)
        with (
            serve(fake_intake_app(InMemoryPipeline(estate), CREDENTIAL)) as url,
            pytest.raises(ConfigError, match="401"),
        ):
            post_wave(generate_wave(estate).payloads(), url, "wrong")

    def test_nothing_listening_is_retried_then_counted_failed(self) -> None:
        with serve(fake_intake_app(InMemoryPipeline(generate_estate(1)), CREDENTIAL)) as url:
            pass  # the server is stopped again: its port now refuses connections
        stats = post_wave([b"\x00"] * 3, url, CREDENTIAL, retry=RetryPolicy(2, 0.0, 0.0))
        assert stats.failed_messages == 3
        assert stats.retry_reasons == {"ConnectError": 1}
