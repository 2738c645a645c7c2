"""Dispatch: the next crash from the queues to an idle worker, and what each outcome does to
its queue message (ack / retry / dead-letter / poison, docs/architecture.md §4 and 5).

Owns the queue client (and the ones a reload replaced, until nothing they delivered is held),
the weighted queue chooser, the set of crash ids in flight, the poison records waiting for a
worker and the duplicates held behind a crash in flight. Never blocks: a queue action that
fails is logged and the message is left to be redelivered.

A duplicate of a crash in flight (the broker redelivers a message after a reconnect, or an id
was queued twice) stays unacked until the crash in flight is settled durably (saved and acked,
retried or dead-lettered): acking it earlier loses the crash if the supervisor dies before the
original finishes, since the original's own message may be the one the broker already gave
back (docs/architecture.md §4 and 5).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from procsupervisor import crashid
from procsupervisor.logs import log_event
from procsupervisor.metrics import Metrics
from procsupervisor.protocol import Outcome, Result
from procsupervisor.queues.base import CrashQueue, Delivery
from procsupervisor.queues.selection import WeightedQueueChooser
from procsupervisor.supervisor.status import Counters
from procsupervisor.supervisor.worker_handle import Assignment, WorkerHandle

if TYPE_CHECKING:
    from procsupervisor.config import Config

log = logging.getLogger("procsupervisor.supervisor")

MAX_RETRY_DELAY_S = 300.0
MAX_FREE_RELEASES = 5
MAX_TRACKED_RELEASES = 100_000


@dataclass
class PendingPoison:
    """A crash that killed its worker `max_attempts` times: a worker is to save a record of it,
    then it is dead-lettered."""

    delivery: Delivery
    queue: CrashQueue
    reason: str


class Dispatcher:
    def __init__(
        self, config: Config, queue: CrashQueue, metrics: Metrics, counters: Counters
    ) -> None:
        self.config = config
        self.queue = queue
        self.retired_queues: list[CrashQueue] = []  # replaced by a reload, still delivering
        self.queue_chooser = WeightedQueueChooser(config.queue_weights, queue.queue_names)
        self.metrics = metrics
        self.counters = counters
        self.in_flight: set[str] = set()  # crash ids held by a worker or poison_pending
        # crash id -> times an outage sent it back without counting an attempt
        self.free_releases: OrderedDict[str, int] = OrderedDict()
        self.poison_pending: deque[PendingPoison] = deque()
        # Unacked copies of a crash in flight, finished once that crash is settled.
        self.held_duplicates: dict[str, list[tuple[CrashQueue, Delivery]]] = {}

    def reconfigure(
        self, config: Config, metrics: Metrics, new_queue: CrashQueue | None = None
    ) -> None:
        """After a reload. A new queue client takes over pulling; the old one stays open until
        every crash it delivered is finished."""
        self.config = config
        self.metrics = metrics
        if new_queue is not None:
            self.retired_queues.append(self.queue)
            self.queue = new_queue
            self.queue_chooser = WeightedQueueChooser(config.queue_weights, new_queue.queue_names)
        else:
            self.queue_chooser.set_weights(config.queue_weights)

    # -- handing out crashes ------------------------------------------------------------------

    def dispatch(
        self, available: Iterable[WorkerHandle], *, draining: bool, pulling: bool = True
    ) -> None:
        """Give each available worker a poison record to save or, unless draining or the
        breaker stopped `pulling`, the next crash from the queues."""
        for worker in available:
            if self.poison_pending:
                poison = self.poison_pending.popleft()
                self._assign(worker, Assignment(poison.delivery, poison.queue, time.monotonic(),
                                                poison_reason=poison.reason))
                continue
            if draining or not pulling:
                return
            assignment = self._next_assignment()
            if assignment is None:
                return
            self._assign(worker, assignment)

    def _next_assignment(self) -> Assignment | None:
        """The next valid, not-already-running crash from the queues, or None."""
        queue = self.queue
        while True:
            try:
                pulled = self.queue_chooser.pull(queue.get)
            except Exception as exc:
                log_event(log, logging.ERROR, "queue get failed",
                          error=f"{type(exc).__name__}: {exc}"[:300])
                return None
            if pulled is None:
                return None
            name, delivery = pulled
            assert isinstance(delivery, Delivery)
            self.counters.queue(name).pulled += 1
            if not crashid.is_valid(delivery.crash_id):
                self._dead_letter(queue, delivery, "invalid crash id")
                continue
            if delivery.crash_id in self.in_flight:
                self.held_duplicates.setdefault(delivery.crash_id, []).append((queue, delivery))
                log_event(log, logging.INFO,
                          "duplicate of a crash in flight, held until that one is settled",
                          crash_id=delivery.crash_id, queue=name)
                continue
            return Assignment(delivery, queue, time.monotonic())

    def _assign(self, worker: WorkerHandle, assignment: Assignment) -> None:
        self.in_flight.add(assignment.delivery.crash_id)
        worker.assign(assignment)

    # -- outcomes -----------------------------------------------------------------------------

    def on_result(self, worker: WorkerHandle, result: Result) -> None:
        """The worker finished the crash it held (the caller checked it is that crash)."""
        ok = result.outcome is Outcome.OK
        assignment = worker.finish(ok)
        assert assignment is not None
        delivery = assignment.delivery
        queue = assignment.queue
        reason = result.reason
        poison_reason = assignment.poison_reason
        self.in_flight.discard(delivery.crash_id)
        self.counters.completed(ok=ok and poison_reason is None)
        if poison_reason is not None:
            note = "" if ok else f"; poison record not saved: {reason}"
            durable = self._dead_letter(queue, delivery, poison_reason + note)
        elif ok:
            self._ack(queue, delivery)
            durable = True  # saved everywhere: a copy left in a queue only means a redo
        elif result.outcome is Outcome.INVALID:
            durable = self._dead_letter(queue, delivery, reason or "invalid crash")
        elif result.outcome is Outcome.UNAVAILABLE and self._may_release(delivery):
            durable = self._release(queue, delivery, f"{result.outcome}: {reason}")
        elif delivery.attempt >= self.config.supervisor.max_attempts:
            durable = self._dead_letter(
                queue, delivery, f"{result.outcome} after {delivery.attempt} attempts: {reason}")
        else:
            durable = self._retry(queue, delivery, f"{result.outcome}: {reason}")
        self._settle_duplicates(delivery.crash_id, durable)
        log_event(log, logging.INFO, "crash done", crash_id=delivery.crash_id,
                  queue=delivery.queue, attempt=delivery.attempt, outcome=result.outcome,
                  poison=poison_reason is not None, reason=reason,
                  **{f"{k}_ms": v for k, v in result.timings_ms.items()})

    def assignment_lost(self, assignment: Assignment, cause: str, *, hard_stop: bool) -> None:
        """The worker holding `assignment` died (`cause`) before reporting a result."""
        delivery = assignment.delivery
        self.in_flight.discard(delivery.crash_id)
        self.counters.completed(ok=False)
        if hard_stop:
            # Not the crash's fault: leave it (and any duplicate held behind it) unacked; the
            # queue redelivers it after restart.
            log_event(log, logging.INFO, "left in flight for the next start",
                      crash_id=delivery.crash_id, queue=delivery.queue)
            return
        max_attempts = self.config.supervisor.max_attempts
        if assignment.poison_reason is not None:
            durable = self._dead_letter(
                assignment.queue, delivery,
                f"{assignment.poison_reason}; poison record not saved: worker died ({cause})")
        elif delivery.attempt >= max_attempts:
            reason = f"worker killed on attempt {delivery.attempt} of {max_attempts}: {cause}"
            self.poison_pending.append(PendingPoison(delivery, assignment.queue, reason))
            self.in_flight.add(delivery.crash_id)
            return  # still in flight: its duplicates wait for the poison record
        else:
            durable = self._retry(assignment.queue, delivery, f"worker died: {cause}")
        self._settle_duplicates(delivery.crash_id, durable)

    def _settle_duplicates(self, crash_id: str, durable: bool) -> None:
        """The crash in flight was settled: its held duplicates are now redundant (`durable`),
        or, when its queue action failed, handed back to their queue to be delivered again."""
        for queue, duplicate in self.held_duplicates.pop(crash_id, []):
            if durable:
                self._ack(queue, duplicate)
            else:
                self._finish("release", queue.release, duplicate,
                             "its original's queue action failed", 0.0)

    # -- queue actions ------------------------------------------------------------------------

    def _finish(self, action: str, call: Callable[..., Any], delivery: Delivery,
                *args: Any) -> bool:
        """Run one queue action; on failure log it and leave the message to the queue, which
        delivers it again (the broker after a reconnect, the fs spool once it is writable)."""
        try:
            call(delivery, *args)
        except Exception as exc:
            log_event(log, logging.ERROR, f"queue {action} failed; the crash will be redelivered",
                      crash_id=delivery.crash_id[:80], queue=delivery.queue,
                      error=f"{type(exc).__name__}: {exc}"[:300])
            return False
        self.metrics.incr(f"supervisor.{action}", tags={"queue": delivery.queue})
        return True

    def _ack(self, queue: CrashQueue, delivery: Delivery) -> bool:
        self.free_releases.pop(delivery.crash_id, None)
        if not self._finish("ack", queue.ack, delivery):
            return False
        self.counters.queue(delivery.queue).acked += 1
        return True

    def _retry(self, queue: CrashQueue, delivery: Delivery, reason: str) -> bool:
        base = self.config.supervisor.retry_delay_s
        delay = min(MAX_RETRY_DELAY_S, base * 2 ** (delivery.attempt - 1))
        if not self._finish("retry", queue.retry, delivery, reason, delay):
            return False
        self.counters.queue(delivery.queue).retried += 1
        log_event(log, logging.INFO, "crash retried", crash_id=delivery.crash_id,
                  queue=delivery.queue, attempt=delivery.attempt, delay_s=delay, reason=reason)
        return True

    def _may_release(self, delivery: Delivery) -> bool:
        """Whether an outage may send this crash back without an attempt once more. A failure
        that only looked backend-wide (the probes find the backend healthy, yet this crash
        keeps failing) must not loop for ever: past MAX_FREE_RELEASES it costs attempts."""
        crash_id = delivery.crash_id
        releases = self.free_releases.pop(crash_id, 0) + 1
        self.free_releases[crash_id] = releases
        while len(self.free_releases) > MAX_TRACKED_RELEASES:
            self.free_releases.popitem(last=False)
        return releases <= MAX_FREE_RELEASES

    def _release(self, queue: CrashQueue, delivery: Delivery, reason: str) -> bool:
        delay = self.config.supervisor.retry_delay_s
        if not self._finish("release", queue.release, delivery, reason, delay):
            return False
        self.counters.queue(delivery.queue).retried += 1
        log_event(log, logging.INFO, "crash retried", crash_id=delivery.crash_id,
                  queue=delivery.queue, attempt=delivery.attempt, attempt_counted=False,
                  delay_s=delay, reason=reason)
        return True

    def _dead_letter(self, queue: CrashQueue, delivery: Delivery, reason: str) -> bool:
        self.free_releases.pop(delivery.crash_id, None)
        if not self._finish("dead_letter", queue.dead_letter, delivery, reason):
            return False
        self.counters.queue(delivery.queue).dead_lettered += 1
        log_event(log, logging.WARNING, "crash dead-lettered", crash_id=delivery.crash_id[:80],
                  queue=delivery.queue, attempt=delivery.attempt, reason=reason)
        return True

    # -- queue clients ------------------------------------------------------------------------

    def queues(self) -> tuple[CrashQueue, ...]:
        return (self.queue, *self.retired_queues)

    def stuck_in_flight(self) -> list[str]:
        """Crash ids a queue holds in flight that no worker has: their queue action failed
        and the queue settles them when it can (fs: once the spool is writable again)."""
        return [crash_id for queue in self.queues() for crash_id in queue.stuck()]

    def poll_queues(self) -> None:
        for queue in self.queues():
            queue.poll()

    def close_retired_queues(self, held: Iterable[Assignment]) -> None:
        """Close replaced queue clients once no crash they delivered is held any more."""
        if not self.retired_queues:
            return
        in_use = {id(assignment.queue) for assignment in held}
        in_use |= {id(poison.queue) for poison in self.poison_pending}
        in_use |= {id(queue) for copies in self.held_duplicates.values() for queue, _ in copies}
        # A client still retrying a refused action (fs: the spool was not writable) is kept.
        for queue in [q for q in self.retired_queues if id(q) not in in_use and not q.stuck()]:
            self.retired_queues.remove(queue)
            queue.close()

    def close_queues(self) -> None:
        for queue in self.queues():
            try:
                queue.close()
            except Exception:
                log.exception("closing the queue failed")
