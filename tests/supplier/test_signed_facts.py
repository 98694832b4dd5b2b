"""What is recorded is what was signed: digest-preserving rewrites never change the facts.

The class of hole behind the SAML comment-injection advisories: canonical form
drops comments (and turns CDATA and character references into text), so a
signed value can be split without touching its digest, and a reader of the
posted tree sees only the first half. Every rewrite here is applied to real
signed alerts; each result is refused or gives the original's facts exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from chfw.core.domain import DeviceId
from chfw.supplier import backoffice
from chfw.supplier.pipeline import Accepted, AlertReceiver, ReceiverConfig, Refused
from chfw.supplier.schema import bo_alerts
from tests.supplier.helpers import CH, POWER_OUTAGE, Dsp, Served
from tests.supplier.rewrites import REWRITES, Rewrite, pieces


@pytest.fixture(scope="module")
def checker(dsp: Dsp) -> Iterator[AlertReceiver]:
    """The receiver's check, in-process (it never touches the database)."""
    engine = sa.create_engine("sqlite://")
    yield AlertReceiver(ReceiverConfig(trust=dsp.trust), engine)
    engine.dispose()


@pytest.fixture(scope="module")
def originals(dsp: Dsp) -> list[bytes]:
    """Signed alerts of each kind the receiver files: N64, N999, another code."""
    return [dsp.n64("0123ABCE", counter=41), dsp.n999(), dsp.other("N12", POWER_OUTAGE)]


def _accepted(checker: AlertReceiver, body: bytes) -> Accepted:
    checked = checker.check(body)
    assert isinstance(checked, Accepted), checked
    return checked


def _signature_untouched(original: bytes, body: bytes) -> bool:
    """Whether ``body`` ends with ``original``'s Signature, byte for byte, and nothing else.

    Rewrites in or after the Signature may be refused: its values are read as
    the profile writes them (a comment inside SignatureValue is refused), and
    it must be the root's last child (a comment after it is refused).
    """
    start = b"<ds:Signature"
    if start not in body:
        return False
    return body[body.index(start) :] == original[original.index(start) :]


def _rewritten(document: bytes, rewrites: list[Rewrite], data: st.DataObject) -> bytes:
    body = document
    for rewrite in rewrites:
        body = b"".join(rewrite.apply(pieces(body), data))
    return body


class TestDigestPreservingRewrites:
    """Each rewrite alone, and random chains of them, on every kind of alert."""

    @pytest.mark.parametrize("rewrite", REWRITES, ids=lambda r: r.name)
    @settings(
        max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(data=st.data())
    def test_one_rewrite(
        self,
        checker: AlertReceiver,
        originals: list[bytes],
        rewrite: Rewrite,
        data: st.DataObject,
    ) -> None:
        original = data.draw(st.sampled_from(originals), label="alert")
        body = _rewritten(original, [rewrite], data)
        checked = checker.check(body)
        if rewrite.keeps_digest and _signature_untouched(original, body):
            assert isinstance(checked, Accepted), (body, checked)
        if isinstance(checked, Accepted):
            expected = _accepted(checker, original)
            assert (checked.facts, checked.digest) == (expected.facts, expected.digest), body
        else:
            assert isinstance(checked, Refused)
            assert checked.status == 400

    @settings(
        max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(data=st.data())
    def test_chains_of_rewrites(
        self, checker: AlertReceiver, originals: list[bytes], data: st.DataObject
    ) -> None:
        original = data.draw(st.sampled_from(originals), label="alert")
        chain = data.draw(st.lists(st.sampled_from(REWRITES), min_size=1, max_size=6))
        body = _rewritten(original, chain, data)
        checked = checker.check(body)
        if all(r.keeps_digest for r in chain) and _signature_untouched(original, body):
            assert isinstance(checked, Accepted), (body, checked)
        if isinstance(checked, Accepted):
            assert checked.facts == _accepted(checker, original).facts, body
        else:
            assert checked.status == 400


class TestTheAdvisoryCases:
    """The exact attacks of issue 19, each by name."""

    def test_comment_inside_the_firmware_version(self, checker: AlertReceiver, dsp: Dsp) -> None:
        body = dsp.n64("0123ABCE").replace(b">0123ABCE<", b">0123<!---->ABCE<")
        assert _accepted(checker, body).facts.firmware_version == "0123ABCE"

    def test_comment_inside_the_response_id(self, checker: AlertReceiver, dsp: Dsp) -> None:
        genuine = dsp.n64(counter=1234)
        body = genuine.replace(b":1234<", b":12<!-- -->34<")
        assert (
            _accepted(checker, body).facts.response_id
            == _accepted(checker, genuine).facts.response_id
        )
        assert _accepted(checker, body).facts.counter == 1234

    def test_cdata_and_references_inside_the_device_id(
        self, checker: AlertReceiver, dsp: Dsp
    ) -> None:
        body = dsp.n64().replace(
            b"<sr:DeviceID>00-1D-A1", b"<sr:DeviceID><![CDATA[00-1D]]>&#x2D;A1"
        )
        assert _accepted(checker, body).facts.device_id == CH

    def test_processing_instruction_inside_a_value_is_refused(
        self, checker: AlertReceiver, dsp: Dsp
    ) -> None:
        body = dsp.n64("0123ABCE").replace(b">0123ABCE<", b">0123<?x?>ABCE<")
        checked = checker.check(body)
        assert isinstance(checked, Refused)
        # Canonical form keeps the instruction, so the digest already differs; were it
        # signed, the re-read tree would refuse it (tests/core/signing: signed_tree).
        assert checked.status == 400


class TestServed:
    """Through `chfw receiver serve`'s app: the back office holds exactly the signed values."""

    def test_injected_copy_then_genuine_copy(
        self, receiver: Served, dsp: Dsp, engine: Engine
    ) -> None:
        genuine = dsp.n64("0123ABCE", counter=77)
        injected = genuine.replace(b">0123ABCE<", b">0123<!---->ABCE<")
        assert receiver.post(injected).status_code == 204
        assert receiver.post(genuine).status_code == 204  # a duplicate, same signed content
        with engine.connect() as conn:
            view = backoffice.hub_view(conn, CH)
            (row,) = conn.execute(sa.select(bo_alerts.c.firmware_version, bo_alerts.c.duplicates))
        assert view is not None
        assert (view.active_version, row.firmware_version, row.duplicates) == ("0123ABCE",) * 2 + (
            1,
        )

    @pytest.mark.parametrize("rewrite", [r for r in REWRITES if r.keeps_digest], ids=str)
    def test_each_rewrite_recorded_as_signed(
        self,
        serve: Callable[..., Served],
        dsp: Dsp,
        engine: Engine,
        rewrite: Rewrite,
    ) -> None:
        receiver = serve()
        device = DeviceId.parse("00-1D-A1-00-00-00-01-01")
        original = dsp.n64("0A0B0C0D", device=device, counter=5)

        @settings(max_examples=5, deadline=None, database=None)
        @given(data=st.data())
        def post(data: st.DataObject) -> None:
            body = _rewritten(original, [rewrite], data)
            expected = {204} if _signature_untouched(original, body) else {204, 400}
            assert receiver.post(body).status_code in expected, body

        post()
        with engine.connect() as conn:
            view = backoffice.hub_view(conn, device)
            versions = conn.execute(sa.select(bo_alerts.c.firmware_version)).scalars().all()
        assert view is not None
        assert view.active_version == "0A0B0C0D"
        assert versions == ["0A0B0C0D"]
