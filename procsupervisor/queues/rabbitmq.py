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
`poll` reconnects with growing backoff. `poll` also runs
`process_data_events(time_limit=0)` every loop turn, which answers heartbeats while every
worker is busy on a long crash. Duplicates of a crash already in flight are acked by the
supervisor, which knows what is in flight.

With `quorum = true` the three queues are quorum queues with `x-delivery-limit`: a message the
broker had to redeliver more than that many times (its supervisor kept dying) goes to the
dead-letter queue; the broker's `x-delivery-count` header adds to the attempt count.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from procsupervisor.logical_queues import DEFAULT_QUEUE_NAMES
from procsupervisor.metrics import Metrics, NullMetrics
from procsupervisor.queues.base import CrashQueue, Delivery

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-procsupervisor-attempt"
ORIGIN_HEADER = "x-procsupervisor-origin"
REASON_HEADER = "x-procsupervisor-reason"
DEAD_AT_HEADER = "x-procsupervisor-dead-lettered-at"
MAX_REASON_CHARS = 1000
DEFAULT_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
PERSISTENT = 2
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
        self.url = url
        self.names = {q: f"socorro.{q}" for q in DEFAULT_QUEUE_NAMES}
        self.names.update(names or {})
        self.deadletter_queue = deadletter_queue
        self.retry_prefix = retry_queue
        self.quorum = quorum
        self.delivery_limit = delivery_limit
        self.heartbeat_s = heartbeat_s
        self.socket_timeout_s = socket_timeout_s
        self.connection_attempts = connection_attempts
        self.backoff_s = reconnect_backoff_s or DEFAULT_BACKOFF_S
        self.blocked_timeout_s = blocked_timeout_s
        self.metrics = metrics or NullMetrics()
        self._connection: Any = None
        self._channel: Any = None
        self._pid: int | None = None
        self.generation = 0  # bumped for every new channel; delivery tags carry it
        self._failures = 0
        self._next_connect_at = 0.0
        self.reconnects = 0
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

    # -- connection --------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return (
            self._channel is not None
            and self._channel.is_open
            and self._connection is not None
            and self._connection.is_open
        )

    def _connect(self) -> None:
        import pika

        params = pika.URLParameters(self.url)
        params.heartbeat = self.heartbeat_s
        params.socket_timeout = self.socket_timeout_s
        params.connection_attempts = self.connection_attempts
        params.blocked_connection_timeout = self.blocked_timeout_s
        params.client_properties = {"connection_name": f"procsupervisor pid {os.getpid()}"}
        connection = pika.BlockingConnection(params)
        try:
            self._declare_all(connection)
            channel = connection.channel()
            channel.confirm_delivery()
        except Exception:
            _quiet_close(connection)
            raise
        self._connection, self._channel, self._pid = connection, channel, os.getpid()
        self.generation += 1
        self._failures = 0

    def _declare_all(self, connection: Any) -> None:
        for logical in DEFAULT_QUEUE_NAMES:
            self._declare(connection, self.names[logical], self._origin_arguments())
        self._declare(connection, self.deadletter_queue, self._deadletter_arguments())

    def _declare(
        self, connection: Any, name: str, arguments: dict[str, Any], accept_existing: bool = True
    ) -> None:
        """Declare on a throwaway channel: a refused declaration closes the channel it used,
        and the consuming channel must never close (its delivery tags would go stale)."""
        import pika

        channel = connection.channel()
        try:
            channel.queue_declare(queue=name, durable=True, arguments=arguments)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != 406 or not accept_existing:
                raise
            # The queue exists with other arguments (e.g. declared before `quorum` was set):
            # use it as it is rather than refusing to start.
            log.warning("queue %s exists with other arguments (%s); using it", name, exc)
            channel = connection.channel()
            channel.queue_declare(queue=name, passive=True)
        finally:
            if channel.is_open:
                channel.close()

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

    def _ensure_connected(self) -> bool:
        """Connected now, or reconnecting when its backoff allows; never raises."""
        if self.connected and self._pid == os.getpid():
            return True
        now = time.monotonic()
        if now < self._next_connect_at:
            return False
        self._drop_connection()
        try:
            self._connect()
        except Exception as exc:
            delay = self.backoff_s[min(self._failures, len(self.backoff_s) - 1)]
            self._failures += 1
            self._next_connect_at = time.monotonic() + delay
            log.warning(
                "rabbitmq connect failed attempt=%d retry_in_s=%.1f error=%s",
                self._failures,
                delay,
                _describe(exc),
            )
            return False
        if self.generation > 1:
            self.reconnects += 1
            log.info("rabbitmq reconnected generation=%d", self.generation)
        return True

    def _broken(self, action: str, exc: BaseException) -> None:
        log.warning("rabbitmq %s failed, reconnecting: %s", action, _describe(exc))
        self.metrics.incr("processor.rabbitmq.connection_error", tags={"action": action})
        self._drop_connection()
        # Let the next call reconnect at once; backoff applies only if that fails.
        self._next_connect_at = 0.0

    def _drop_connection(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and self._pid == os.getpid():
            _quiet_close(connection)

    def close(self) -> None:
        if self._pid is not None and self._pid != os.getpid():
            # A forked child must not speak on its parent's connection: just forget it.
            self._connection = self._channel = None
            return
        self._drop_connection()

    # -- consuming ---------------------------------------------------------------------------

    def get(self, queue: str) -> Delivery | None:
        if queue not in self.names or not self._ensure_connected():
            return None
        import pika

        try:
            method, properties, body = self._channel.basic_get(self.names[queue], auto_ack=False)
        except (pika.exceptions.AMQPError, OSError) as exc:
            self._broken("get", exc)
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
            self._channel.basic_ack(delivery_tag=tag)
        except (pika.exceptions.AMQPError, OSError) as exc:
            # The broker requeues it with the channel; processing it again is harmless.
            self._broken("ack", exc)

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
        if self._publish_then_ack(delivery, name, headers):
            self.metrics.incr("processor.rabbitmq.retry", tags={"queue": delivery.queue})

    def _declare_retry_queue(self, name: str, arguments: dict[str, Any]) -> bool:
        import pika

        if not self._ensure_connected():
            return False
        try:
            # A delay queue with other arguments might never send messages back: not usable.
            self._declare(self._connection, name, arguments, accept_existing=False)
            return True
        except pika.exceptions.ChannelClosedByBroker as exc:
            log.error("rabbitmq cannot declare retry queue %s: %s", name, _describe(exc))
            return False
        except (pika.exceptions.AMQPError, OSError) as exc:
            self._broken("declare", exc)
            return False

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Publish to the dead-letter queue with why and from where (confirmed), then ack."""
        headers = {
            **_own_headers(delivery.headers),
            ATTEMPT_HEADER: delivery.attempt,
            ORIGIN_HEADER: delivery.queue,
            REASON_HEADER: reason[:MAX_REASON_CHARS],
            DEAD_AT_HEADER: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        if self._publish_then_ack(delivery, self.deadletter_queue, headers):
            self.metrics.incr("processor.rabbitmq.deadletter", tags={"queue": delivery.queue})

    def _publish_then_ack(
        self,
        delivery: Delivery,
        queue_name: str,
        headers: dict[str, Any],
    ) -> bool:
        import pika

        # A stale delivery (older connection) is still republished: the broker put the original
        # back, but this supervisor may have acked that redelivered copy as a duplicate of the
        # crash in flight, and then this copy is the only one left. Worst case is one extra
        # processing, which is harmless; skipping it could lose the crash.
        tag = self._current_tag(delivery)
        if not self._ensure_connected():
            return False
        try:
            self._publish(queue_name, delivery.body, headers)
            if tag is not None:
                self._channel.basic_ack(delivery_tag=tag)
            return True
        except (pika.exceptions.AMQPError, OSError) as exc:
            # Not confirmed, so not acked: the original comes back when the channel closes.
            self._broken("republish", exc)
            return False

    def _publish(self, queue_name: str, body: str, headers: dict[str, Any] | None) -> None:
        import pika

        # With confirm_delivery on the channel, this returns only once the broker confirmed;
        # `mandatory` makes a missing queue an error instead of a silent drop.
        self._channel.basic_publish(
            exchange="",
            routing_key=queue_name,
            body=body.encode("utf-8"),
            properties=pika.BasicProperties(
                delivery_mode=PERSISTENT, headers=headers or None, content_type="text/plain"
            ),
            mandatory=True,
        )

    # -- producing ---------------------------------------------------------------------------

    def publish(self, queue: str, body: str) -> None:
        """Queue a crash id (persistent, confirmed). Raises if the broker cannot be reached."""
        import pika

        if queue not in self.names:
            raise ValueError(f"unknown queue {queue!r}")
        last_error: BaseException | None = None
        for _ in range(max(2, self.connection_attempts)):
            self._next_connect_at = 0.0
            if not self._ensure_connected():
                last_error = ConnectionError(f"cannot connect to RabbitMQ at {_safe_url(self.url)}")
                continue
            try:
                self._publish(self.names[queue], body, None)
                return
            except (pika.exceptions.AMQPError, OSError) as exc:
                last_error = exc
                self._broken("publish", exc)
        raise ConnectionError(f"publish to {queue} failed: {_describe(last_error)}")

    def requeue_dead(self) -> int:
        """Move every dead-lettered message back to its origin queue with a fresh attempt count.

        Raises ConnectionError (saying how many were already moved) if the broker goes away;
        the message being moved stays dead-lettered (unacked), so running it again loses
        nothing (at worst that crash is queued twice, and processing it twice is harmless).
        """
        import pika

        moved = 0
        if not self._ensure_connected():
            raise ConnectionError(f"cannot connect to RabbitMQ at {_safe_url(self.url)}")
        try:
            while True:
                method, properties, body = self._channel.basic_get(self.deadletter_queue)
                if method is None:
                    return moved
                target = self._origin_queue(dict(properties.headers or {}))
                self._publish(target, body.decode("utf-8", "replace"), None)
                self._channel.basic_ack(delivery_tag=method.delivery_tag)
                moved += 1
        except (pika.exceptions.AMQPError, OSError) as exc:
            self._broken("requeue_dead", exc)
            raise ConnectionError(
                f"requeue-dead stopped after moving {moved}: {_describe(exc)}"
            ) from exc

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

    def poll(self) -> None:
        """Every loop turn: heartbeats and broker frames; reconnect when the backoff is due."""
        if not self.connected:
            self._ensure_connected()
            return
        import pika

        try:
            self._connection.process_data_events(time_limit=0)
        except (pika.exceptions.AMQPError, OSError) as exc:
            self._broken("poll", exc)

    def depths(self) -> dict[str, int]:
        # Status may be polled often; a second-old answer costs the broker nothing.
        cached_at, cached = self._depths_cache
        if cached and time.monotonic() - cached_at < DEPTHS_CACHE_S:
            return dict(cached)
        if not self._ensure_connected():
            return {}
        import pika

        depths: dict[str, int] = {}
        channel = None
        try:
            # Its own channel: a passive declare of a deleted queue closes the channel it used.
            channel = self._connection.channel()
            for logical, real in [*self.names.items(), ("deadletter", self.deadletter_queue)]:
                frame = channel.queue_declare(queue=real, passive=True)
                depths[logical] = int(frame.method.message_count)
            self._depths_cache = (time.monotonic(), dict(depths))
        except pika.exceptions.ChannelClosedByBroker as exc:
            log.warning("rabbitmq queue depth unavailable: %s", _describe(exc))
        except (pika.exceptions.AMQPError, OSError) as exc:
            self._broken("depths", exc)
        finally:
            if channel is not None and channel.is_open:
                try:
                    channel.close()
                except Exception:
                    pass
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


def _describe(exc: BaseException | None) -> str:
    return f"{type(exc).__name__}: {exc}"[:300] if exc is not None else "unknown error"


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _quiet_close(connection: Any) -> None:
    try:
        if connection.is_open:
            connection.close()
    except Exception:
        pass
