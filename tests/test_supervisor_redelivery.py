"""Issue 13 item 1: a crash redelivered by RabbitMQ after a broker disconnect, while the first
copy is still in a worker, must survive the supervisor dying before that worker finishes.

The real broker; the connection is closed with `rabbitmqctl close_connection` (that supervisor's
own connection only)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from _core_helpers import SupervisorProcess, acked_total, processed_crash, submit, write_config
from _rabbit_helpers import RabbitQueues, close_supervisor_connection, require_rabbitmqctl

from procsupervisor import crashid

pytestmark = [pytest.mark.slow, pytest.mark.services]


@pytest.fixture
def queues(rabbitmq_url: str):
    require_rabbitmqctl()
    found = RabbitQueues.unique(rabbitmq_url, "pstest-redeliver")
    yield found
    found.delete()


@pytest.mark.parametrize("death", ["sigkill", "stop --fast"])
def test_a_redelivered_copy_is_kept_until_the_crash_in_flight_is_settled(
    queues: RabbitQueues, tmp_path: Path, death: str
) -> None:
    hold = tmp_path / "hold"
    hold.mkdir()
    data_dir = tmp_path / "data"
    config_path = write_config(tmp_path / "sup.ini", data_dir, workers=2,
                               processor_options={"hold_dir": str(hold)},
                               queue_options=queues.config_lines())
    crash_id = crashid.create()
    (hold / crash_id).touch()  # the worker that takes it waits until this file is gone
    first = SupervisorProcess(config_path, data_dir).start()
    restarted = SupervisorProcess(config_path, data_dir)
    try:
        submit(config_path, uuid=crash_id)
        first.wait_for(lambda s: any(w["crash_id"] == crash_id for w in s["workers"]),
                       what="crash in a worker")
        assert close_supervisor_connection(first.pid)
        # The broker gives the unacked message back on the new connection; the idle worker's
        # turn pulls it while the first copy is still held.
        status = first.wait_for(lambda s: s["queues"]["normal"]["pulled"] == 2,
                                what="redelivered copy pulled")
        assert status["queues"]["normal"]["acked"] == 0
        assert status["duplicates_held"] == 1
        if death == "sigkill":
            first.signal(signal.SIGKILL)
        else:
            assert first.request("stop", fast=True)["ok"]
        first.wait_exit(30)
        (hold / crash_id).unlink()
        restarted.start()
        restarted.wait_for(lambda s: acked_total(s) >= 1, what="crash processed after restart")
    finally:
        first.stop()
        restarted.stop()
    assert processed_crash(data_dir, crash_id)["success"] is True
