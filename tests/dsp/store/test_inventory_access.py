"""Service User inventory tokens and the Responsible Supplier rule."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chfw.core.domain import DeviceId, UserId
from chfw.dsp.store import inventory_access
from chfw.dsp.store.credentials import verify_secret
from chfw.dsp.store.schema import service_users
from chfw.exceptions import StoreError
from tests.dsp.store.scrypt_spy import ScryptSpy
from tests.small_dsp import ALICE, BOB, CAROL, CH1, CH2, CH3, CH4, build_dsp


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    inventory_access.clear_cache()
    yield
    inventory_access.clear_cache()


@pytest.fixture
def dsp_engine(engine: Engine) -> Engine:
    build_dsp(engine)
    return engine


def issue(engine: Engine, user: UserId) -> str:
    with engine.begin() as conn:
        return inventory_access.issue_token(conn, user)


def who(engine: Engine, token: str) -> UserId | None:
    with engine.connect() as conn:
        return inventory_access.authenticate(conn, token)


class TestTokens:
    """A token names its user, is stored only as a hash, and a new one replaces the old."""

    def test_issued_token_authenticates_its_user(self, dsp_engine: Engine) -> None:
        token = issue(dsp_engine, BOB)
        assert token.startswith(f"chfw_su_{BOB.hex.lower()}_")
        assert who(dsp_engine, token) == BOB

    def test_only_a_hash_is_stored(self, dsp_engine: Engine) -> None:
        token = issue(dsp_engine, BOB)
        secret = token[len("chfw_su_") + 17 :]  # after "<16 hex>_"; may itself hold '_'
        with dsp_engine.connect() as conn:
            stored = conn.execute(
                sa.select(service_users.c.inventory_token_hash).where(
                    service_users.c.user_id == BOB.hex
                )
            ).scalar_one()
        assert secret not in stored
        assert verify_secret(secret, stored)

    def test_new_token_replaces_the_old(self, dsp_engine: Engine) -> None:
        old = issue(dsp_engine, BOB)
        assert who(dsp_engine, old) == BOB  # now cached
        new = issue(dsp_engine, BOB)
        assert who(dsp_engine, old) is None
        assert who(dsp_engine, new) == BOB

    def test_wrong_malformed_and_other_users_tokens_fail(self, dsp_engine: Engine) -> None:
        token = issue(dsp_engine, BOB)
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        assert who(dsp_engine, forged) is None
        assert who(dsp_engine, "Bearer " + token) is None
        assert who(dsp_engine, "") is None
        # ALICE's ID with BOB's secret: the secret is checked against ALICE's (absent) hash.
        assert who(dsp_engine, token.replace(BOB.hex.lower(), ALICE.hex.lower())) is None

    def test_unregistered_user_cannot_get_a_token(self, dsp_engine: Engine) -> None:
        with pytest.raises(StoreError, match="not registered"), dsp_engine.begin() as conn:
            inventory_access.issue_token(conn, CAROL)

    def test_has_token(self, dsp_engine: Engine) -> None:
        with dsp_engine.connect() as conn:
            assert not inventory_access.has_token(conn, ALICE)
        issue(dsp_engine, ALICE)
        with dsp_engine.connect() as conn:
            assert inventory_access.has_token(conn, ALICE)


class TestResponsibleSupplier:
    """A user reads a CH only while registered as a supplier on one of its meter points."""

    @pytest.mark.parametrize(
        ("user", "device", "expected"),
        [
            (ALICE, CH1, True),  # import supplier
            (BOB, CH1, True),  # gas supplier
            (ALICE, CH2, True),
            (BOB, CH2, False),  # CH2 is ALICE's only
            (ALICE, CH3, False),  # no meter points
            (CAROL, CH4, True),  # the rule is about registration, not Service Users
            (ALICE, CH4, False),
        ],
    )
    def test_rule(self, dsp_engine: Engine, user: UserId, device: DeviceId, expected: bool) -> None:
        with dsp_engine.connect() as conn:
            assert inventory_access.is_responsible_supplier(conn, user, device) is expected
            hub = inventory_access.read_hub(conn, user, device)
        assert (hub is not None) is expected
        if hub is not None:
            assert hub.device_id == device


class TestSameCostRefusals:
    """Unknown user, user without a token, wrong secret: one scrypt of the same cost each."""

    def test_unknown_or_tokenless_user_costs_what_a_wrong_secret_costs(
        self, dsp_engine: Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        token = issue(dsp_engine, BOB)
        secret = token[len("chfw_su_") + 17 :]
        wrong = f"chfw_su_{BOB.hex.lower()}_{'x' * 43}"
        unknown = f"chfw_su_{'0' * 16}_{secret}"
        tokenless = f"chfw_su_{ALICE.hex.lower()}_{secret}"
        spy = ScryptSpy(monkeypatch)
        costs = []
        for candidate in (wrong, unknown, tokenless):
            assert who(dsp_engine, candidate) is None
            costs.append(spy.take())
        assert len(costs[0]) == 1
        assert costs[1] == costs[0]
        assert costs[2] == costs[0]
