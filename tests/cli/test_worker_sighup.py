"""`chfw worker` reloads its signing identity on SIGHUP (issue 20): the files at the configured
paths are replaced by a new pair, SIGHUP, and the next alert signed with the old key goes out
re-signed with the new one."""

from __future__ import annotations

import queue
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from chfw.core.signing import Resigner, unsigned
from tests.cli.test_worker_signals import GRACE_SECONDS, start_worker
from tests.dsp.delivery.helpers import SUPPLIER_A, add_user, enqueue
from tests.dsp.delivery.receiver import ScriptedReceiver
from tests.dsp.delivery.test_resign import HUBS, n64
from tests.supplier.helpers import Dsp

OLD = Dsp.create("chfw DSP signer, old")
NEW = Dsp.create("chfw DSP signer, new")


def install(dsp: Dsp, key: Path, cert: Path) -> None:
    key.write_bytes(dsp.key_pem)
    key.chmod(0o600)
    cert.write_bytes(dsp.cert_pem)


def wait_for(lines: queue.Queue[str], text: str) -> None:
    while True:
        line = lines.get(timeout=GRACE_SECONDS)
        if text in line:
            return


def test_sighup_reloads_the_signing_identity(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    key, cert = tmp_path / "signing-key.pem", tmp_path / "signing-cert.pem"
    install(OLD, key, cert)
    receiver = ScriptedReceiver().start()
    try:
        add_user(engine, SUPPLIER_A, receiver.url())
        worker = start_worker(database_url, tmp_path, signing_key=str(key), signing_cert=str(cert))
        lines: queue.Queue[str] = queue.Queue()
        assert worker.stderr is not None
        stderr = worker.stderr
        reader = threading.Thread(target=lambda: [lines.put(x) for x in stderr], daemon=True)
        reader.start()
        try:
            wait_for(lines, f"serial {OLD.signer.serial_number}")
            before = n64(OLD, HUBS[0], 1)
            enqueue(engine, [before], datetime.now(UTC))
            assert receiver.arrived.wait(timeout=GRACE_SECONDS)
            receiver.arrived.clear()

            install(NEW, key, cert)
            worker.send_signal(signal.SIGHUP)
            wait_for(lines, f"serial {NEW.signer.serial_number}")
            after = n64(OLD, HUBS[1], 2)
            enqueue(engine, [after], datetime.now(UTC))
            assert receiver.arrived.wait(timeout=GRACE_SECONDS)
        finally:
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(timeout=GRACE_SECONDS)
            reader.join(timeout=GRACE_SECONDS)
            for pipe in (worker.stdout, stderr):
                if pipe is not None:
                    pipe.close()
    finally:
        receiver.stop()
    assert code == 0
    first, second = (r.body for r in receiver.received)
    assert first == before.document  # signed by the configured (old) identity: sent as stored
    assert Resigner(NEW.signer).is_current(second)
    assert unsigned(second) == unsigned(after.document)
