"""`chfw receiver sync`: the back office catches up from a real served DSP's feed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chfw.cli import app as chfw
from chfw.core.domain import FirmwareVersion
from chfw.dsp.intake import create_app
from chfw.dsp.store import inventory_access
from chfw.shared.config import Settings
from chfw.supplier import backoffice
from chfw.supplier.feed_sync import FeedClient, FeedSyncError, load_cursor, sync
from chfw.supplier.schema import bo_feed_cursors, bo_firmware_events
from tests.cli.dbcli import CliDb, cli_db
from tests.dsp.intake.test_feed_api import activate, move_supplier, token_for
from tests.sim.live import serve
from tests.small_dsp import ALICE, BOB, CH1, CH2, Dsp, build_dsp
from tests.supplier.recorded import hub_state, record

V1 = FirmwareVersion.parse("02010300")
V2 = FirmwareVersion.parse("02010400")


@pytest.fixture
def dsp(engine: Engine) -> Iterator[Dsp]:
    """A DSP over the test database (the back office's tables sit beside its own)."""
    inventory_access.clear_cache()
    yield build_dsp(engine)
    inventory_access.clear_cache()


@pytest.fixture
def dsp_url(dsp: Dsp) -> Iterator[str]:
    with serve(create_app(Settings(), dsp.service)) as base:
        yield base


@pytest.fixture
def cli(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliDb:
    return cli_db(database_url, tmp_path, monkeypatch)


def bearer(dsp: Dsp, user: Any) -> str:
    return token_for(dsp, user)["authorization"].removeprefix("Bearer ")


def hub_state_or_none(engine: Engine, device: Any) -> Any:
    with engine.connect() as conn:
        return backoffice.hub_view(conn, device)


def run_sync(cli: CliDb, url: str, token: str, *extra: str) -> dict[str, Any]:
    result = cli.invoke(
        chfw, "receiver", "sync", "--dsp-url", url, "--token", token, "--insecure-http", "--json",
        *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    stats: dict[str, Any] = json.loads(result.stdout)
    return stats


class TestGainedHub:
    """A change of supplier: the gaining supplier's back office learns the CH and its version."""

    def test_sync_fills_a_gained_hub(self, dsp: Dsp, dsp_url: str, cli: CliDb) -> None:
        activate(dsp, CH2, V1)  # Alice's CH: Bob never hears of it
        move_supplier(dsp, CH2, "1000000000002", BOB)
        token = bearer(dsp, BOB)

        stats = run_sync(cli, dsp_url, token)

        assert stats["gained"] == 2  # CH1 (gas, never reported) and CH2
        assert (stats["applied"], stats["unknown"]) == (1, 1)
        view = hub_state(dsp.engine, CH2)
        assert view.active_version == "02010300"
        (event,) = view.history
        assert (event.version_source, event.applied, event.alert_code) == ("feed", True, "feed")

        # A second sync starts where the first stopped: nothing new, nothing filed twice.
        again = run_sync(cli, dsp_url, token)
        assert (again["entries"], again["cursor"]) == (0, stats["cursor"])

        # From the start again: everything read, nothing filed twice.
        replay = run_sync(cli, dsp_url, token, "--from-start")
        assert (replay["entries"], replay["cursor"]) == (stats["entries"], stats["cursor"])
        assert len(hub_state(dsp.engine, CH2).history) == 1

        # An alert missed later: the next sync fills it in.
        activate(dsp, CH2, V2)
        later = run_sync(cli, dsp_url, token)
        assert (later["entries"], later["applied"]) == (1, 1)
        view = hub_state(dsp.engine, CH2)
        assert view.active_version == "02010400"
        assert [e.version_source for e in view.history] == ["feed", "feed"]

    def test_through_both_command_lines(
        self, dsp: Dsp, dsp_url: str, cli: CliDb, tmp_path: Path
    ) -> None:
        """`chfw estate import` moves CH2 to Bob; `chfw receiver sync` files it for him."""
        activate(dsp, CH2, V1)
        token = bearer(dsp, BOB)
        before = run_sync(cli, dsp_url, token)
        assert hub_state_or_none(dsp.engine, CH2) is None
        moved = tmp_path / "moved.csv"
        moved.write_text(
            "device_id,csp_region,mpxn,fuel,import_supplier\n"
            f"{CH2},south,1000000000002,electricity,{BOB}\n"
        )
        imported = cli.invoke(chfw, "estate", "import", str(moved), "--no-progress")
        assert imported.exit_code == 0, imported.output
        after = run_sync(cli, dsp_url, token)
        assert (after["entries"], after["gained"], after["applied"]) == (1, 1, 1)
        assert after["cursor"] != before["cursor"]
        assert hub_state(dsp.engine, CH2).active_version == "02010300"

    def test_the_losing_supplier_learns_nothing_more(
        self, dsp: Dsp, dsp_url: str, cli: CliDb
    ) -> None:
        token = bearer(dsp, ALICE)
        run_sync(cli, dsp_url, token)
        move_supplier(dsp, CH2, "1000000000002", BOB)
        activate(dsp, CH2, V1)
        assert run_sync(cli, dsp_url, token)["entries"] == 0
        assert hub_state_or_none(dsp.engine, CH2) is None


class TestOrder:
    """The feed never moves a CH back past a newer alert the back office already has."""

    def test_newer_alert_wins(self, dsp: Dsp, dsp_url: str, cli: CliDb) -> None:
        activate(dsp, CH1, V1)
        future = datetime.now(UTC) + timedelta(days=1)
        record(dsp.engine, CH1, "0AAA0000", future)  # an alert newer than the feed's change
        run_sync(cli, dsp_url, bearer(dsp, ALICE))
        view = hub_state(dsp.engine, CH1)
        assert view.active_version == "0AAA0000"
        feed_events = [e for e in view.history if e.version_source == "feed"]
        assert [(e.firmware_version, e.applied) for e in feed_events] == [("02010300", False)]

    def test_its_own_alert_arriving_later_is_not_a_step_back(
        self, dsp: Dsp, dsp_url: str, cli: CliDb
    ) -> None:
        activate(dsp, CH1, V1)
        run_sync(cli, dsp_url, bearer(dsp, ALICE))
        # The N64 for the same activation, stamped when the DSP processed it: later.
        record(dsp.engine, CH1, "02010300", datetime.now(UTC) + timedelta(seconds=5))
        view = hub_state(dsp.engine, CH1)
        assert view.active_version == "02010300"
        feed_time = next(e.alert_time for e in view.history if e.version_source == "feed")
        assert view.changed_at == feed_time  # the version became active then, not at the alert


class TestRefusals:
    def test_https_only_without_the_flag(self, cli: CliDb) -> None:
        result = cli.invoke(
            chfw, "receiver", "sync", "--dsp-url", "http://127.0.0.1:9", "--token", "chfw_su_x"
        )
        assert result.exit_code == 1
        assert "not an https URL" in result.output

    def test_token_required(self, cli: CliDb, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("CHFW_RECEIVER_DSP_TOKEN", raising=False)
        result = cli.invoke(chfw, "receiver", "sync", "--dsp-url", "https://dsp.example")
        assert result.exit_code == 1
        assert "no DSP inventory token" in result.output

    def test_refused_token(self, dsp: Dsp, dsp_url: str, cli: CliDb) -> None:
        result = cli.invoke(
            chfw, "receiver", "sync", "--dsp-url", dsp_url, "--token", "chfw_su_nonsense",
            "--insecure-http",
        )  # fmt: skip
        assert result.exit_code == 1
        assert "refused our token (401)" in result.output


def mock_feed(answers: list[httpx.Response], seen: list[httpx.Request]) -> FeedClient:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    return FeedClient("https://dsp.test", "chfw_su_t", transport=httpx.MockTransport(handle))


ENTRY = {
    "device_id": "00-1D-A1-00-00-00-00-01",
    "firmware_version": "0102",
    "changed_at": "2026-11-25T12:00:00+00:00",
    "reason": "activation",
}


class TestHostileFeed:
    """A feed page that makes no sense files nothing and leaves the cursor where it was."""

    @pytest.mark.parametrize(
        "answer",
        [
            httpx.Response(200, text="not json"),
            httpx.Response(200, json={"changes": []}),
            httpx.Response(200, json={"changes": [dict(ENTRY, reason="sold")], "next": "c"}),
            httpx.Response(200, json={"changes": [dict(ENTRY, device_id="x")], "next": "c"}),
            httpx.Response(200, json={"changes": [dict(ENTRY, changed_at="noon")], "next": "c"}),
            httpx.Response(
                200, json={"changes": [dict(ENTRY, changed_at="2026-11-25T12:00")], "next": "c"}
            ),
            httpx.Response(200, json={"changes": [ENTRY], "next": "c" * 65}),
            httpx.Response(200, json={"changes": "all", "next": "c"}),
            httpx.Response(500, text="boom"),
            httpx.Response(400, json={"detail": "bad cursor"}),
        ],
    )
    def test_refused(self, engine: Engine, answer: httpx.Response) -> None:
        client = mock_feed([answer], [])
        with pytest.raises(FeedSyncError):
            sync(engine, client)
        with engine.connect() as conn:
            for table in (bo_firmware_events, bo_feed_cursors):
                assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0

    def test_a_refused_cursor_points_at_from_start(self, engine: Engine) -> None:
        answers = [
            httpx.Response(200, json={"changes": [], "next": "c9"}),
            httpx.Response(400, json={"detail": "the cursor is ahead of this DSP's feed"}),
        ]
        client = mock_feed(answers, [])
        sync(engine, client)
        with pytest.raises(FeedSyncError, match="--from-start"):
            sync(engine, client)

    def test_pages_resume_from_the_saved_cursor(self, engine: Engine) -> None:
        seen: list[httpx.Request] = []
        answers = [
            httpx.Response(200, json={"changes": [ENTRY], "next": "c1"}),
            httpx.Response(200, json={"changes": [], "next": "c1"}),
            httpx.Response(200, json={"changes": [], "next": "c1"}),
        ]
        client = mock_feed(answers, seen)
        first = sync(engine, client)
        assert (first.pages, first.entries, first.applied, first.cursor) == (2, 1, 1, "c1")
        sync(engine, client)
        assert [r.url.params.get("since") for r in seen] == [None, "c1", "c1"]
        with engine.connect() as conn:
            assert load_cursor(conn, "https://dsp.test") == "c1"
