"""Service Users: registration, lookups, DUIS version and endpoint changes."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.engine import Connection, Engine

from chfw.core.domain import DuisVersion, UserId
from chfw.dsp.store import users
from chfw.dsp.store.users import ServiceUser
from chfw.exceptions import InvalidValueError, StoreError

ALICE = UserId.parse("90-B3-D5-1F-30-01-00-00")
BOB = UserId.parse("90-B3-D5-1F-30-02-00-00")
NOBODY = UserId.parse("90-B3-D5-1F-30-09-00-00")


def make(user_id: UserId = ALICE, **changes: object) -> ServiceUser:
    values: dict[str, object] = {
        "user_id": user_id,
        "name": "Alice Energy",
        "roles": frozenset({"IS", "GS"}),
        "duis_version": DuisVersion(5, 1),
        "endpoint_url": "https://alice.example/duis",
    }
    values.update(changes)
    return ServiceUser(**values)  # type: ignore[arg-type]


class TestServiceUserValidation:
    """A ServiceUser cannot be built from values that could never work."""

    def test_roles_are_normalised(self) -> None:
        assert make(roles=frozenset({"is", " gs "})).roles == frozenset({"IS", "GS"})

    @pytest.mark.parametrize(
        ("changes", "fragment"),
        [
            ({"roles": frozenset({"XX"})}, "unknown User Role"),
            ({"roles": frozenset()}, "at least one"),
            ({"name": "  "}, "needs a name"),
            ({"endpoint_url": "ftp://alice.example/"}, "http(s)"),
            ({"endpoint_url": "https://"}, "http(s)"),
            ({"tls_client_cert": "/c.pem"}, "both"),
            ({"tls_client_key": "/k.pem"}, "both"),
            ({"max_in_flight": 0}, "at least 1"),
        ],
    )
    def test_refused(self, changes: dict[str, object], fragment: str) -> None:
        with pytest.raises(InvalidValueError, match=re.escape(fragment)):
            make(**changes)

    def test_parse_roles_from_text(self) -> None:
        assert users.parse_roles("IS, es,GS") == frozenset({"IS", "ES", "GS"})


class TestRepository:
    """Adding, reading and changing users through a connection."""

    def test_add_and_get_round_trip(self, engine: Engine) -> None:
        user = make(tls_client_cert="/c.pem", tls_client_key="/k.pem", max_in_flight=3)
        with engine.begin() as conn:
            users.add_user(conn, user)
        with engine.connect() as conn:
            assert users.get_user(conn, ALICE) == user
            assert users.get_user(conn, NOBODY) is None

    def test_add_twice_is_a_clear_error(self, engine: Engine) -> None:
        with engine.begin() as conn:
            users.add_user(conn, make())
        with engine.begin() as conn, pytest.raises(StoreError, match="already exists"):
            users.add_user(conn, make(name="Someone else"))
        with engine.connect() as conn:
            assert users.get_user(conn, ALICE) == make()

    def test_upsert_replaces(self, engine: Engine) -> None:
        with engine.begin() as conn:
            users.upsert_user(conn, make())
            users.upsert_user(conn, make(name="Alice Renamed", duis_version=DuisVersion(5, 0)))
        with engine.connect() as conn:
            found = users.list_users(conn)
        assert [(u.name, str(u.duis_version)) for u in found] == [("Alice Renamed", "5.0")]

    def test_list_is_ordered_by_user_id(self, engine: Engine) -> None:
        with engine.begin() as conn:
            users.add_user(conn, make(BOB, name="Bob Gas"))
            users.add_user(conn, make(ALICE))
        with engine.connect() as conn:
            assert [u.user_id for u in users.list_users(conn)] == [ALICE, BOB]

    def test_set_duis_and_endpoint(self, engine: Engine) -> None:
        with engine.begin() as conn:
            users.add_user(conn, make())
            users.set_duis_version(conn, ALICE, DuisVersion(5, 3))
            users.set_endpoint(conn, ALICE, "https://alice.example/alerts")
        with engine.connect() as conn:
            user = users.get_user(conn, ALICE)
        assert user is not None
        assert user.duis_version == DuisVersion(5, 3)
        assert user.endpoint_url == "https://alice.example/alerts"

    def test_changing_an_unknown_user_fails(self, engine: Engine) -> None:
        with engine.begin() as conn, pytest.raises(StoreError, match="not registered"):
            users.set_duis_version(conn, NOBODY, DuisVersion(5, 1))

    def test_duis_versions_for_leaves_unknown_users_out(self, engine: Engine) -> None:
        with engine.begin() as conn:
            users.add_user(conn, make())
            users.add_user(conn, make(BOB, duis_version=DuisVersion(5, 0)))
        with engine.connect() as conn:
            versions = users.duis_versions_for(conn, [ALICE, BOB, NOBODY])
            assert users.duis_versions_for(conn, []) == {}
            found = users.get_users(conn, (BOB, NOBODY))
        assert versions == {ALICE: DuisVersion(5, 1), BOB: DuisVersion(5, 0)}
        assert list(found) == [BOB]


class TestInFlightLimit:
    """A user's in-flight limit is optional: unset, the deployment's setting applies."""

    def test_unset_by_default_then_set_and_cleared(self, engine: Engine) -> None:
        uid = UserId.parse("90-B3-D5-1F-30-01-00-77")
        with engine.begin() as conn:
            users.add_user(
                conn, users.ServiceUser(uid, "Zed", frozenset({"IS"}), DuisVersion(5, 1))
            )
            assert _get(conn, uid).max_in_flight is None
            users.set_max_in_flight(conn, uid, 5)
            assert _get(conn, uid).max_in_flight == 5
            users.set_max_in_flight(conn, uid, None)
            assert _get(conn, uid).max_in_flight is None

    def test_limit_below_one_is_refused(self, engine: Engine) -> None:
        uid = UserId.parse("90-B3-D5-1F-30-01-00-78")
        with pytest.raises(InvalidValueError, match="at least 1"):
            users.ServiceUser(uid, "Zed", frozenset({"IS"}), DuisVersion(5, 1), max_in_flight=0)
        with engine.begin() as conn:
            users.add_user(
                conn, users.ServiceUser(uid, "Zed", frozenset({"IS"}), DuisVersion(5, 1))
            )
            with pytest.raises(InvalidValueError, match="at least 1"):
                users.set_max_in_flight(conn, uid, 0)


def _get(conn: Connection, uid: UserId) -> users.ServiceUser:
    user = users.get_user(conn, uid)
    assert user is not None
    return user


class TestPlainHttp:
    """A plain http endpoint is written only for a user marked allow_insecure_http."""

    def test_refused_without_the_mark(self, engine: Engine) -> None:
        with engine.begin() as conn:
            with pytest.raises(InvalidValueError, match=r"plain http.*--allow-insecure-http"):
                users.add_user(conn, make(endpoint_url="http://127.0.0.1:9000/"))
            users.add_user(conn, make())
            with pytest.raises(InvalidValueError, match="plain http"):
                users.set_endpoint(conn, ALICE, "http://127.0.0.1:9000/")
            with pytest.raises(InvalidValueError, match="plain http"):
                users.upsert_user(conn, make(endpoint_url="HTTP://127.0.0.1:9000/"))

    def test_kept_with_the_mark_and_cleared_by_https(self, engine: Engine) -> None:
        with engine.begin() as conn:
            users.add_user(conn, make())
            users.set_endpoint(conn, ALICE, "http://127.0.0.1:9000/", allow_insecure_http=True)
            marked = users.get_user(conn, ALICE)
            users.set_endpoint(conn, ALICE, "https://alice.example/")
            cleared = users.get_user(conn, ALICE)
        assert marked is not None
        assert marked.allow_insecure_http
        assert cleared is not None
        assert not cleared.allow_insecure_http

    def test_error_is_a_value_error(self) -> None:
        with pytest.raises(ValueError, match="use https://"):
            users.check_transport("http://h/", allow_insecure_http=False)
        assert users.check_transport("http://h/", allow_insecure_http=True) == "http://h/"
        assert users.check_transport("https://h/", allow_insecure_http=False) == "https://h/"
