"""Breakpad's range containers at build time (docs/formats/breakpad.md §1.4).

`ExclusiveRanges` is RangeMap (FUNC, line records, STACK CFI INIT): any overlap drops the newcomer.
`ContainedRanges` is ContainedRangeMap (STACK WIN, INLINE): ranges nest by address containment;
partial overlaps are dropped. Both work on inclusive `high` addresses, as Breakpad does, so a
range ending at 2**64 is representable.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

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
        self.bases: list[int] = []
        self.highs: list[int] = []
        self.values: list[int] = []

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


@dataclass
class _Node:
    base: int
    high: int
    entry: int
    children: ContainedRanges | None = None


@dataclass
class ContainedRanges:
    """Children keyed by their inclusive high address (std::map semantics via sorted lists)."""

    allow_equal: bool
    keys: list[int] = field(default_factory=list)
    nodes: list[_Node] = field(default_factory=list)

    def store(self, base: int, size: int, entry: int) -> bool:
        high = range_high(base, size)
        if high is None:
            return False
        return self._store(base, high, entry)

    def _store(self, base: int, high: int, entry: int) -> bool:
        keys = self.keys
        nodes = self.nodes
        count = len(keys)
        # Fast path for the usual sorted input: strictly after every existing child.
        if not count or base > keys[-1]:
            keys.append(high)
            nodes.append(_Node(base, high, entry))
            return True
        i_base = bisect_left(keys, base)
        i_high = bisect_left(keys, high)
        if i_base == i_high and i_base != count and base >= nodes[i_base].base:
            child = nodes[i_base]
            if not self.allow_equal and child.base == base and child.high == high:
                return False
            if child.children is None:
                child.children = ContainedRanges(self.allow_equal)
            return child.children._store(base, high, entry)
        contains_high = i_high != count and high >= nodes[i_high].base
        if (i_base != count and base > nodes[i_base].base) or (
            contains_high and high < keys[i_high]
        ):
            return False
        if contains_high:
            i_high += 1
        new_node = _Node(base, high, entry)
        if i_base != i_high:
            new_node.children = ContainedRanges(
                self.allow_equal, keys[i_base:i_high], nodes[i_base:i_high]
            )
            del keys[i_base:i_high]
            del nodes[i_base:i_high]
        keys.insert(i_base, high)
        nodes.insert(i_base, new_node)
        return True

    def flatten(self) -> tuple[list[int], list[int], list[int], list[int]]:
        """Pre-order (bases, highs, parent positions, entries); parent -1 for top level.

        Children are disjoint and ordered, so pre-order is sorted by base and a parent always
        precedes its children: the lookup bisects on bases then walks up parents."""
        bases: list[int] = []
        highs: list[int] = []
        parents: list[int] = []
        entries: list[int] = []
        stack: list[tuple[ContainedRanges, int, int]] = [(self, 0, -1)]
        while stack:
            level, pos, parent = stack.pop()
            if pos >= len(level.nodes):
                continue
            stack.append((level, pos + 1, parent))
            node = level.nodes[pos]
            index = len(bases)
            bases.append(node.base)
            highs.append(node.high)
            parents.append(parent)
            entries.append(node.entry)
            if node.children is not None:
                stack.append((node.children, 0, index))
        return bases, highs, parents, entries
