"""Settings checked at start (issue 23, item 6): every numeric setting has a range, the
failing key and where it came from are named; a database URL that cannot be meant as written
says why; `chfw --version`."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from chfw import __version__
from chfw.cli import app as chfw_app
from chfw.dsp.store.errors import translated
from chfw.exceptions import ConfigError, StoreError
from chfw.shared.config import LIMITS, Settings, load_settings
from chfw.shared.db.engine import engine_for_settings


def below(name: str) -> str:
    low, _high, open_low = LIMITS[name]
    value = low if open_low else low - (1 if isinstance(getattr(Settings(), name), int) else 0.0005)
    return str(int(value) if isinstance(getattr(Settings(), name), int) else value)


class TestRanges:
    def test_the_defaults_are_in_range(self) -> None:
        Settings()  # raises if not

    def test_every_numeric_setting_has_a_range(self) -> None:
        numeric = {
            name
            for name, value in vars(Settings()).items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
        assert numeric == set(LIMITS)

    @pytest.mark.parametrize("name", sorted(LIMITS))
    def test_below_the_range_is_refused_by_name(self, name: str) -> None:
        key = f"CHFW_{name.upper()}"
        with pytest.raises(ConfigError) as raised:
            load_settings(env={key: below(name)})
        message = str(raised.value)
        assert f"setting {name} = " in message
        assert "out of range" in message
        assert key in message  # where it came from

    @pytest.mark.parametrize("name", sorted(n for n, (_l, high, _o) in LIMITS.items() if high))
    def test_above_the_range_is_refused(self, name: str) -> None:
        high = LIMITS[name][1]
        assert high is not None
        with pytest.raises(ConfigError, match=f"setting {name} = .* at most {high:g}"):
            load_settings(env={f"CHFW_{name.upper()}": str(int(high) + 1)})

    def test_the_issues_examples(self, tmp_path: Path) -> None:
        config = tmp_path / "chfw.toml"
        for line, words in (
            ("port = 70000", "port = 70000 is out of range: must be at least 1 and at most 65535"),
            ("lease_seconds = -5", "lease_seconds = -5.0 is out of range"),
            ("worker_batch_size = 0", "worker_batch_size = 0 is out of range"),
            ("retry_horizon_hours = 0", "must be more than 0"),
        ):
            config.write_text(line + "\n")
            with pytest.raises(ConfigError) as raised:
                load_settings(config, env={})
            assert words in str(raised.value)
            assert str(config) in str(raised.value)

    def test_not_a_number(self) -> None:
        with pytest.raises(ConfigError, match="out of range"):
            Settings(delivery_timeout_seconds=math.nan)
        with pytest.raises(ConfigError, match="out of range"):
            Settings(retry_max_seconds=math.inf)

    def test_retry_max_below_initial(self) -> None:
        with pytest.raises(ConfigError, match=r"retry_max_seconds .* at least retry_initial"):
            Settings(retry_initial_seconds=10, retry_max_seconds=5)


class TestDatabaseUrl:
    def test_an_unencoded_at_in_the_password_is_named(self) -> None:
        with pytest.raises(ConfigError, match=r"percent-encoded \('@' -> %40"):
            load_settings(env={"CHFW_DATABASE_URL": "postgresql://chfw:s@cret@db.internal/chfw"})

    def test_an_encoded_one_is_fine(self) -> None:
        url = "postgresql://chfw:s%40cret@db.internal/chfw"
        assert load_settings(env={"CHFW_DATABASE_URL": url}).database_url == url

    def test_unknown_host_hints_at_encoding(self) -> None:
        error = sa.exc.OperationalError("SELECT 1", {}, Exception('failed to resolve host "cret"'))
        with pytest.raises(StoreError, match="percent-encoded"), translated():
            raise error

    def test_application_name_and_pool_on_postgresql(self, pg_database_url: str) -> None:
        settings = Settings(database_url=pg_database_url, database_pool_size=3)
        engine = engine_for_settings(settings, "chfw worker")
        try:
            with engine.connect() as conn:
                name = conn.execute(sa.text("SELECT current_setting('application_name')"))
                assert name.scalar_one() == "chfw worker"
            assert engine.pool.size() == 3  # type: ignore[attr-defined]
        finally:
            engine.dispose()


class TestCli:
    def test_version(self) -> None:
        result = CliRunner().invoke(chfw_app, ["--version"])
        assert result.exit_code == 0
        assert result.stdout.strip() == f"chfw {__version__}"

    def test_serve_port_out_of_range(self) -> None:
        result = CliRunner().invoke(chfw_app, ["serve", "--port", "70000"])
        assert result.exit_code == 2
        assert "65535" in result.output
