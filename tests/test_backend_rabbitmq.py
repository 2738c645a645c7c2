"""RabbitMQ queue against the real broker on this machine, with queue names unique per test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pika
import pytest
from _backend_helpers import TcpProxy, new_crash_id, unique_name

from procsupervisor.logical_queues import DEFAULT_QUEUE_NAMES
from procsupervisor.metrics import NullMetrics
from procsupervisor.queues.base import Delivery
from procsupervisor.queues.rabbitmq import (
    ATTEMPT_HEADER,
    ORIGIN_HEADER,
    REASON_HEADER,
    RabbitMQQueue,
)


class Broker:
    """Direct pika access for checking what the queue did, and cleanup of test queues."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self.extra_queues: list[str] = []  # retry queues a test made, deleted at cleanup
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()

    def options(self, **extra: str) -> dict[str, str]:
        options = {f"{q}_queue": f"{self.prefix}.{q}" for q in DEFAULT_QUEUE_NAMES}
        options.update(
            url=self.url,
            deadletter_queue=f"{self.prefix}.deadletter",
            retry_queue=f"{self.prefix}.retry",
            reconnect_backoff_s="0.05,0.1",
            weights="priority:10",  # the core's keys are ignored
            backend="rabbitmq",
        )
        options.update(extra)
        return options

    def get(self, name: str) -> tuple[Any, Any, bytes]:
        return self.channel.basic_get(f"{self.prefix}.{name}", auto_ack=True)

    def count(self, name: str) -> int:
        frame = self.channel.queue_declare(f"{self.prefix}.{name}", passive=True)
        return int(frame.method.message_count)

    def wait_count(self, name: str, wanted: int, timeout_s: float = 10.0) -> int:
        deadline = time.monotonic() + timeout_s
        while (found := self.count(name)) != wanted and time.monotonic() < deadline:
            time.sleep(0.05)
        return found

    def cleanup(self, extra: list[str]) -> None:
        for name in [*DEFAULT_QUEUE_NAMES, "deadletter", *extra]:
            self.channel.queue_delete(f"{self.prefix}.{name}")
        self.connection.close()


@pytest.fixture
def broker(rabbitmq_url: str) -> Iterator[Broker]:
    found = Broker(rabbitmq_url, unique_name("pstest"))
    yield found
    found.cleanup(found.extra_queues)


def make_queue(broker: Broker, tmp_path: Path, **extra: str) -> RabbitMQQueue:
    return RabbitMQQueue.from_options(
        broker.options(**extra), data_dir=tmp_path, metrics=NullMetrics()
    )


def wait_get(queue: RabbitMQQueue, name: str, timeout_s: float = 10.0) -> Delivery | None:
    """The next delivery from `name` once the broker has one (after a TTL, a redelivery or a
    reconnect), polling as the supervisor loop does; None if none came in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        queue.poll()
        delivery = queue.get(name)
        if delivery is not None:
            return delivery
        time.sleep(0.02)
    return None


def test_publish_get_ack_with_persistent_messages(broker: Broker, tmp_path: Path) -> None:
    queue = make_queue(broker, tmp_path)
    crash_id = new_crash_id()
    queue.publish("normal", crash_id)
    queue.publish("reprocessing", f"{crash_id}:regenerate_signature")
    assert queue.depths() == {"priority": 0, "normal": 1, "reprocessing": 1, "deadletter": 0}
    delivery = queue.get("normal")
    assert delivery is not None
    assert (delivery.queue, delivery.body, delivery.attempt) == ("normal", crash_id, 1)
    assert queue.get("normal") is None  # the one message is held, unacked
    queue.ack(delivery)
    method, properties, body = broker.get("reprocessing")
    assert body.decode() == f"{crash_id}:regenerate_signature"
    assert properties.delivery_mode == 2
    queue.close()
    assert broker.count("normal") == 0


def test_unacked_delivery_returns_when_the_connection_closes(
    broker: Broker, tmp_path: Path
) -> None:
    queue = make_queue(broker, tmp_path)
    queue.publish("priority", new_crash_id())
    assert queue.get("priority") is not None
    queue.close()
    assert broker.wait_count("priority", 1) == 1


def test_retry_goes_through_a_ttl_queue_back_to_its_origin(broker: Broker, tmp_path: Path) -> None:
    queue = make_queue(broker, tmp_path)
    crash_id = new_crash_id()
    queue.publish("normal", crash_id)
    first = queue.get("normal")
    assert first is not None
    queue.retry(first, "transient: s3 timeout", 0.3)
    broker.extra_queues.append("retry.normal.300")
    assert queue.get("normal") is None  # original acked, copy waiting out its delay
    second = wait_get(queue, "normal")
    assert second is not None
    assert second.body == crash_id and second.attempt == 2
    assert second.headers[REASON_HEADER] in ("transient: s3 timeout", b"transient: s3 timeout")
    queue.retry(second, "again", 0.3)
    third = wait_get(queue, "normal")
    assert third is not None and third.attempt == 3
    # the broker's x-death history is not carried from one round trip into the next
    (death,) = third.headers["x-death"]
    assert death["count"] == 1
    queue.ack(third)
    queue.close()


def test_dead_letter_keeps_origin_attempts_reason_and_requeue_dead_restores(
    broker: Broker, tmp_path: Path
) -> None:
    queue = make_queue(broker, tmp_path)
    crash_id = new_crash_id()
    queue.publish("reprocessing", crash_id)
    delivery = queue.get("reprocessing")
    assert delivery is not None
    delivery.attempt = 4
    queue.dead_letter(delivery, "not_found after 4 attempts: no raw crash")
    assert broker.count("reprocessing") == 0
    method, properties, body = broker.channel.basic_get(f"{broker.prefix}.deadletter")
    assert body.decode() == crash_id
    headers = {
        k: (v.decode() if isinstance(v, bytes) else v) for k, v in properties.headers.items()
    }
    assert headers[ORIGIN_HEADER] == "reprocessing"
    assert headers[ATTEMPT_HEADER] == 4
    assert headers[REASON_HEADER] == "not_found after 4 attempts: no raw crash"
    broker.channel.basic_nack(method.delivery_tag, requeue=True)
    assert broker.wait_count("deadletter", 1) == 1

    assert queue.requeue_dead() == 1
    assert broker.count("deadletter") == 0
    again = queue.get("reprocessing")
    assert again is not None and again.body == crash_id and again.attempt == 1
    queue.ack(again)
    queue.close()


def test_unconfirmed_dead_letter_leaves_the_original_queued(
    broker: Broker, tmp_path: Path
) -> None:
    queue = make_queue(broker, tmp_path)
    crash_id = new_crash_id()
    queue.publish("normal", crash_id)
    delivery = queue.get("normal")
    assert delivery is not None
    broker.channel.queue_delete(f"{broker.prefix}.deadletter")  # the copy has nowhere to go
    with pytest.raises(ConnectionError):  # not settled: the supervisor must not count it
        queue.dead_letter(delivery, "bad dump")
    # Unroutable, so unconfirmed: never acked, and the broker put the original back.
    assert not queue.connected
    assert broker.wait_count("normal", 1) == 1
    again = queue.get("normal")  # reconnects (declaring the dead-letter queue again)
    assert again is not None and again.body == crash_id
    queue.dead_letter(again, "bad dump")
    assert broker.count("deadletter") == 1 and broker.count("normal") == 0
    queue.close()


def test_stale_tags_after_reconnect_are_dropped_not_acked(
    broker: Broker, rabbitmq_url: str, tmp_path: Path
) -> None:
    target = urlsplit(rabbitmq_url)
    proxy = TcpProxy(target.port or 5672).start()
    proxied = urlunsplit(target._replace(netloc=f"guest:guest@127.0.0.1:{proxy.port}"))
    queue = make_queue(broker, tmp_path, url=proxied)
    ids = [new_crash_id() for _ in range(2)]
    for crash_id in ids:
        queue.publish("normal", crash_id)
    held = queue.get("normal")
    assert held is not None and queue.generation == 1

    proxy.stop()  # the broker sees the connection die and requeues `held`
    queue.poll()
    assert not queue.connected
    assert queue.get("normal") is None  # down: no delivery, no exception
    queue.ack(held)  # stale: dropped
    assert queue.stale_dropped == 1
    proxy.start()
    deadline = time.monotonic() + 10
    redelivered = []
    while len(redelivered) < 2 and time.monotonic() < deadline:
        queue.poll()
        got = queue.get("normal")
        if got is not None:
            redelivered.append(got)
        time.sleep(0.02)
    assert queue.generation == 2 and queue.reconnects == 1
    assert sorted(d.body for d in redelivered) == sorted(ids)
    for delivery in redelivered:
        queue.ack(delivery)
    # A stale retry is still published (its redelivered twin may have been acked as a
    # duplicate of the crash in flight), never acked: the copy comes back with attempt + 1.
    queue.retry(held, "stale", 0.1)
    broker.extra_queues.append("retry.normal.100")
    copy = wait_get(queue, "normal")
    assert copy is not None and copy.body == held.body and copy.attempt == 2
    queue.ack(copy)
    assert queue.generation == 2  # the stale tag was never used on the new channel
    queue.close()
    proxy.stop()
    assert broker.count("normal") == 0


def test_heartbeats_are_kept_while_a_crash_is_held(broker: Broker, tmp_path: Path) -> None:
    queue = make_queue(broker, tmp_path, heartbeat_s="1")
    queue.publish("normal", new_crash_id())
    delivery = queue.get("normal")
    assert delivery is not None
    deadline = time.monotonic() + 3.5  # several heartbeat timeouts
    while time.monotonic() < deadline:
        queue.poll()  # what the supervisor loop does every ~100 ms
        time.sleep(0.1)
    assert queue.connected and queue.generation == 1
    queue.ack(delivery)
    queue.close()
    assert broker.count("normal") == 0


def test_broker_down_at_start_then_up(broker: Broker, rabbitmq_url: str, tmp_path: Path) -> None:
    target = urlsplit(rabbitmq_url)
    proxy = TcpProxy(target.port or 5672)
    proxied = urlunsplit(target._replace(netloc=f"guest:guest@127.0.0.1:{proxy.port}"))
    queue = make_queue(broker, tmp_path, url=proxied, socket_timeout_s="1")
    assert queue.get("normal") is None
    assert queue.depths() == {}
    with pytest.raises(ConnectionError):
        queue.publish("normal", new_crash_id())
    proxy.start()  # listening at once: the publish reconnects without waiting out a backoff
    queue.publish("normal", new_crash_id())
    assert queue.depths()["normal"] == 1
    queue.close()
    proxy.stop()


def test_quorum_queues_with_delivery_limit(broker: Broker, tmp_path: Path) -> None:
    queue = make_queue(broker, tmp_path, quorum="true", delivery_limit="5")
    crash_id = new_crash_id()
    queue.publish("normal", crash_id)
    # Declaring it as a classic queue now fails: it really is a quorum queue.
    probe = broker.connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        probe.queue_declare(f"{broker.prefix}.normal", durable=True)
    assert refused.value.reply_code == 406
    first = queue.get("normal")
    assert first is not None and first.attempt == 1
    queue.close()  # the broker requeues it and counts the redelivery
    second = wait_get(queue, "normal")
    assert second is not None and second.attempt == 2
    queue.ack(second)
    queue.close()


def test_two_consumers_share_one_queue(broker: Broker, tmp_path: Path) -> None:
    first, second = make_queue(broker, tmp_path), make_queue(broker, tmp_path)
    ids = {new_crash_id() for _ in range(20)}
    for crash_id in ids:
        first.publish("normal", crash_id)
    taken: dict[str, list[str]] = {"first": [], "second": []}
    for _ in range(10):
        for name, queue in (("first", first), ("second", second)):
            delivery = queue.get("normal")
            assert delivery is not None
            taken[name].append(delivery.body)
            queue.ack(delivery)
    assert len(taken["first"]) == len(taken["second"]) == 10
    assert set(taken["first"]) | set(taken["second"]) == ids
    first.close()
    second.close()


def test_quorum_delivery_limit_dead_letters_and_requeue_finds_the_origin(
    broker: Broker, tmp_path: Path
) -> None:
    crash_id = new_crash_id()
    publisher = make_queue(broker, tmp_path, quorum="true", delivery_limit="1")
    publisher.publish("priority", crash_id)
    publisher.close()
    for _ in range(2):  # two supervisors die holding it: past the limit of 1 redelivery
        holder = make_queue(broker, tmp_path, quorum="true", delivery_limit="1")
        assert wait_get(holder, "priority") is not None
        holder.close()
    assert broker.wait_count("deadletter", 1) == 1
    queue = make_queue(broker, tmp_path, quorum="true", delivery_limit="1")
    assert queue.requeue_dead() == 1
    again = wait_get(queue, "priority")
    assert again is not None and again.body == crash_id
    queue.ack(again)
    queue.close()


def test_retry_without_a_usable_delay_queue_goes_back_to_origin(
    broker: Broker, tmp_path: Path
) -> None:
    # someone made the delay queue by hand, without the TTL and dead-letter route back
    broker.channel.queue_declare(f"{broker.prefix}.retry.normal.500", durable=True)
    broker.extra_queues.append("retry.normal.500")
    queue = make_queue(broker, tmp_path)
    crash_id = new_crash_id()
    queue.publish("normal", crash_id)
    first = queue.get("normal")
    assert first is not None
    queue.retry(first, "transient", 0.5)
    again = queue.get("normal")  # no delay, but the attempt counted
    assert again is not None and again.body == crash_id and again.attempt == 2
    assert queue.generation == 1  # the refused declaration did not cost the connection
    queue.ack(again)
    queue.close()
    assert broker.count("retry.normal.500") == 0
