"""Judging answers and records as DUIS would, without a network: fake senders and observers."""

from __future__ import annotations

import pytest

from chfw.core.domain import DuisVersion
from chfw.exceptions import ConfigError
from chfw.uit import Answer, CaseResult, Recorded, check_target, run_cases, select
from chfw.uit.cases import Material
from chfw.uit.run import shown_target
from tests.uit.kit import DEVICE, Identity, material

V51 = DuisVersion.parse("5.1")


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Material:
    return material(Identity.create(tmp_path_factory.mktemp("dsp")))


class Book:
    """An observer that finds ``found`` (or nothing) whatever ResponseID it is asked for."""

    def __init__(self, found: Recorded | None = None) -> None:
        self.found = found
        self.asked: list[str] = []

    def recorded(self, response_id: str) -> Recorded | None:
        self.asked.append(response_id)
        return self.found


def _run(
    made: Material, case_id: str, *answers: Answer, observer: Book | None = None
) -> CaseResult:
    replies = iter(answers)
    (result,) = run_cases(
        select(V51, only=[case_id]), made, lambda body, timeout: next(replies), observer=observer
    )
    return result


class TestAnswers:
    @pytest.mark.parametrize("status", [500, 503, 302, 200])
    def test_a_hostile_alert_needs_a_4xx(self, made: Material, status: int) -> None:
        result = _run(made, "signature.tampered", Answer(status, "x"))
        assert result.passed is False

    def test_a_4xx_refusal_passes_and_shows_the_reason(self, made: Material) -> None:
        result = _run(made, "signature.tampered", Answer(400, "digest mismatch"))
        assert (result.passed, result.got, result.not_checked) == (
            True,
            "400 digest mismatch",
            None,
        )

    def test_a_replay_refused_fails(self, made: Material) -> None:
        result = _run(made, "valid.replay", Answer(204), Answer(409, "duplicate"))
        assert (result.passed, result.got) == (False, "204; 409 duplicate")

    def test_no_answer_fails_even_where_either_is_allowed(self, made: Material) -> None:
        result = _run(made, "signed-value.comment", Answer(None, "no answer within 10 s"))
        assert result.passed is False

    def test_accepted_without_an_observer_is_not_checked(self, made: Material) -> None:
        result = _run(made, "signed-value.comment", Answer(204))
        assert result.passed is True
        assert result.not_checked == "whether it was recorded once, as signed"

    def test_closing_the_connection_refuses_only_an_oversized_body(self, made: Material) -> None:
        closed = Answer(None, "no answer: the endpoint closed the connection", closed=True)
        assert _run(made, "size.oversized", closed).passed is True
        assert _run(made, "signature.tampered", closed).passed is False
        assert _run(made, "size.oversized", Answer(None, "no answer within 1 s")).passed is False


class TestRecords:
    def test_recorded_once_as_signed(self, made: Material) -> None:
        book = Book(Recorded(1, str(DEVICE), "0A0B0C0D"))
        result = _run(made, "signed-value.comment", Answer(204), observer=book)
        assert result.got == "204; recorded: once, as signed"
        assert result.passed is True

    def test_half_a_value_recorded_fails(self, made: Material) -> None:
        book = Book(Recorded(1, str(DEVICE), "0A0B"))
        result = _run(made, "signed-value.comment", Answer(204), observer=book)
        assert result.passed is False
        assert result.got.endswith("FirmwareVersion '0A0B', signed '0A0B0C0D'")

    def test_a_replay_recorded_twice_fails(self, made: Material) -> None:
        book = Book(Recorded(2, str(DEVICE), "0A0B0C0D"))
        result = _run(made, "valid.replay", Answer(204), Answer(204), observer=book)
        assert (result.passed, result.got) == (False, "204; 204; recorded: 2 times")

    def test_accepted_but_not_recorded_fails(self, made: Material) -> None:
        result = _run(made, "valid.n64", Answer(202), observer=Book())
        assert result.passed is False
        assert "accepted, yet not recorded" in result.got

    def test_refused_yet_recorded_fails(self, made: Material) -> None:
        book = Book(Recorded(1, str(DEVICE), None))
        result = _run(made, "signature.unsigned", Answer(400, "no"), observer=book)
        assert (result.passed, result.got) == (False, "400 no; yet recorded")
        assert len(book.asked) == 1


class TestTimeout:
    def test_the_budget_is_for_the_whole_case(self, made: Material) -> None:
        clock = iter([0.0, 0.0, 11.0])
        sent: list[float] = []

        def send(body: bytes, timeout: float) -> Answer:
            sent.append(timeout)
            return Answer(204)

        (result,) = run_cases(
            select(V51, only=["valid.replay"]), made, send, monotonic=lambda: next(clock)
        )
        assert sent == [10.0]
        assert result.got == "204; not sent: the case's 10 s ran out"
        assert result.passed is False

    @pytest.mark.parametrize("timeout", [0, -1, 601])
    def test_a_timeout_out_of_range(self, made: Material, timeout: float) -> None:
        with pytest.raises(ConfigError, match="timeout"):
            run_cases(select(V51), made, lambda b, t: Answer(204), timeout=timeout)


class TestTarget:
    @pytest.mark.parametrize(
        "url", ["ftp://host/", "https:///path", "127.0.0.1:8443", "file:///etc/passwd"]
    )
    def test_not_a_url_with_a_host(self, url: str) -> None:
        with pytest.raises(ConfigError, match="is not an http"):
            check_target(url, allow_http=True)

    def test_http_needs_the_flag(self) -> None:
        with pytest.raises(ConfigError, match="not https"):
            check_target("http://127.0.0.1/", allow_http=False)
        assert check_target("http://127.0.0.1/", allow_http=True) == "http://127.0.0.1/"

    def test_a_password_in_the_url_is_never_shown(self) -> None:
        url = "https://uit:s3cret@supplier.example:8443/duis?x=1"
        assert shown_target(url) == "https://uit:***@supplier.example:8443/duis?x=1"
        assert shown_target("https://supplier.example/duis") == "https://supplier.example/duis"
