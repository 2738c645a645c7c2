"""Issue 13 item 4: a retry or dead letter the fs spool cannot write leaves the crash in
`inflight/`; the running supervisor must deliver it again once the spool is writable, and
status must show it meanwhile (not "nothing waiting")."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _core_helpers import (
    SupervisorProcess,
    acked_total,
    make_raw_crash,
    processed_crash,
    write_config,
)

from procsupervisor import crashid
from procsupervisor.queues.fs import FSQueue
from procsupervisor.storage.fs import FSCrashStorage
from procsupervisor.supervisor.status import render

pytestmark = pytest.mark.slow


def break_spool(spool: Path) -> None:
    """Make every new spool file fail to write, even for root (who ignores modes): `tmp/`,
    where every message is written first, becomes a plain file."""
    os.rename(spool / "tmp", spool / "tmp.saved")
    (spool / "tmp").write_text("not a folder")


def mend_spool(spool: Path) -> None:
    (spool / "tmp").unlink()
    os.rename(spool / "tmp.saved", spool / "tmp")


def test_a_retry_the_spool_refused_is_redelivered_once_it_can_be_written(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    config_path = write_config(tmp_path / "sup.ini", data_dir, workers=0, retry_delay_s=0.05)
    supervisor = SupervisorProcess(config_path, data_dir).start()
    spool = data_dir / "queue"
    try:
        crash_id = crashid.create()
        FSQueue(spool).publish("normal", crash_id)  # nothing stored yet: not_found, retried
        break_spool(spool)
        assert supervisor.request("scale", workers=1)["ok"]
        status = supervisor.wait_for(lambda s: s["stuck_in_flight"] == [crash_id],
                                     what="the refused retry shown as stuck")
        assert status["queues"]["normal"]["retried"] == 0
        assert "stuck in flight: 1" in render(status)
        assert os.listdir(spool / "inflight" / "normal")  # still there, not lost
        FSCrashStorage(data_dir / "crashes").save_raw_crash(
            make_raw_crash(uuid=crash_id), {"upload_file_minidump": b"MDMP"}, crash_id)
        mend_spool(spool)
        status = supervisor.wait_for(lambda s: acked_total(s) == 1 and not s["stuck_in_flight"],
                                     timeout=30, what="the crash delivered again and processed")
    finally:
        supervisor.stop()
    assert processed_crash(data_dir, crash_id)["success"] is True
    assert not os.listdir(spool / "inflight" / "normal")
