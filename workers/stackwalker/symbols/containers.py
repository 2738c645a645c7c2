"""Breakpad's range containers at build time (docs/formats/breakpad.md §1.4), in typed arrays.

`ExclusiveRanges` is RangeMap (FUNC, line records, STACK CFI INIT): any overlap drops the newcomer.
`ContainedRanges` is ContainedRangeMap (STACK WIN, INLINE): ranges nest by address containment;
partial overlaps are dropped. Both work on inclusive `high` addresses, as Breakpad does, so a
range ending at 2**64 is representable. Entries live in arrays, not one object per range: a
large symbol file holds millions of them.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable
from itertools import count

U64_MAX = (1 << 64) - 1


def range_high(base: int, size: int) -> int | None:
    """Inclusive end of [base, base+size), or None when Breakpad rejects it (size 0, overflow)."""
    if size <= 0:
        return None
    high = base + size - 1
    return None if high > U64_MAX else high


class ExclusiveRanges:
    """Non-overlapping ranges; insertion in arrival order, first one wins on overlap."""

    def __init__(self) -> None:
        self.bases = array("Q")
        self.highs = array("Q")
        self.values = array("I")

    def __len__(self) -> int:
        return len(self.bases)

    def store(self, base: int, high: int, value: int) -> bool:
        highs = self.highs
        if not highs or base > highs[-1]:
            self.bases.append(base)
            highs.append(high)
            self.values.append(value)
            return True
        i = bisect_left(highs, base)
        if i < len(highs) and self.bases[i] <= high:
            return False
        self.bases.insert(i, base)
        highs.insert(i, high)
        self.values.insert(i, value)
        return True

    def last_high(self) -> int:
        """The highest stored address, -1 when empty: a range above it is always stored."""
        return self.highs[-1] if self.highs else -1


class ContainedRanges:
    """Children keyed by their inclusive high address (std::map semantics over sorted arrays).

    A node is (base, high, entry, id) at one position of the arrays. Entries need not be
    unique (an INLINE record stores each of its ranges), so a node's children are found by its
    id, unique in the whole tree."""

    def __init__(self, allow_equal: bool, next_id: Callable[[], int] | None = None) -> None:
        self.allow_equal = allow_equal
        self.bases = array("Q")
        self.highs = array("Q")
        self.entries = array("I")
        self.ids = array("Q")
        self.children: dict[int, ContainedRanges] = {}
        self._next_id = next_id if next_id is not None else count().__next__

    def store(self, base: int, size: int, entry: int) -> bool:
        high = range_high(base, size)
        if high is None:
            return False
        return self._store(base, high, entry)

    def _store(self, base: int, high: int, entry: int) -> bool:
        highs = self.highs
        bases = self.bases
        stored = len(highs)
        # Fast path for the usual sorted input: strictly after every existing child.
        if not stored or base > highs[-1]:
            bases.append(base)
            highs.append(high)
            self.entries.append(entry)
            self.ids.append(self._next_id())
            return True
        i_base = bisect_left(highs, base)
        i_high = bisect_left(highs, high)
        if i_base == i_high and i_base != stored and base >= bases[i_base]:
            if not self.allow_equal and bases[i_base] == base and highs[i_base] == high:
                return False
            node_id = self.ids[i_base]
            child = self.children.get(node_id)
            if child is None:
                child = self.children[node_id] = ContainedRanges(self.allow_equal, self._next_id)
            return child._store(base, high, entry)
        contains_high = i_high != stored and high >= bases[i_high]
        if (i_base != stored and base > bases[i_base]) or (contains_high and high < highs[i_high]):
            return False
        if contains_high:
            i_high += 1
        node_id = self._next_id()
        if i_base != i_high:
            adopted = ContainedRanges(self.allow_equal, self._next_id)
            adopted.bases = bases[i_base:i_high]
            adopted.highs = highs[i_base:i_high]
            adopted.entries = self.entries[i_base:i_high]
            adopted.ids = self.ids[i_base:i_high]
            for moved in adopted.ids:
                grandchildren = self.children.pop(moved, None)
                if grandchildren is not None:
                    adopted.children[moved] = grandchildren
            self.children[node_id] = adopted
            del bases[i_base:i_high]
            del highs[i_base:i_high]
            del self.entries[i_base:i_high]
            del self.ids[i_base:i_high]
        bases.insert(i_base, base)
        highs.insert(i_base, high)
        self.entries.insert(i_base, entry)
        self.ids.insert(i_base, node_id)
        return True

    def flatten(self) -> tuple[array, array, list[int] | None, array]:
        """Pre-order (bases, highs, parent positions, entries); parent -1 for top level, and
        None instead of the parent list when nothing nests (every parent is -1).

        Children are disjoint and ordered, so pre-order is sorted by base and a parent always
        precedes its children: the lookup bisects on bases then walks up parents."""
        if not self.children:
            return self.bases, self.highs, None, self.entries
        bases = array("Q")
        highs = array("Q")
        parents: list[int] = []
        entries = array("I")
        stack: list[tuple[ContainedRanges, int, int]] = [(self, 0, -1)]
        while stack:
            level, pos, parent = stack.pop()
            if pos >= len(level.bases):
                continue
            stack.append((level, pos + 1, parent))
            index = len(bases)
            bases.append(level.bases[pos])
            highs.append(level.highs[pos])
            parents.append(parent)
            entries.append(level.entries[pos])
            child = level.children.get(level.ids[pos])
            if child is not None:
                stack.append((child, 0, index))
        return bases, highs, parents, entries
