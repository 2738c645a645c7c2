"""RabbitMQ crash queue (pika), used only by the supervisor process.

Queues (names configurable): `socorro.priority`, `socorro.normal`, `socorro.reprocessing`, all
durable with persistent messages, plus `socorro.deadletter` and retry queues. Messages are
pulled with `basic_get` one at a time, when a worker is idle, so nothing waits in a prefetch
buffer. Every message is finished on the channel that delivered it:

- `ack`: basic_ack.
- `retry`: publish (with publisher confirms) to `<retry_queue>.<origin>.<delay ms>`, a queue
  whose message TTL dead-letters the message back to its origin queue, with the attempt count
  in the `x-procsupervisor-attempt` header; only once the broker confirmed the copy is the
  original acked. If the publish fails the original is left unacked, so the broker requeues
  it when the connection closes: at-least-once, never lost.
- `dead_letter`: publish (confirmed) to the dead-letter queue with origin, attempts, reason and
  time in headers, then ack.

A delivery tag belongs to one channel. After a reconnect the broker has already requeued every
unacked message of the old channel, so deliveries from an older connection generation are
never acked (acking their tag on the new channel would ack the wrong message or close the
channel); a retry or dead-letter of such a delivery is still published, since its redelivered
twin may already have been acked as a duplicate of the crash in flight. Connection errors
never escape `get`/`ack`/`retry`/`dead_letter`/`poll`: they mark the connection broken, and
it reconnects with growing backoff (rabbitmq_connection.py, which also keeps heartbeats
answered); a `retry` or `dead_letter` whose copy the broker did not confirm raises, so the
supervisor never counts it as settled. A duplicate of a crash already in flight is held
unacked by the supervisor, which knows what is in flight, until that crash is settled; then it
is acked, or handed back with `release` (a retry of the previous attempt) if settling failed.

With `quorum = true` the three queues are quorum queues with `x-delivery-limit`: a message the
broker had to redeliver more than that many times (its supervisor kept dying) goes to the
dead-letter queue; the broker's `x-delivery-count` header adds to the attempt count.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from procsupervisor.health import Health
from procsupervisor.logical_queues import DEFAULT_QUEUE_NAMES
from procsupervisor.metrics import Metrics, NullMetrics
from procsupervisor.queues import rabbitmq_dead
from procsupervisor.queues.base import CrashQueue, DeadLetter, Delivery
from procsupervisor.queues.rabbitmq_connection import (
    DEFAULT_BACKOFF_S,
    BrokerConnection,
    declare_queue,
    describe_error,
    safe_url,
)

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-procsupervisor-attempt"
ORIGIN_HEADER = "x-procsupervisor-origin"
REASON_HEADER = "x-procsupervisor-reason"
DEAD_AT_HEADER = "x-procsupervisor-dead-lettered-at"
MAX_REASON_CHARS = 1000
DEPTHS_CACHE_S = 1.0
BROKER_HEADER_PREFIXES = ("x-death", "x-first-death", "x-last-death", "x-delivery-count")


class RabbitMQQueue(CrashQueue):
    queue_names = DEFAULT_QUEUE_NAMES

    def __init__(
        self,
        url: str,
        *,
        names: Mapping[str, str] | None = None,
        deadletter_queue: str = "socorro.deadletter",
        retry_queue: str = "socorro.retry",
        quorum: bool = False,
        delivery_limit: int = 20,
        heartbeat_s: int = 60,
        socket_timeout_s: float = 5.0,
        connection_attempts: int = 1,
        reconnect_backoff_s: tuple[float, ...] = DEFAULT_BACKOFF_S,
        blocked_timeout_s: float = 60.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.names = {q: f"socorro.{q}" for q in DEFAULT_QUEUE_NAMES}
        self.names.update(names or {})
        self.deadletter_queue = deadletter_queue
        self.retry_prefix = retry_queue
        self.quorum = quorum
        self.delivery_limit = delivery_limit
        self.metrics = metrics or NullMetrics()
        self.broker = BrokerConnection(
            url,
            declare_topology=self._declare_all,
            metrics=self.metrics,
            heartbeat_s=heartbeat_s,
            socket_timeout_s=socket_timeout_s,
            connection_attempts=connection_attempts,
            reconnect_backoff_s=reconnect_backoff_s,
            blocked_timeout_s=blocked_timeout_s,
        )
        self.stale_dropped = 0
        self._depths_cache: tuple[float, dict[str, int]] = (0.0, {})

    @classmethod
    def from_options(
        cls, options: Mapping[str, str], *, data_dir: Path, metrics: Metrics
    ) -> RabbitMQQueue:
        def get(key: str, default: str) -> str:
            return (options.get(key) or "").strip() or default

        backoff = tuple(float(v) for v in get("reconnect_backoff_s", "").split(",") if v.strip())
        return cls(
            get("url", "amqp://guest:guest@127.0.0.1:5672/%2F"),
            names={q: get(f"{q}_queue", f"socorro.{q}") for q in DEFAULT_QUEUE_NAMES},
            deadletter_queue=get("deadletter_queue", "socorro.deadletter"),
            retry_queue=get("retry_queue", "socorro.retry"),
            quorum=get("quorum", "false").lower() in ("1", "true", "yes", "on"),
            delivery_limit=int(get("delivery_limit", "20")),
            heartbeat_s=int(get("heartbeat_s", "60")),
            socket_timeout_s=float(get("socket_timeout_s", "5")),
            connection_attempts=int(get("connection_attempts", "1")),
            reconnect_backoff_s=backoff or DEFAULT_BACKOFF_S,
            blocked_timeout_s=float(get("blocked_timeout_s", "60")),
            metrics=metrics,
        )

    # -- connection and topology --------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.broker.connected

    @property
    def generation(self) -> int:
        """Which channel delivery tags belong to; bumped by every reconnect."""
        return self.broker.generation

    @property
    def reconnects(self) -> int:
        return self.broker.reconnects

    def _declare_all(self, connection: Any) -> None:
        for logical in DEFAULT_QUEUE_NAMES:
            declare_queue(connection, self.names[logical], self._origin_arguments())
        declare_queue(connection, self.deadletter_queue, self._deadletter_arguments())

    def _origin_arguments(self) -> dict[str, Any]:
        if not self.quorum:
            return {}
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": self.deadletter_queue,
        }

    def _deadletter_arguments(self) -> dict[str, Any]:
        return {"x-queue-type": "quorum"} if self.quorum else {}

    def probe(self) -> Health:
        return self.broker.probe()

    def health(self) -> Health:
        return self.broker.health()

    def poll(self) -> None:
        self.broker.poll()

    def close(self) -> None:
        self.broker.close()

    # -- consuming ---------------------------------------------------------------------------

    def get(self, queue: str) -> Delivery | None:
        if queue not in self.names or not self.broker.ensure_connected():
            return None
        import pika

        try:
            method, properties, body = self.broker.channel.basic_get(
                self.names[queue], auto_ack=False
            )
        except (pika.exceptions.AMQPError, OSError) as exc:
            self.broker.broken("get", exc)
            return None
        if method is None:
            return None
        headers = dict(properties.headers or {})
        return Delivery(
            queue=queue,
            body=body.decode("utf-8", "replace").strip(),
            attempt=_attempt_of(headers),
            tag=(self.generation, method.delivery_tag),
            headers=headers,
        )

    def _current_tag(self, delivery: Delivery) -> int | None:
        """The delivery tag if it belongs to the live channel, else None (never acked)."""
        generation, tag = delivery.tag
        if generation == self.generation and self.connected:
            return int(tag)
        self.stale_dropped += 1
        log.info(
            "stale delivery dropped crash_id=%s generation=%s current=%s",
            delivery.crash_id[:80],
            generation,
            self.generation,
        )
        return None

    def ack(self, delivery: Delivery) -> None:
        import pika

        tag = self._current_tag(delivery)
        if tag is None:
            return
        try:
            self.broker.channel.basic_ack(delivery_tag=tag)
        except (pika.exceptions.AMQPError, OSError) as exc:
            # The broker requeues it with the channel; processing it again is harmless.
            self.broker.broken("ack", exc)

    def retry(self, delivery: Delivery, reason: str, delay_s: float) -> None:
        """Publish a copy to a delay queue (confirmed), then ack the original."""
        delay_ms = max(1, int(delay_s * 1000))
        origin = self.names.get(delivery.queue, self.names["normal"])
        name = f"{self.retry_prefix}.{delivery.queue}.{delay_ms}"
        headers = {
            **_own_headers(delivery.headers),
            ATTEMPT_HEADER: delivery.attempt + 1,
            ORIGIN_HEADER: delivery.queue,
            REASON_HEADER: reason[:MAX_REASON_CHARS],
        }
        arguments = {
            "x-message-ttl": delay_ms,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": origin,
            # The queue outlives its longest-waiting message; declared again on every retry.
            "x-expires": max(2 * delay_ms, delay_ms + 60_000),
        }
        if not self._declare_retry_queue(name, arguments):
            # Without its delay queue the retry goes straight back to its origin: no backoff,
            # but the attempt still counts, so a crash that keeps failing is dead-lettered.
            name = origin
        self._publish_then_ack(delivery, name, headers)
        self.metrics.incr("processor.rabbitmq.retry", tags={"queue": delivery.queue})

    def _declare_retry_queue(self, name: str, arguments: dict[str, Any]) -> bool:
        import pika

        if not self.broker.ensure_connected():
            return False
        try:
            # A delay queue with other arguments might never send messages back: not usable.
            declare_queue(self.broker.connection, name, arguments, accept_existing=False)
            return True
        except pika.exceptions.ChannelClosedByBroker as exc:
            log.error("rabbitmq cannot declare retry queue %s: %s", name, describe_error(exc))
            return False
        except (pika.exceptions.AMQPError, OSError) as exc:
            self.broker.broken("declare", exc)
            return False

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Publish to the dead-letter queue with why and from where (confirmed), then ack."""
        headers = {
            **_own_headers(delivery.headers),
            ATTEMPT_HEADER: delivery.attempt,
            ORIGIN_HEADER: delivery.queue,
            REASON_HEADER: reason[:MAX_REASON_CHARS],
            DEAD_AT_HEADER: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            rabbitmq_dead.DEAD_ID_HEADER: rabbitmq_dead.new_dead_id(),
        }
        self._publish_then_ack(delivery, self.deadletter_queue, headers)
        self.metrics.incr("processor.rabbitmq.deadletter", tags={"queue": delivery.queue})

    def _publish_then_ack(
        self,
        delivery: Delivery,
        queue_name: str,
        headers: dict[str, Any],
    ) -> None:
        """Raises ConnectionError unless the copy was confirmed: the caller must then not
        count the message as settled (the broker still holds the original)."""
        import pika

        # A stale delivery (older connection) is still republished: the broker put the original
        # back, but this supervisor may have acked that redelivered copy as a duplicate of the
        # crash in flight, and then this copy is the only one left. Worst case is one extra
        # processing, which is harmless; skipping it could lose the crash.
        tag = self._current_tag(delivery)
        if not self.broker.ensure_connected():
            raise ConnectionError(f"not connected to RabbitMQ at {safe_url(self.broker.url)}")
        try:
            self.broker.publish(queue_name, delivery.body, headers)
        except (pika.exceptions.AMQPError, OSError) as exc:
            # Not confirmed, so not acked: the original comes back when the channel closes.
            self.broker.broken("republish", exc)
            raise ConnectionError(f"publish to {queue_name} not confirmed: {describe_error(exc)}")
        if tag is not None:
            try:
                self.broker.channel.basic_ack(delivery_tag=tag)
            except (pika.exceptions.AMQPError, OSError) as exc:
                # The copy is safe; the original comes back with the channel: one extra run.
                self.broker.broken("ack", exc)

    # -- producing ---------------------------------------------------------------------------

    def publish(self, queue: str, body: str) -> None:
        """Queue a crash id (persistent, confirmed). Raises if the broker cannot be reached."""
        import pika

        if queue not in self.names:
            raise ValueError(f"unknown queue {queue!r}")
        last_error: BaseException | None = None
        for _ in range(max(2, self.broker.connection_attempts)):
            if not self.broker.connect_now():
                last_error = ConnectionError(
                    f"cannot connect to RabbitMQ at {safe_url(self.broker.url)}:"
                    f" {self.broker.describe(self.broker.last_error)}"
                )
                continue
            try:
                self.broker.publish(self.names[queue], body, None)
                return
            except (pika.exceptions.AMQPError, OSError) as exc:
                last_error = exc
                self.broker.broken("publish", exc)
        raise ConnectionError(f"publish to {queue} failed: {self.broker.describe(last_error)}")

    def requeue_dead(self) -> int:
        """Move every dead-lettered message back to its origin queue with a fresh attempt count.

        Raises ConnectionError (saying how many were already moved) if the broker goes away;
        the message being moved stays dead-lettered (unacked), so running it again loses
        nothing (at worst that crash is queued twice, and processing it twice is harmless).
        """
        import pika

        moved = 0
        if not self.broker.ensure_connected():
            raise ConnectionError(f"cannot connect to RabbitMQ at {safe_url(self.broker.url)}")
        try:
            while True:
                method, properties, body = self.broker.channel.basic_get(self.deadletter_queue)
                if method is None:
                    return moved
                target = self._origin_queue(dict(properties.headers or {}))
                self.broker.publish(target, body.decode("utf-8", "replace"), None)
                self.broker.channel.basic_ack(delivery_tag=method.delivery_tag)
                moved += 1
        except (pika.exceptions.AMQPError, OSError) as exc:
            self.broker.broken("requeue_dead", exc)
            raise ConnectionError(
                f"requeue-dead stopped after moving {moved}: {describe_error(exc)}"
            ) from exc

    # -- dead letters one by one (rabbitmq_dead.py) -------------------------------------------

    def list_dead(self, limit: int | None = None) -> list[DeadLetter]:
        letters, visit = rabbitmq_dead.collect(limit)
        self._browse_dead("dead list", visit)
        return letters

    def find_dead(self, letter_ids: Collection[str]) -> dict[str, DeadLetter]:
        found, visit = rabbitmq_dead.select(letter_ids, rabbitmq_dead.KEEP)
        self._browse_dead("dead show", visit)
        return found

    def requeue_dead_letters(self, letter_ids: Collection[str]) -> set[str]:
        found, visit = rabbitmq_dead.select(letter_ids, rabbitmq_dead.TAKE)
        self._browse_dead("dead requeue", visit, take=self._republish_dead)
        return set(found)

    def purge_dead(self, letter_ids: Collection[str]) -> set[str]:
        found, visit = rabbitmq_dead.select(letter_ids, rabbitmq_dead.TAKE)
        self._browse_dead("dead purge", visit)
        return set(found)

    def dead_letter_count(self) -> int | None:
        return self.depths().get("deadletter")

    def _browse_dead(
        self,
        action: str,
        visit: Callable[[DeadLetter], str],
        take: Callable[[DeadLetter], None] | None = None,
    ) -> None:
        import pika

        if not self.broker.connect_now():
            raise ConnectionError(f"cannot connect to RabbitMQ at {safe_url(self.broker.url)}")
        try:
            rabbitmq_dead.browse(self.broker.connection, self.deadletter_queue,
                                 self._dead_letter_of, visit, take)
        except (pika.exceptions.AMQPError, OSError) as exc:
            self.broker.broken(action, exc)
            raise ConnectionError(f"{action} failed: {describe_error(exc)}") from exc

    def _republish_dead(self, letter: DeadLetter) -> None:
        origin = self.names.get(letter.queue, self.names["normal"])
        self.broker.publish(origin, letter.body, None)  # confirmed before the letter is acked

    def _dead_letter_of(self, headers: Mapping[str, Any], body: bytes) -> DeadLetter:
        own_id = _text(headers.get(rabbitmq_dead.DEAD_ID_HEADER) or "")
        logical = {real: name for name, real in self.names.items()}
        return DeadLetter(
            letter_id=own_id or rabbitmq_dead.digest_id(headers, body),
            body=body.decode("utf-8", "replace").strip(),
            queue=logical.get(self._origin_queue(headers), "normal"),
            attempts=_attempt_of(headers),
            reason=_text(headers.get(REASON_HEADER) or "") or rabbitmq_dead.death_reason(headers),
            dead_lettered_at=(_text(headers.get(DEAD_AT_HEADER) or "")
                              or rabbitmq_dead.death_time(headers)),
        )

    def _origin_queue(self, headers: Mapping[str, Any]) -> str:
        """Where a dead letter came from: our header, else the broker's x-death record (a
        quorum queue dead-letters by itself past its delivery limit), else normal."""
        origin = headers.get(ORIGIN_HEADER)
        if origin is not None and _text(origin) in self.names:
            return self.names[_text(origin)]
        real_names = set(self.names.values())
        for death in headers.get("x-death") or []:
            queue = _text(death.get("queue", "")) if isinstance(death, Mapping) else ""
            if queue in real_names:
                return queue
        return self.names["normal"]

    # -- housekeeping ------------------------------------------------------------------------

    def depths(self) -> dict[str, int]:
        # Status may be polled often; a second-old answer costs the broker nothing.
        cached_at, cached = self._depths_cache
        if cached and time.monotonic() - cached_at < DEPTHS_CACHE_S:
            return dict(cached)
        queues = {**self.names, "deadletter": self.deadletter_queue}
        depths = self.broker.message_counts(queues)
        if len(depths) == len(queues):
            self._depths_cache = (time.monotonic(), dict(depths))
        return depths


def _attempt_of(headers: Mapping[str, Any]) -> int:
    try:
        attempt = int(headers.get(ATTEMPT_HEADER, 1))
    except (TypeError, ValueError):
        attempt = 1
    try:
        # Quorum queues count broker redeliveries (a supervisor died holding the message).
        attempt += int(headers.get("x-delivery-count", 0))
    except (TypeError, ValueError):
        pass
    return max(1, attempt)


def _own_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    # The broker's own bookkeeping (x-death grows with every TTL round trip) is not carried.
    return {k: v for k, v in headers.items() if not k.startswith(BROKER_HEADER_PREFIXES)}


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


