"""Stackwalker part: unwind (see workers/stackwalker/__init__.py).

`walk_thread` runs Breakpad's per-thread walk with one unwinder per CPU (x86, amd64, arm, arm64).
"""

from procsupervisor.workers.stackwalker.unwind.walk import walk_thread

__all__ = ["walk_thread"]
