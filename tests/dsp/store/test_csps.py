"""CSP credentials: issued once, stored hashed, verified (and cached) on the intake path."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chfw.dsp.store import csps
from chfw.dsp.store.schema import csps as csps_table
from chfw.exceptions import InvalidValueError, StoreError
from tests.dsp.store.scrypt_spy import ScryptSpy


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    csps.clear_cache()
    yield
    csps.clear_cache()


def add(engine: Engine, name: str = "csp-north") -> str:
    with engine.begin() as conn:
        return csps.add_csp(conn, name)


class TestCredentialShape:
    """A credential names its row publicly and keeps its secret out of the database."""

    def test_format(self, engine: Engine) -> None:
        credential = add(engine)
        assert credential.startswith("chfw_csp_")
        token_id = credential[len("chfw_csp_") :][:16]
        assert int(token_id, 16) >= 0
        assert credential[len("chfw_csp_") + 16] == "_"

    def test_only_a_hash_is_stored(self, engine: Engine) -> None:
        credential = add(engine)
        secret = credential[len("chfw_csp_") + 17 :]
        with engine.connect() as conn:
            row = conn.execute(sa.select(csps_table)).one()
        assert secret not in row.token_hash
        assert row.token_hash.startswith("scrypt$")
        assert csps.verify_secret(secret, row.token_hash)
        assert not csps.verify_secret(secret + "x", row.token_hash)

    def test_two_csps_get_different_credentials(self, engine: Engine) -> None:
        assert add(engine, "a") != add(engine, "b")

    def test_unreadable_hash_never_verifies(self) -> None:
        assert not csps.verify_secret("s", "bcrypt$whatever")
        assert not csps.verify_secret("s", "scrypt$x$8$1$00$00")


class TestAuthenticate:
    """authenticate() answers the CSP's name only for an enabled CSP's exact credential."""

    def test_right_credential(self, engine: Engine) -> None:
        credential = add(engine)
        with engine.connect() as conn:
            assert csps.authenticate(conn, credential) == "csp-north"

    def test_wrong_secret(self, engine: Engine) -> None:
        credential = add(engine)
        tampered = credential[:-1] + ("A" if credential[-1] != "A" else "B")
        with engine.connect() as conn:
            assert csps.authenticate(conn, tampered) is None

    def test_unknown_token_id(self, engine: Engine) -> None:
        credential = add(engine)
        token_id = credential[9:25]
        other = "0" * 16 if token_id != "0" * 16 else "1" * 16
        with engine.connect() as conn:
            assert csps.authenticate(conn, credential.replace(token_id, other)) is None

    @pytest.mark.parametrize(
        "malformed",
        ["", "Bearer x", "chfw_csp_", "chfw_csp_zzzzzzzzzzzzzzzz_" + "a" * 43, "chfw_csp_1234_abc"],
    )
    def test_malformed(self, engine: Engine, malformed: str) -> None:
        add(engine)
        with engine.connect() as conn:
            assert csps.authenticate(conn, malformed) is None

    def test_disabled_csp_is_refused_even_after_a_cached_success(self, engine: Engine) -> None:
        credential = add(engine)
        with engine.connect() as conn:
            assert csps.authenticate(conn, credential) == "csp-north"
        with engine.begin() as conn:
            csps.disable_csp(conn, "csp-north")
        with engine.connect() as conn:
            assert csps.authenticate(conn, credential) is None
            assert [c.enabled for c in csps.list_csps(conn)] == [False]

    def test_rotate_replaces_the_credential(self, engine: Engine) -> None:
        old = add(engine)
        with engine.begin() as conn:
            csps.disable_csp(conn, "csp-north")
            new = csps.rotate(conn, "csp-north")
        with engine.connect() as conn:
            assert csps.authenticate(conn, old) is None
            assert csps.authenticate(conn, new) == "csp-north"

    def test_the_old_credential_is_accepted_for_the_grace_period(self, engine: Engine) -> None:
        old = add(engine)
        with engine.begin() as conn:
            new = csps.rotate(conn, "csp-north", grace_seconds=600)
        csps.clear_cache()
        with engine.connect() as conn:
            assert csps.authenticate(conn, old) == "csp-north"  # the CSP is switching over
            assert csps.authenticate(conn, new) == "csp-north"
        with engine.begin() as conn:  # the grace period is over
            conn.execute(
                sa.update(csps_table).values(previous_valid_until=datetime.now(UTC) - timedelta(1))
            )
        csps.clear_cache()
        with engine.connect() as conn:
            assert csps.authenticate(conn, old) is None
            assert csps.authenticate(conn, new) == "csp-north"

    def test_a_second_rotation_ends_the_first_ones_grace(self, engine: Engine) -> None:
        first = add(engine)
        with engine.begin() as conn:
            second = csps.rotate(conn, "csp-north", grace_seconds=600)
            csps.rotate(conn, "csp-north", grace_seconds=600)
        csps.clear_cache()
        with engine.connect() as conn:
            assert csps.authenticate(conn, first) is None
            assert csps.authenticate(conn, second) == "csp-north"

    def test_no_grace_for_a_disabled_csp(self, engine: Engine) -> None:
        old = add(engine)
        with engine.begin() as conn:
            csps.disable_csp(conn, "csp-north")
            csps.rotate(conn, "csp-north", grace_seconds=600)
        csps.clear_cache()
        with engine.connect() as conn:
            assert csps.authenticate(conn, old) is None

    def test_cached_success_skips_the_database(self, engine: Engine) -> None:
        credential = add(engine)
        with engine.connect() as conn:
            assert csps.authenticate(conn, credential) == "csp-north"
        # Deleting the row behind the cache's back shows the second answer came from it.
        with engine.begin() as conn:
            conn.execute(sa.delete(csps_table))
        with engine.connect() as conn:
            assert csps.authenticate(conn, credential) == "csp-north"
        csps.clear_cache()
        with engine.connect() as conn:
            assert csps.authenticate(conn, credential) is None


class TestCache:
    """The verification cache stays bounded and honours its time to live."""

    def test_bounded_lru(self) -> None:
        cache = csps._VerifiedCache(size=2, ttl=60)
        cache.put(b"a", "A")
        cache.put(b"b", "B")
        assert cache.get(b"a") == "A"  # a is now the most recent
        cache.put(b"c", "C")
        assert cache.get(b"b") is None
        assert (cache.get(b"a"), cache.get(b"c")) == ("A", "C")

    def test_expired_entries_are_misses(self) -> None:
        cache = csps._VerifiedCache(size=2, ttl=-1)
        cache.put(b"a", "A")
        assert cache.get(b"a") is None


class TestManagement:
    """Adding, listing and disabling CSPs."""

    def test_duplicate_name(self, engine: Engine) -> None:
        add(engine)
        with pytest.raises(StoreError, match="already exists"):
            add(engine)

    def test_bad_name(self, engine: Engine) -> None:
        with pytest.raises(InvalidValueError, match="CSP name"):
            add(engine, "-bad name;")

    def test_unknown_csp(self, engine: Engine) -> None:
        with engine.begin() as conn, pytest.raises(StoreError, match="not registered"):
            csps.disable_csp(conn, "nobody")
        with engine.begin() as conn, pytest.raises(StoreError, match="not registered"):
            csps.rotate(conn, "nobody")

    def test_list(self, engine: Engine) -> None:
        add(engine, "south")
        add(engine, "north")
        with engine.connect() as conn:
            listed = csps.list_csps(conn)
        assert [(c.name, c.enabled) for c in listed] == [("north", True), ("south", True)]
        assert all(c.created_at.tzinfo is not None for c in listed)


class TestSameCostRefusals:
    """Unknown ID, wrong secret and disabled CSP: the same answer after the same scrypt work."""

    def test_unknown_id_costs_what_a_wrong_secret_costs(
        self, engine: Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        credential = add(engine)
        add(engine, "csp-south")
        with engine.begin() as conn:
            csps.disable_csp(conn, "csp-south")
        token_id = credential[9:25]
        other = "0" * 16 if token_id != "0" * 16 else "1" * 16
        wrong = credential[:-1] + ("A" if credential[-1] != "A" else "B")
        unknown = credential.replace(token_id, other)
        spy = ScryptSpy(monkeypatch)
        costs = []
        with engine.connect() as conn:
            for candidate in (wrong, unknown):
                assert csps.authenticate(conn, candidate) is None
                costs.append(spy.take())
        assert len(costs[0]) == 1
        assert costs[1] == costs[0]

    def test_disabled_csp_costs_a_full_check(
        self, engine: Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        credential = add(engine)
        with engine.begin() as conn:
            csps.disable_csp(conn, "csp-north")
        spy = ScryptSpy(monkeypatch)
        with engine.connect() as conn:
            assert csps.authenticate(conn, credential) is None
        assert len(spy.take()) == 1
