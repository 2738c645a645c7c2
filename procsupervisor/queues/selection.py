"""Weighted, work-conserving choice of the queue to pull from next (docs/architecture.md §4).

Stride scheduling: each queue has a virtual "pass"; the next pull goes to the non-empty queue
with the smallest pass, and a pull advances that queue's pass by 1/weight. Under load every
queue therefore gets pulls in proportion to its weight (10:5:1 by default), and no queue starves
under a flood of another. An empty queue never banks credit: when it is found empty its pass is
brought up to the current virtual time. A queue found empty is tried after the others for a
short while, which keeps empty polls cheap without ever leaving a worker idle while any queue
has work (work-conserving: every queue is still tried before giving up).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

EMPTY_HOLD_S = 0.05


class WeightedQueueChooser:
    def __init__(self, weights: Mapping[str, int], queue_names: tuple[str, ...]) -> None:
        self.queue_names = tuple(queue_names)
        self._pass: dict[str, float] = dict.fromkeys(self.queue_names, 0.0)
        self._vtime = 0.0
        self._empty_until: dict[str, float] = dict.fromkeys(self.queue_names, 0.0)
        self.weights: dict[str, int] = {}
        self.set_weights(weights)

    def set_weights(self, weights: Mapping[str, int]) -> None:
        self.weights = {q: max(1, int(weights.get(q, 1))) for q in self.queue_names}

    def order(self, now: float | None = None) -> list[str]:
        """Queue names in the order they should be tried for the next pull."""
        now = time.monotonic() if now is None else now
        return sorted(
            self.queue_names,
            key=lambda q: (self._empty_until[q] > now, self._pass[q], -self.weights[q]),
        )

    def found_empty(self, queue: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._pass[queue] = max(self._pass[queue], self._vtime)
        self._empty_until[queue] = now + EMPTY_HOLD_S

    def took(self, queue: str) -> None:
        self._vtime = max(self._vtime, self._pass[queue])
        self._pass[queue] += 1.0 / self.weights[queue]
        self._empty_until[queue] = 0.0

    def pull(self, get: Callable[[str], object | None]) -> tuple[str, object] | None:
        """Try queues in order with `get(queue)`; return (queue, item) of the first hit."""
        now = time.monotonic()
        for queue in self.order(now):
            item = get(queue)
            if item is not None:
                self.took(queue)
                return queue, item
            self.found_empty(queue, now)
        return None
