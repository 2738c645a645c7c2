"""The per-worker LRU of loaded symbol indexes, bounded by entry count and by bytes."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")


class MemoryLRU(Generic[V]):
    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max(1, max_entries)
        self.max_bytes = max(0, max_bytes)
        self._entries: OrderedDict[str, tuple[V, int]] = OrderedDict()
        self.total_bytes = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: str, value: V, nbytes: int) -> None:
        """Insert as most recent, then drop the oldest until within bounds. The new entry
        itself is never dropped: the caller is about to use it even if it alone is too big."""
        self.discard(key)
        self._entries[key] = (value, nbytes)
        self.total_bytes += nbytes
        while len(self._entries) > 1 and (
            len(self._entries) > self.max_entries or self.total_bytes > self.max_bytes
        ):
            _, (_, dropped_bytes) = self._entries.popitem(last=False)
            self.total_bytes -= dropped_bytes
            self.evictions += 1

    def discard(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.total_bytes -= entry[1]

    def clear(self) -> None:
        self._entries.clear()
        self.total_bytes = 0
