"""`chfw inventory show`: a CH's active firmware, meter points and history."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from chfw.cli.inventory import app
from chfw.core.domain import (
    ActivationResult,
    Decision,
    DeviceId,
    FirmwareVersion,
    Fuel,
    MeterPoint,
    OutcomeEvent,
    OutcomeKey,
    OutcomeSource,
    UserId,
)
from chfw.dsp.estate_file import CspRegion
from chfw.dsp.store import estate, inventory
from tests.cli.dbcli import CliDb, cli_db

CH = DeviceId.parse("00-1D-A1-00-00-00-00-42")
IS = UserId.parse("90-B3-D5-1F-30-01-00-00")
AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def cli(
    engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> CliDb:
    with engine.begin() as conn:
        estate.add_hub(
            conn,
            CH,
            CspRegion.CENTRAL,
            [MeterPoint("1200012345678", Fuel.ELECTRICITY, import_supplier=IS)],
        )
    return cli_db(database_url, tmp_path, monkeypatch)


def record(engine: Engine) -> None:
    new = FirmwareVersion.parse("0123ABCE")
    with engine.begin() as conn:
        history_id = inventory.record_outcome(
            conn,
            key=OutcomeKey(CH, 1234, OutcomeEvent.OUTCOME),
            source=OutcomeSource.RESPONSE,
            result=ActivationResult.SUCCESS,
            decision=Decision.NEW_VERSION,
            reported_version=new,
            version_before=None,
            version_after=new,
            occurred_at=AT,
            recorded_at=AT,
            csp="csp-central",
        )
        assert history_id is not None
        inventory.set_alerts_created(conn, history_id, 1)
        inventory.set_active_firmware(conn, CH, new, AT)


class TestShow:
    """show prints what the inventory holds, as text or JSON."""

    def test_json(self, cli: CliDb, engine: Engine) -> None:
        record(engine)
        result = cli.invoke(app, "show", "001DA10000000042", "--json")
        assert result.exit_code == 0, result.output
        body = json.loads(result.stdout)
        assert body["device_id"] == str(CH)
        assert body["active_firmware"] == "0123ABCE"
        assert body["firmware_changed_at"] == AT.isoformat()
        assert body["meter_points"][0]["import_supplier"] == str(IS)
        (entry,) = body["history"]
        assert (entry["originator_counter"], entry["result"], entry["version_after"]) == (
            1234,
            "success",
            "0123ABCE",
        )
        assert entry["alerts_created"] == 1

    def test_text(self, cli: CliDb, engine: Engine) -> None:
        before = cli.invoke(app, "show", str(CH))
        record(engine)
        after = cli.invoke(app, "show", str(CH))
        assert "never reported" in before.output
        assert "Firmware history: none" in before.output
        assert "Active firmware: 0123ABCE since 2025-03-01T12:00:00+00:00" in after.output
        assert "1234" in after.output
        assert "new_version" in after.output
        assert "1200012345678" in after.output

    def test_unknown_ch(self, cli: CliDb) -> None:
        result = cli.invoke(app, "show", "00-1D-A1-00-00-00-00-99")
        assert result.exit_code == 1
        assert "00-1D-A1-00-00-00-00-99 is not in the estate" in result.output

    def test_malformed_id(self, cli: CliDb) -> None:
        result = cli.invoke(app, "show", "xyz")
        assert result.exit_code == 1
        assert "Device ID 'xyz'" in result.output
        assert "Traceback" not in result.output
