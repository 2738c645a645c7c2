"""The queue interface the supervisor uses (docs/architecture.md §4 and 5).

Only the supervisor talks to a queue. `get` is called only when a worker is idle; the returned
Delivery is later finished with exactly one of `ack`, `retry`, `dead_letter` or `release`. An
action that raises has not happened: the queue still owns the message and delivers it again
(RabbitMQ after the reconnect, the fs spool once it can be written again, see `stuck`).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

from procsupervisor.logical_queues import DEFAULT_QUEUE_NAMES


@dataclass
class Delivery:
    """One message taken from a queue and not yet finished."""

    queue: str  # logical name: priority / normal / reprocessing
    body: str  # crash id, or "crash_id:ruleset"
    attempt: int = 1  # 1 for the first delivery, +1 per retry
    tag: Any = None  # backend's handle (rename path, delivery tag, ...)
    headers: dict[str, Any] = field(default_factory=dict)

    @property
    def crash_id(self) -> str:
        return self.body.split(":", 1)[0]

    @property
    def ruleset(self) -> str | None:
        parts = self.body.split(":", 1)
        return parts[1] if len(parts) == 2 and parts[1] else None


class CrashQueue(abc.ABC):
    """Backends: `fs` (embedded default) and `rabbitmq`."""

    queue_names: tuple[str, ...] = DEFAULT_QUEUE_NAMES

    @abc.abstractmethod
    def get(self, queue: str) -> Delivery | None:
        """Take one message from the named logical queue, or None if it is empty."""

    @abc.abstractmethod
    def ack(self, delivery: Delivery) -> None: ...

    @abc.abstractmethod
    def retry(self, delivery: Delivery, reason: str, delay_s: float) -> None:
        """Put it back to be delivered again after delay_s with attempt + 1; then ack it."""

    @abc.abstractmethod
    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Move it to the dead-letter queue with origin queue, attempts and reason."""

    def release(self, delivery: Delivery) -> None:  # noqa: B027 - optional hook
        """Give it back unchanged (same attempt) to be delivered again: a duplicate whose
        original could not be settled. By default it stays unacked, which a broker redelivers
        when its connection closes."""

    @abc.abstractmethod
    def publish(self, queue: str, body: str) -> None: ...

    @abc.abstractmethod
    def requeue_dead(self) -> int:
        """Move every dead-lettered message back to its origin queue; return how many."""

    def recover_in_flight(self) -> int:
        """At start: put back whatever a dead supervisor left in flight; return how many."""
        return 0

    def poll(self) -> None:  # noqa: B027 - optional hook
        """Called every loop turn: service the connection (heartbeats), flush pending work."""

    def close(self) -> None:  # noqa: B027 - optional hook
        ...

    def depths(self) -> dict[str, int]:
        """Messages waiting per logical queue (best effort), for status."""
        return {}

    def stuck(self) -> list[str]:
        """Crash ids this client holds in flight because an `ack`, `retry`, `dead_letter` or
        `release` failed; it keeps trying them from `poll` (shown in status)."""
        return []

    def queued_crash_ids(self) -> set[str] | None:
        """Every crash id waiting, in flight or dead-lettered here, for `verify`; None when
        the backend cannot list its messages without taking them (a broker)."""
        return None
