"""Weighted, work-conserving queue selection."""

from __future__ import annotations

from collections import Counter

from procsupervisor.queues.selection import WeightedQueueChooser

NAMES = ("priority", "normal", "reprocessing")
WEIGHTS = {"priority": 10, "normal": 5, "reprocessing": 1}


def drain(chooser: WeightedQueueChooser, backlog: dict[str, int], pulls: int) -> Counter[str]:
    taken: Counter[str] = Counter()

    def get(queue: str) -> object | None:
        if backlog[queue] > 0:
            backlog[queue] -= 1
            return queue
        return None

    for _ in range(pulls):
        hit = chooser.pull(get)
        if hit is None:
            break
        taken[hit[0]] += 1
    return taken


def test_all_busy_queues_share_by_weight() -> None:
    taken = drain(WeightedQueueChooser(WEIGHTS, NAMES), dict.fromkeys(NAMES, 10_000), 1600)
    assert taken == {"priority": 1000, "normal": 500, "reprocessing": 100}


def test_no_queue_starves_under_a_flood_of_another() -> None:
    backlog = {"priority": 100_000, "normal": 30, "reprocessing": 5}
    taken = drain(WeightedQueueChooser(WEIGHTS, NAMES), backlog, 160)
    assert taken["normal"] >= 30 and taken["reprocessing"] >= 5


def test_work_conserving_when_only_one_queue_has_work() -> None:
    taken = drain(
        WeightedQueueChooser(WEIGHTS, NAMES), {"priority": 0, "normal": 0, "reprocessing": 50}, 100
    )
    assert taken == {"reprocessing": 50}


def test_an_idle_queue_does_not_bank_credit() -> None:
    chooser = WeightedQueueChooser(WEIGHTS, NAMES)
    drain(chooser, {"priority": 0, "normal": 500, "reprocessing": 0}, 500)
    # priority was empty for 500 pulls; now both are busy, and it must get its 2:1 share,
    # not a burst of 500 in a row that would starve normal.
    taken = drain(chooser, {"priority": 1000, "normal": 1000, "reprocessing": 0}, 30)
    assert taken["normal"] >= 9


def test_weights_can_change() -> None:
    chooser = WeightedQueueChooser(WEIGHTS, NAMES)
    chooser.set_weights({"priority": 1, "normal": 1, "reprocessing": 1})
    taken = drain(chooser, dict.fromkeys(NAMES, 100), 30)
    assert taken == {"priority": 10, "normal": 10, "reprocessing": 10}
