"""The supervisor's connection to RabbitMQ: one confirmed channel that outlives broker outages.

What the queue contract (rabbitmq.py) needs from pika, and nothing of crashes or queues:

- Connecting declares the queues first (the queue's `declare_topology`, each declaration on a
  throwaway channel), then opens the one consuming channel with publisher confirms on, so a
  publish returns only once the broker has the message.
- Every new channel bumps `generation`. A delivery tag belongs to one channel: the queue keeps
  the generation with each tag and never acks an older one (the broker has already requeued
  those messages).
- Connection errors never escape the queue's calls: `broken` drops the connection, and the
  next call (or `poll`) reconnects, with growing backoff while connecting keeps failing.
- `poll` runs `process_data_events(time_limit=0)` every loop turn, which answers heartbeats
  while every worker is busy on a long crash.
- A forked child never speaks on its parent's connection (it only forgets it).
- `health` says what the last connection attempt found, without touching the network; `probe`
  opens and closes one throwaway connection (procsupervisor.health). Errors are described by
  their real cause (`ConnectionRefusedError: 127.0.0.1:5999`, the broker's reply text), never
  by pika's empty wrapper.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from procsupervisor.health import (
    Health,
    bounded_line,
    describe_network_error,
    innermost_os_error,
)
from procsupervisor.metrics import Metrics

log = logging.getLogger(__name__)

DEFAULT_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
PERSISTENT = 2
# pika quotes the broker's reply as "(403) 'ACCESS_REFUSED - Login was refused ...'".
BROKER_REPLY_RE = re.compile(r"\((\d{3})\) ['\"](.*?)['\"]?\)?$")
# Reply codes of a broker refusing our configuration: access refused, vhost not allowed.
MISCONFIGURED_REPLY_CODES = frozenset({403, 530})


class BrokerConnection:
    def __init__(
        self,
        url: str,
        *,
        declare_topology: Callable[[Any], None],
        metrics: Metrics,
        heartbeat_s: int = 60,
        socket_timeout_s: float = 5.0,
        connection_attempts: int = 1,
        reconnect_backoff_s: tuple[float, ...] = DEFAULT_BACKOFF_S,
        blocked_timeout_s: float = 60.0,
    ) -> None:
        self.url = url
        self.declare_topology = declare_topology  # given the pika connection before any use
        self.metrics = metrics
        self.heartbeat_s = heartbeat_s
        self.socket_timeout_s = socket_timeout_s
        self.connection_attempts = connection_attempts
        self.backoff_s = reconnect_backoff_s or DEFAULT_BACKOFF_S
        self.blocked_timeout_s = blocked_timeout_s
        self.connection: Any = None
        self.channel: Any = None  # the consuming channel, with publisher confirms
        self._pid: int | None = None
        self.generation = 0  # bumped for every new channel; delivery tags carry it
        self._failures = 0
        self._next_connect_at = 0.0
        self.reconnects = 0
        self.last_error: BaseException | None = None  # of the last failed connect or call

    @property
    def connected(self) -> bool:
        return (
            self.channel is not None
            and self.channel.is_open
            and self.connection is not None
            and self.connection.is_open
        )

    def _parameters(self) -> Any:
        import pika

        params = pika.URLParameters(self.url)
        params.heartbeat = self.heartbeat_s
        params.socket_timeout = self.socket_timeout_s
        params.connection_attempts = self.connection_attempts
        params.blocked_connection_timeout = self.blocked_timeout_s
        params.client_properties = {"connection_name": f"procsupervisor pid {os.getpid()}"}
        return params

    def _connect(self) -> None:
        import pika

        connection = pika.BlockingConnection(self._parameters())
        try:
            self.declare_topology(connection)
            channel = connection.channel()
            channel.confirm_delivery()
        except Exception:
            _quiet_close(connection)
            raise
        self.connection, self.channel, self._pid = connection, channel, os.getpid()
        self.generation += 1
        self._failures = 0
        self.last_error = None

    def ensure_connected(self) -> bool:
        """Connected now, or reconnecting when its backoff allows; never raises."""
        if self.connected and self._pid == os.getpid():
            return True
        now = time.monotonic()
        if now < self._next_connect_at:
            return False
        self._drop()
        try:
            self._connect()
        except Exception as exc:
            delay = self.backoff_s[min(self._failures, len(self.backoff_s) - 1)]
            self._failures += 1
            self._next_connect_at = time.monotonic() + delay
            self.last_error = exc
            log.warning(
                "rabbitmq connect failed attempt=%d retry_in_s=%.1f error=%s",
                self._failures,
                delay,
                self.describe(exc),
            )
            return False
        if self.generation > 1:
            self.reconnects += 1
            log.info("rabbitmq reconnected generation=%d", self.generation)
        return True

    def connect_now(self) -> bool:
        """Connect (or reconnect) without waiting out the backoff: for a caller that must
        report failure rather than wait for a later loop turn."""
        self._next_connect_at = 0.0
        return self.ensure_connected()

    def broken(self, action: str, exc: BaseException) -> None:
        log.warning("rabbitmq %s failed, reconnecting: %s", action, self.describe(exc))
        self.last_error = exc
        self.metrics.incr("processor.rabbitmq.connection_error", tags={"action": action})
        self._drop()
        # Let the next call reconnect at once; backoff applies only if that fails.
        self._next_connect_at = 0.0

    # -- health -------------------------------------------------------------------------------

    def describe(self, exc: BaseException | None) -> str:
        """The real cause of a connection failure, naming the broker's address."""
        return describe_error(exc, address=_address(self.url))

    def health(self) -> Health:
        if self.connected or self.last_error is None:
            return Health.healthy()
        return broker_health(self.last_error, self.describe(self.last_error))

    def probe(self) -> Health:
        """Open (and close) one throwaway connection with our URL and credentials."""
        import pika

        params = self._parameters()
        params.connection_attempts = 1
        params.retry_delay = 0
        try:
            connection = pika.BlockingConnection(params)
            try:
                connection.channel().close()
            finally:
                _quiet_close(connection)
        except Exception as exc:
            if not self.connected:
                self.last_error = exc  # `health` says so until a connection succeeds
            return broker_health(exc, self.describe(exc))
        return Health.healthy()

    def _drop(self) -> None:
        connection, self.connection, self.channel = self.connection, None, None
        if connection is not None and self._pid == os.getpid():
            _quiet_close(connection)

    def close(self) -> None:
        if self._pid is not None and self._pid != os.getpid():
            # A forked child must not speak on its parent's connection: just forget it.
            self.connection = self.channel = None
            return
        self._drop()

    def poll(self) -> None:
        """Every loop turn: heartbeats and broker frames; reconnect when the backoff is due."""
        if not self.connected:
            self.ensure_connected()
            return
        import pika

        try:
            self.connection.process_data_events(time_limit=0)
        except (pika.exceptions.AMQPError, OSError) as exc:
            self.broken("poll", exc)

    def publish(self, queue_name: str, body: str, headers: dict[str, Any] | None) -> None:
        """Publish persistently on the consuming channel; raises unless the broker confirmed."""
        import pika

        # With confirm_delivery on the channel, this returns only once the broker confirmed;
        # `mandatory` makes a missing queue an error instead of a silent drop.
        self.channel.basic_publish(
            exchange="",
            routing_key=queue_name,
            body=body.encode("utf-8"),
            properties=pika.BasicProperties(
                delivery_mode=PERSISTENT, headers=headers or None, content_type="text/plain"
            ),
            mandatory=True,
        )

    def message_counts(self, queues: Mapping[str, str]) -> dict[str, int]:
        """Messages waiting per queue (`{label: real name}`), by label; {} while the broker
        is away, and the labels counted before a queue that cannot be declared passively."""
        if not self.ensure_connected():
            return {}
        import pika

        counts: dict[str, int] = {}
        channel = None
        try:
            # Its own channel: a passive declare of a deleted queue closes the channel it used.
            channel = self.connection.channel()
            for label, real in queues.items():
                frame = channel.queue_declare(queue=real, passive=True)
                counts[label] = int(frame.method.message_count)
        except pika.exceptions.ChannelClosedByBroker as exc:
            log.warning("rabbitmq queue depth unavailable: %s", describe_error(exc))
        except (pika.exceptions.AMQPError, OSError) as exc:
            self.broken("depths", exc)
        finally:
            if channel is not None and channel.is_open:
                try:
                    channel.close()
                except Exception:
                    pass
        return counts


def declare_queue(
    connection: Any, name: str, arguments: dict[str, Any], accept_existing: bool = True
) -> None:
    """Declare a durable queue on a throwaway channel: a refused declaration closes the channel
    it used, and the consuming channel must never close (its delivery tags would go stale)."""
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


def describe_error(exc: BaseException | None, address: str = "") -> str:
    """`Type: message` of the real cause, on one line. pika wraps a socket error in an
    AMQPConnectionError whose text is empty or a repr; the innermost OSError is named instead,
    with the broker's address (`ConnectionRefusedError: 127.0.0.1:5999`), and a broker's
    refusal by its reply text."""
    if exc is None:
        return "unknown error"
    if innermost_os_error(exc) is not None:
        return describe_network_error(exc, address)
    reply = _broker_reply(exc)
    if reply is not None:
        return bounded_line(f"{type(exc).__name__}: {reply[1]}", 300)
    return bounded_line(f"{type(exc).__name__}: {exc}", 300)


def broker_health(exc: BaseException, cause: str) -> Health:
    """A failed connection as a probe result: refused by the broker (credentials, vhost) is
    misconfigured, anything else unreachable."""
    import pika

    refusals = (
        pika.exceptions.ProbableAuthenticationError,
        pika.exceptions.ProbableAccessDeniedError,
        pika.exceptions.AuthenticationError,
    )
    reply = _broker_reply(exc)
    if isinstance(exc, refusals) or (reply is not None and reply[0] in MISCONFIGURED_REPLY_CODES):
        return Health.misconfigured(cause)
    return Health.unreachable(cause)


def _broker_reply(exc: BaseException) -> tuple[int, str] | None:
    """(reply code, reply text) of a broker's refusal, from the exception or its text."""
    code = getattr(exc, "reply_code", None)
    text = getattr(exc, "reply_text", None)
    if isinstance(code, int) and isinstance(text, str):
        return code, _trim_reply(text)
    for arg in (*getattr(exc, "args", ()), str(exc)):
        match = BROKER_REPLY_RE.search(str(arg).strip())
        if match:
            return int(match.group(1)), _trim_reply(match.group(2))
    return None


def _trim_reply(text: str) -> str:
    return text.replace(" For details see the broker logfile.", "").rstrip(".")


def _address(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.hostname or ''}:{parts.port or 5672}"


def safe_url(url: str) -> str:
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
