"""The real supervisor on the production queue backend (RabbitMQ on 127.0.0.1)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from _core_helpers import (
    SupervisorProcess,
    acked_total,
    processed_crash,
    submit,
    write_config,
)

from procsupervisor.workers.processor import validate_processed_crash

pytestmark = [pytest.mark.slow, pytest.mark.services]


@pytest.fixture
def rabbit_setup(tmp_path: Path, rabbitmq_url: str):
    prefix = f"pstest-core-{uuid.uuid4().hex[:8]}"
    names = {q: f"{prefix}.{q}" for q in ("priority", "normal", "reprocessing")}
    queue_keys = (
        "backend = rabbitmq\n"
        f"url = {rabbitmq_url}\n"
        + "".join(f"{q}_queue = {name}\n" for q, name in names.items())
        + f"deadletter_queue = {prefix}.deadletter\n"
        f"retry_queue = {prefix}.retry\n"
    )
    data_dir = tmp_path / "data"
    config_path = tmp_path / "sup.ini"
    supervisor = SupervisorProcess(config_path, data_dir)
    yield config_path, data_dir, supervisor, queue_keys
    supervisor.stop()
    _delete_queues(rabbitmq_url, prefix, [*names.values(), f"{prefix}.deadletter"])


def _delete_queues(url: str, prefix: str, names: list[str]) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for name in names:
            channel.queue_delete(name)
    finally:
        connection.close()


def test_crashes_flow_through_rabbitmq(rabbit_setup, tmp_path: Path) -> None:
    config_path, data_dir, supervisor, queue_keys = rabbit_setup
    write_config(config_path, data_dir, workers=2, queue_options=queue_keys)
    supervisor.start()
    ids = [submit(config_path, queue=q) for q in ("priority", "normal", "reprocessing", "normal")]
    status = supervisor.wait_for(lambda s: acked_total(s) == 4, what="4 acked")
    assert status["totals"]["dead_lettered"] == 0
    for cid in ids:
        processed = processed_crash(data_dir, cid)
        validate_processed_crash(processed)
        assert processed["uuid"] == cid


def test_a_hanging_crash_is_retried_then_dead_lettered_on_rabbitmq(rabbit_setup,
                                                                   tmp_path: Path) -> None:
    config_path, data_dir, supervisor, queue_keys = rabbit_setup
    write_config(config_path, data_dir, workers=2, deadline_s=2, max_attempts=2,
                 retry_delay_s=0.05, processor_options={"hang_marker": "TestHang"},
                 queue_options=queue_keys)
    supervisor.start()
    hung = submit(config_path, TestHang=True)
    fine = submit(config_path)
    status = supervisor.wait_for(
        lambda s: s["totals"]["dead_lettered"] == 1 and acked_total(s) == 1
        and s["poison_pending"] == 0, timeout=90, what="dead letter")
    assert status["queues"]["normal"]["retried"] == 1
    record = processed_crash(data_dir, hung)
    validate_processed_crash(record)
    assert record["success"] is False
    assert "deadline of 2s exceeded" in record["processor_notes"]
    assert processed_crash(data_dir, fine)["success"] is True
