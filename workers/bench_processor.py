"""A processor that skips the stackwalker and the rules, for measuring everything around them.

    [supervisor]
    processor = procsupervisor.workers.bench_processor:BenchProcessor
    [processor]
    work_units = 0    # pure-Python CPU work per crash, in `burn_cpu` units; 0 for none

Every crash gets a minimal successful processed crash, so a run measures what the supervisor,
the worker pipes, the queue, the source and the destinations sustain (scripts/bench_pool.py,
scripts/bench_e2e.py). `units_per_ms` calibrates `work_units` on the machine at hand.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any


def burn_cpu(units: int) -> int:
    """A fixed amount of pure-Python CPU work (not a fixed time: contention must show)."""
    total = 0
    for _ in range(units):
        for i in range(1000):
            total += i * i
    return total


def units_per_ms() -> float:
    """How many `burn_cpu` units this machine does per millisecond on one core (now)."""
    burn_cpu(200)  # warm up
    start = time.process_time()
    burn_cpu(2000)
    return 2000 / ((time.process_time() - start) * 1000)


class BenchProcessor:
    """The worker's processor interface (a `[supervisor] processor` factory), minus the work."""

    rulesets: tuple[str, ...] = ("default",)

    def __init__(self, *, symbols: Any, metrics: Any, options: Mapping[str, str] | None) -> None:
        work_units = (options or {}).get("work_units") or "0"
        try:
            self.work_units = int(work_units)
        except ValueError:
            raise ValueError(f"[processor] work_units: not an integer: {work_units!r}") from None

    def process(
        self,
        crash_id: str,
        raw_crash: dict[str, Any],
        dumps: dict[str, bytes],
        *,
        ruleset: str = "default",
        previous: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if self.work_units:
            burn_cpu(self.work_units)
        return {"crash_id": crash_id, "uuid": crash_id, "success": True, "processor_notes": ""}

    def poison(self, crash_id: str, raw_crash: dict[str, Any], reason: str) -> dict[str, Any]:
        return {
            "crash_id": crash_id,
            "uuid": crash_id,
            "success": False,
            "processor_notes": f"poison crash: {reason}",
        }
