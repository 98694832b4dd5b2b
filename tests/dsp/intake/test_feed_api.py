"""GET /su/v1/firmware: the catch-up feed, through the real intake app over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from itertools import count
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chfw.core.domain import ActivationResult, DeviceId, Eui64, FirmwareVersion, Fuel, MeterPoint
from chfw.core.gbcs import encode_response
from chfw.dsp.estate_file import CspRegion, EstateRecord
from chfw.dsp.intake import create_app
from chfw.dsp.intake.feed_api import decode_cursor, encode_cursor
from chfw.dsp.store import estate, inventory_access
from chfw.dsp.store.schema import firmware_history
from chfw.shared.config import Settings
from tests.sim.live import serve
from tests.small_dsp import ALICE, BOB, CH1, CH2, CH3, Dsp, build_dsp

V1 = FirmwareVersion.parse("02010300")
V2 = FirmwareVersion.parse("02010400")
V3 = FirmwareVersion.parse("02010500")
SENDER = Eui64.parse("90-B3-D5-1F-30-01-00-00")
_counter = count(100)


@pytest.fixture
def dsp(engine: Engine) -> Iterator[Dsp]:
    inventory_access.clear_cache()
    yield build_dsp(engine)
    inventory_access.clear_cache()


@pytest.fixture
def client(dsp: Dsp) -> Iterator[httpx.Client]:
    with serve(create_app(Settings(), dsp.service)) as base, httpx.Client(base_url=base) as c:
        yield c


def token_for(dsp: Dsp, user: Any) -> dict[str, str]:
    with dsp.engine.begin() as conn:
        token = inventory_access.issue_token(conn, user)
    return {"authorization": f"Bearer {token}"}


def activate(dsp: Dsp, device: DeviceId, version: FirmwareVersion) -> None:
    message = encode_response(
        device_id=device,
        recipient=SENDER,
        counter=next(_counter),
        result=ActivationResult.SUCCESS,
        firmware_version=version,
    )
    (result,) = dsp.service.submit([message], "north-csp")
    assert result.decision == "new_version", result


def move_supplier(dsp: Dsp, device: DeviceId, mpan: str, supplier: Any) -> None:
    """An estate import that registers ``supplier`` as the MPAN's Import Supplier."""
    point = MeterPoint(mpan, Fuel.ELECTRICITY, import_supplier=supplier)
    with dsp.engine.begin() as conn:
        estate.import_records(conn, [EstateRecord(device, CspRegion.SOUTH, point)])


def read_all(
    client: httpx.Client, headers: dict[str, str], since: str | None = None, **params: Any
) -> tuple[list[dict[str, Any]], str]:
    """Every entry from ``since`` on, page by page; and the last cursor."""
    entries: list[dict[str, Any]] = []
    while True:
        query = dict(params, **({"since": since} if since else {}))
        response = client.get("/su/v1/firmware", headers=headers, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        entries += body["changes"]
        if not body["changes"]:
            return entries, body["next"]
        since = body["next"]


def by_device(entries: list[dict[str, Any]]) -> dict[str, list[tuple[str, str | None]]]:
    out: dict[str, list[tuple[str, str | None]]] = {}
    for e in entries:
        out.setdefault(e["device_id"], []).append((e["reason"], e["firmware_version"]))
    return out


class TestChangeOfSupplier:
    """The gaining user sees the CH at its current version; the losing user stops seeing it."""

    def test_gain_and_loss(self, dsp: Dsp, client: httpx.Client) -> None:
        alice, bob = token_for(dsp, ALICE), token_for(dsp, BOB)
        activate(dsp, CH2, V1)
        activate(dsp, CH2, V2)
        before, alice_cursor = read_all(client, alice)
        assert by_device(before)["00-1D-A1-00-00-00-00-02"] == [
            ("gained", None),
            ("activation", "02010300"),
            ("activation", "02010400"),
        ]
        _, bob_cursor = read_all(client, bob)

        move_supplier(dsp, CH2, "1000000000002", BOB)

        news, _ = read_all(client, bob, bob_cursor)
        assert [(e["device_id"], e["reason"], e["firmware_version"]) for e in news] == [
            ("00-1D-A1-00-00-00-00-02", "gained", "02010400")
        ]
        assert news[0]["changed_at"] is not None
        # From the beginning too, Bob's CH2 starts at the gain: nothing before it is his.
        everything, _ = read_all(client, bob)
        assert by_device(everything)["00-1D-A1-00-00-00-00-02"] == [("gained", "02010400")]
        # Alice lost it: it is gone from her feed, from her cursor and from the beginning.
        assert read_all(client, alice, alice_cursor)[0] == []
        assert "00-1D-A1-00-00-00-00-02" not in by_device(read_all(client, alice)[0])
        # Later changes reach the new supplier only.
        activate(dsp, CH2, V3)
        assert by_device(read_all(client, bob)[0])["00-1D-A1-00-00-00-00-02"] == [
            ("gained", "02010400"),
            ("activation", "02010500"),
        ]
        assert read_all(client, alice, alice_cursor)[0] == []

    def test_regained_ch_starts_again_at_the_new_gain(self, dsp: Dsp, client: httpx.Client) -> None:
        alice = token_for(dsp, ALICE)
        activate(dsp, CH2, V1)
        move_supplier(dsp, CH2, "1000000000002", BOB)
        activate(dsp, CH2, V2)  # while Bob has it
        move_supplier(dsp, CH2, "1000000000002", ALICE)
        entries, _ = read_all(client, alice)
        assert by_device(entries)["00-1D-A1-00-00-00-00-02"] == [("gained", "02010400")]

    def test_a_ch_without_suppliers_appears_to_no_one(self, dsp: Dsp, client: httpx.Client) -> None:
        activate(dsp, CH3, V1)
        for user in (ALICE, BOB):
            entries, _ = read_all(client, token_for(dsp, user))
            assert "00-1D-A1-00-00-00-00-03" not in by_device(entries)

    def test_each_user_sees_only_its_own_chs(self, dsp: Dsp, client: httpx.Client) -> None:
        activate(dsp, CH1, V1)
        activate(dsp, CH2, V1)
        bob = by_device(read_all(client, token_for(dsp, BOB))[0])
        assert set(bob) == {"00-1D-A1-00-00-00-00-01"}  # gas supplier of CH1 only
        alice = by_device(read_all(client, token_for(dsp, ALICE))[0])
        assert set(alice) == {"00-1D-A1-00-00-00-00-01", "00-1D-A1-00-00-00-00-02"}


class TestPaging:
    """Pages of any size read the same entries, in the same order, each once."""

    def test_small_pages_equal_one_big_page(self, dsp: Dsp, client: httpx.Client) -> None:
        for version in ("02010301", "02010302", "02010303", "02010304"):
            activate(dsp, CH1, FirmwareVersion.parse(version))
            activate(dsp, CH2, FirmwareVersion.parse(version))
        alice = token_for(dsp, ALICE)
        whole, _ = read_all(client, alice, limit=5000)
        for size in (1, 2, 3, 7):
            paged, _ = read_all(client, alice, limit=size)
            assert paged == whole, size
        assert len(whole) == 2 + 8, whole  # two gains, eight activations
        assert [e["firmware_version"] for e in whole if e["device_id"].endswith("01")][-1] == (
            "02010304"
        )

    def test_a_caught_up_cursor_reads_nothing_until_something_happens(
        self, dsp: Dsp, client: httpx.Client
    ) -> None:
        alice = token_for(dsp, ALICE)
        _, cursor = read_all(client, alice)
        again = client.get("/su/v1/firmware", headers=alice, params={"since": cursor}).json()
        assert again == {"changes": [], "next": cursor}
        activate(dsp, CH1, V1)
        news, _ = read_all(client, alice, cursor)
        assert [(e["reason"], e["firmware_version"]) for e in news] == [("activation", "02010300")]


class TestRefusals:
    def test_garbage_cursors(self, dsp: Dsp, client: httpx.Client) -> None:
        alice = token_for(dsp, ALICE)
        for bad in ("", "0", "abc", "f1.", "f1.!!!!!!!!!!!", "f1.AAAAAAAAAAB", "x" * 64):
            response = client.get("/su/v1/firmware", headers=alice, params={"since": bad})
            assert response.status_code == 400, bad
        too_long = client.get(
            "/su/v1/firmware", headers=alice, params={"since": "f1." + "A" * 4000}
        )
        assert too_long.status_code == 400
        assert len(too_long.json()["detail"]) < 100  # the garbage is not echoed whole

    def test_cursor_ahead_of_the_feed(self, dsp: Dsp, client: httpx.Client) -> None:
        response = client.get(
            "/su/v1/firmware", headers=token_for(dsp, ALICE), params={"since": encode_cursor(10**9)}
        )
        assert response.status_code == 400
        assert "ahead" in response.json()["detail"]

    def test_token_required(self, dsp: Dsp, client: httpx.Client) -> None:
        assert client.get("/su/v1/firmware").status_code == 401
        bad = {"authorization": f"Bearer {dsp.credential}"}
        assert client.get("/su/v1/firmware", headers=bad).status_code == 401

    def test_limit_bounds(self, dsp: Dsp, client: httpx.Client) -> None:
        alice = token_for(dsp, ALICE)
        for limit in (0, -1, 5001, "x"):
            response = client.get("/su/v1/firmware", headers=alice, params={"limit": limit})
            assert response.status_code == 422, limit


class TestCursor:
    def test_round_trip(self) -> None:
        for position in (0, 1, 255, 2**40, 2**63 - 1):
            assert decode_cursor(encode_cursor(position)) == position

    def test_only_our_spelling(self) -> None:
        cursor = encode_cursor(5)
        with pytest.raises(ValueError, match="not a feed cursor"):
            decode_cursor(cursor.lower() if cursor != cursor.lower() else cursor + "A")


def test_change_committed_late_with_a_lower_id_is_not_skipped(
    dsp: Dsp, client: httpx.Client, db_backend: str
) -> None:
    """PostgreSQL: a history row inserted first (lower id) but committed after a later one
    that a reader has already passed still reaches that reader."""
    if db_backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: ids commit in order")
    alice = token_for(dsp, ALICE)
    _, cursor = read_all(client, alice)
    late = dsp.engine.connect()
    try:
        late.begin()
        late.execute(
            sa.insert(firmware_history).values(
                device_id=CH1.hex,
                originator_counter="999999",
                event="outcome",
                source="response",
                result="success",
                decision="new_version",
                reported_version=V3.hex,
                version_before=None,
                version_after=V3.hex,
                occurred_at=datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
                recorded_at=datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
                sender=SENDER.hex,
            )
        )
        activate(dsp, CH2, V1)  # a higher id, committed first
        first, cursor = read_all(client, alice, cursor)
        assert [(e["device_id"], e["firmware_version"]) for e in first] == [
            ("00-1D-A1-00-00-00-00-02", "02010300")
        ]
        late.commit()
    finally:
        late.close()
    second, _ = read_all(client, alice, cursor)
    assert [(e["device_id"], e["firmware_version"]) for e in second] == [
        ("00-1D-A1-00-00-00-00-01", "02010500")
    ]


def test_a_gain_racing_an_activation_ends_at_the_activations_version(
    dsp: Dsp, client: httpx.Client, db_backend: str
) -> None:
    """PostgreSQL: an import moving CH2 to Bob holds the hub's lock while an activation for
    it is processed. Whichever commits first, Bob's feed names CH2 once as gained and ends
    at the version the hub really has (the gain carries it, or the activation follows)."""
    if db_backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: nothing races")
    activate(dsp, CH2, V1)
    bob = token_for(dsp, BOB)
    point = MeterPoint("1000000000002", Fuel.ELECTRICITY, import_supplier=BOB)
    importing = dsp.engine.connect()
    try:
        importing.begin()
        estate.import_records(importing, [EstateRecord(CH2, CspRegion.SOUTH, point)])
        pool = ThreadPoolExecutor(1)
        racer = pool.submit(activate, dsp, CH2, V2)  # waits for the hub's lock, or comes after
        importing.commit()
    finally:
        importing.close()
    racer.result()  # the activation was processed (decided new_version)
    pool.shutdown()
    entries = by_device(read_all(client, bob)[0])["00-1D-A1-00-00-00-00-02"]
    assert entries[0][0] == "gained"
    assert [reason for reason, _ in entries].count("gained") == 1
    assert entries[-1][1] == "02010400"
