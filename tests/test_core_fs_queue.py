"""The embedded fs queue: claims, acks, retries, dead letters, crash recovery."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from procsupervisor import crashid
from procsupervisor.queues import fs as fs_queue
from procsupervisor.queues.fs import FSQueue


@pytest.fixture
def queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FSQueue:
    monkeypatch.setattr(fs_queue, "RELIST_INTERVAL_S", 0.0)
    return FSQueue(tmp_path / "spool")


def test_fifo_claim_and_ack(queue: FSQueue) -> None:
    ids = [crashid.create() for _ in range(5)]
    for cid in ids:
        queue.publish("normal", cid)
    assert queue.depths() == {"priority": 0, "normal": 5, "reprocessing": 0}
    got = [queue.get("normal") for _ in range(5)]
    assert [d.body for d in got] == ids
    assert all(d.attempt == 1 and d.queue == "normal" for d in got)
    assert queue.get("normal") is None
    assert len(os.listdir(queue.spool / "inflight" / "normal")) == 5
    for d in got:
        queue.ack(d)
    assert os.listdir(queue.spool / "inflight" / "normal") == []


def test_ruleset_body(queue: FSQueue) -> None:
    cid = crashid.create()
    queue.publish("reprocessing", f"{cid}:regenerate_signature")
    d = queue.get("reprocessing")
    assert d.crash_id == cid and d.ruleset == "regenerate_signature"


def test_retry_waits_for_its_delay_and_counts_attempts(queue: FSQueue) -> None:
    cid = crashid.create()
    queue.publish("priority", cid)
    first = queue.get("priority")
    retried_at = time.monotonic()
    queue.retry(first, "transient: s3 down", delay_s=1.0)
    assert queue.get("priority") is None  # not yet
    second = None
    while second is None and time.monotonic() < retried_at + 10:
        second = queue.get("priority")
        time.sleep(0.01)
    assert time.monotonic() - retried_at >= 1.0
    assert second is not None and second.body == cid and second.attempt == 2
    assert second.headers["reason"] == "transient: s3 down"
    assert os.listdir(queue.spool / "inflight" / "priority") == [second.tag.name]


def test_dead_letter_keeps_origin_attempts_reason_and_can_be_requeued(queue: FSQueue) -> None:
    cid = crashid.create()
    queue.publish("priority", cid)
    d = queue.get("priority")
    d.attempt = 3
    queue.dead_letter(d, "worker killed 3 times")
    [letter] = queue.dead_letters()
    assert letter["body"] == cid and letter["queue"] == "priority"
    assert letter["attempts"] == 3 and letter["reason"] == "worker killed 3 times"
    assert queue.requeue_dead() == 1
    assert queue.dead_letters() == []
    again = queue.get("priority")
    assert again.body == cid and again.attempt == 1


def test_a_damaged_dead_letter_stays_and_does_not_block_the_others(queue: FSQueue) -> None:
    cid = crashid.create()
    queue.publish("normal", cid)
    queue.dead_letter(queue.get("normal"), "test")
    (queue.spool / "deadletter" / f"{0:020d}-1-0").write_text("{not json")
    assert queue.requeue_dead() == 1
    assert queue.get("normal").body == cid
    assert os.listdir(queue.spool / "deadletter") == [f"{0:020d}-1-0"]



def test_in_flight_entries_of_a_dead_supervisor_are_recovered_first(tmp_path: Path) -> None:
    first = FSQueue(tmp_path / "spool")
    old, new = crashid.create(), crashid.create()
    first.publish("normal", old)
    claimed = first.get("normal")
    first.publish("normal", new)
    del first  # "dies" holding `claimed`
    second = FSQueue(tmp_path / "spool")
    assert second.recover_in_flight() == 1
    assert second.get("normal").body == claimed.body == old
    assert second.get("normal").body == new


def test_publish_rejects_bad_bodies_and_queues(queue: FSQueue) -> None:
    with pytest.raises(ValueError):
        queue.publish("normal", "")
    with pytest.raises(ValueError):
        queue.publish("normal", "x" * 1000)
    with pytest.raises(ValueError):
        queue.publish("../etc", crashid.create())
    with pytest.raises(ValueError):
        queue.get("bogus")


def test_a_damaged_message_is_delivered_with_an_empty_body(queue: FSQueue) -> None:
    (queue.spool / "ready" / "normal" / f"{0:020d}-1-0").write_text("{not json")
    d = queue.get("normal")
    assert d is not None and d.body == ""


def test_a_message_from_another_process_is_found_soon(tmp_path: Path) -> None:
    reader, writer = FSQueue(tmp_path / "spool"), FSQueue(tmp_path / "spool")
    assert reader.get("normal") is None  # listed: empty
    cid = crashid.create()
    writer.publish("normal", cid)
    deadline = time.monotonic() + 10  # found within FULL_RELIST_S when idle; CI may be busy
    found = None
    while found is None and time.monotonic() < deadline:
        found = reader.get("normal")
        time.sleep(0.01)
    assert found is not None and found.body == cid
