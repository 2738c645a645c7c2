"""The queue interface the supervisor uses (docs/architecture.md §4 and 5).

Only the supervisor talks to a queue. `get` is called only when a worker is idle; the returned
Delivery is later finished with exactly one of `ack`, `retry`, `dead_letter` or `release`. An
action that raises has not happened: the queue still owns the message and delivers it again
(RabbitMQ after the reconnect, the fs spool once it can be written again, see `stuck`).
"""

from __future__ import annotations

import abc
from collections.abc import Collection
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from procsupervisor.health import Health
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


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered message as an operator sees it (`procsupervisor dead ...`).

    `letter_id` is the backend's handle for this one letter (the spool file name, or an id
    header in RabbitMQ); it is what `dead show/requeue/purge` take."""

    letter_id: str
    body: str  # crash id, or "crash_id:ruleset"
    queue: str  # logical origin queue
    attempts: int
    reason: str
    dead_lettered_at: str  # ISO 8601 UTC, "" when unknown

    @property
    def crash_id(self) -> str:
        return self.body.split(":", 1)[0]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "crash_id": self.crash_id}


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

    def release(self, delivery: Delivery, reason: str, delay_s: float) -> None:
        """Put it back to be delivered again after delay_s without counting an attempt: nothing
        about the crash failed. Either a backend was down (docs/architecture.md §5), or it is a
        duplicate held behind a crash whose own queue action failed (docs/architecture.md §4,
        delay 0). A retry of the previous attempt: a new copy with the reason, then the message
        is finished, also when the broker already took a stale delivery back (the supervisor
        acks a held duplicate once this succeeds, so handing nothing back could lose it)."""
        self.retry(replace(delivery, attempt=delivery.attempt - 1), reason, delay_s)

    @abc.abstractmethod
    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Move it to the dead-letter queue with origin queue, attempts and reason."""

    @abc.abstractmethod
    def publish(self, queue: str, body: str) -> None: ...

    @abc.abstractmethod
    def requeue_dead(self) -> int:
        """Move every dead-lettered message back to its origin queue; return how many."""

    # Dead letters one by one (docs/operations.md, "Dead letters"). They never change a letter
    # they are not asked about, and an unknown id is simply not in the answer.

    @abc.abstractmethod
    def list_dead(self, limit: int | None = None) -> list[DeadLetter]:
        """Dead letters, oldest first, at most `limit` of them."""

    @abc.abstractmethod
    def find_dead(self, letter_ids: Collection[str]) -> dict[str, DeadLetter]:
        """The dead letters with these ids, by id."""

    @abc.abstractmethod
    def requeue_dead_letters(self, letter_ids: Collection[str]) -> set[str]:
        """Move these dead letters back to their origin queues with a fresh attempt count;
        return the ids moved."""

    @abc.abstractmethod
    def purge_dead(self, letter_ids: Collection[str]) -> set[str]:
        """Delete these dead letters for good; return the ids deleted."""

    def dead_letter_count(self) -> int | None:
        """How many dead letters wait (best effort, for status); None when unknown."""
        return None

    def recover_in_flight(self) -> int:
        """At start: put back whatever a dead supervisor left in flight; return how many."""
        return 0

    def probe(self) -> Health:
        """One cheap, bounded check that the queue answers as configured (for `check` and the
        start); never raises."""
        return Health.healthy()

    def health(self) -> Health:
        """What the live client last saw, without touching the network (for status)."""
        return Health.healthy()

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
