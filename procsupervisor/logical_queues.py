"""The logical queues every queue backend serves, and how often each is picked by default.

Shared by the configuration (which parses `[queue] weights` on top of the defaults) and the
queue backends (which map each logical name to a real queue), neither importing the other
(docs/architecture.md §4).
"""

from __future__ import annotations

DEFAULT_QUEUE_NAMES = ("priority", "normal", "reprocessing")
DEFAULT_WEIGHTS = {"priority": 10, "normal": 5, "reprocessing": 1}
