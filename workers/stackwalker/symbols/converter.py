"""Preparing FUNC batches next to the parser: in a helper process for large files.

FUNCs with their line records are most of a large file, and checking, splitting and converting
a batch of them is most of the parse; it is also the one step that needs nothing of the
parser's state (bulk.prepared_funcs). So a large file's parse hands batches to a helper process
and prepares others itself while the helper works; results come back in the order sent, and the
parser commits every batch in file order, as it would have in one process. The helper is forked
when the parse starts and never touches anything but the texts it is sent.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from typing import Any

# Batches sent ahead of the one being committed: the helper always has the next one.
DEPTH = 2
_POLL_S = 0.5


def helper_allowed() -> bool:
    """A helper only where another CPU can run it and this process may have children (not in
    a daemonic process, such as a `multiprocessing.Pool` worker)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (cpus or 1) > 1 and not multiprocessing.current_process().daemon


class BatchHelper:
    """`work(*args)` in a forked helper process, results in the order of `send`."""

    def __init__(self, work: Callable[..., Any]) -> None:
        context = multiprocessing.get_context("fork")
        self._requests: Any = context.Queue()  # its feeder thread: `send` never blocks
        self._results: Any = context.SimpleQueue()
        self._process = context.Process(
            target=_serve, args=(work, self._requests, self._results), daemon=True
        )
        self._process.start()
        self.broken = False

    def send(self, *args: Any) -> None:
        self._requests.put(args)

    def ready(self) -> bool:
        """Whether the next result has arrived (or the helper is gone: `receive` falls back)."""
        return self.broken or bool(self._results._reader.poll(0))

    def receive(self, fallback: Callable[[], Any]) -> Any:
        """The next result; `fallback()` (converting here) if the helper has died."""
        while not self.broken:
            if self._results._reader.poll(_POLL_S):
                try:
                    return self._results.get()
                except (EOFError, OSError):
                    break
            if not self._process.is_alive():
                break
        self.broken = True
        return fallback()

    def close(self) -> None:
        try:
            self._requests.put(None)
            self._requests.close()
            self._requests.join_thread()
        except (OSError, ValueError):
            pass
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()


def _serve(work: Callable[..., Any], requests: Any, results: Any) -> None:
    while (request := requests.get()) is not None:
        results.put(work(*request))
