"""The per-worker LRU's bounds, against a plain model of it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from procsupervisor.cache.memory_lru import MemoryLRU

operations = st.lists(
    st.tuples(st.sampled_from(["put", "get"]), st.integers(0, 9), st.integers(0, 50)),
    max_size=60,
)


@given(operations, st.integers(1, 5), st.integers(0, 120))
def test_bounds_and_recency(ops: list[tuple[str, int, int]], max_entries: int, max_bytes: int):
    lru: MemoryLRU[int] = MemoryLRU(max_entries, max_bytes)
    model: list[tuple[str, int]] = []  # oldest first: (key, nbytes)
    for op, n, size in ops:
        key = f"k{n}"
        if op == "get":
            hit = lru.get(key)
            position = next((i for i, (k, _) in enumerate(model) if k == key), None)
            assert (hit is not None) == (position is not None)
            if position is not None:
                model.append(model.pop(position))
            continue
        lru.put(key, n, size)
        model = [entry for entry in model if entry[0] != key] + [(key, size)]
        while len(model) > 1 and (len(model) > max_entries or sum(s for _, s in model) > max_bytes):
            model.pop(0)
        assert len(lru) == len(model) <= max_entries
        assert lru.total_bytes == sum(s for _, s in model)
        assert lru.total_bytes <= max_bytes or len(lru) == 1
        assert lru.get(key) == n
        model.append(model.pop())
