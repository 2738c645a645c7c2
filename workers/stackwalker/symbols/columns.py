"""Append-only columns of unsigned numbers that move to a temporary file as they grow.

The line records are most of a large `.sym` file and most of its index; kept in memory they
would cost about as much as the file itself. A `SpillColumn` holds at most `SPILL_ITEMS`
values in memory and appends the rest to an unnamed temporary file (page cache, not the
process's memory), from which the index writer copies them back in chunks. Values stay 4 bytes
wide until one needs 8; then the column is widened once, file included.
"""

from __future__ import annotations

import os
import tempfile
from array import array
from collections.abc import Iterable, Iterator
from typing import BinaryIO

SPILL_ITEMS = 1 << 18  # values held in memory before they go to the file
_READ_ITEMS = 1 << 16
_U32_MAX = 0xFFFFFFFF


class SpillColumn:
    __slots__ = ("values", "_file", "_spilled", "_directory")

    def __init__(self, directory: str | None = None) -> None:
        self.values = array("I")  # the values not yet spilled
        self._file: BinaryIO | None = None
        self._spilled = 0
        self._directory = directory

    @property
    def typecode(self) -> str:
        return self.values.typecode

    def __len__(self) -> int:
        return self._spilled + len(self.values)

    def extend(self, items: Iterable[int]) -> None:
        values = self.values
        if not isinstance(items, list | array):
            items = list(items)  # a second attempt must see every item again
        if isinstance(items, array) and items.typecode != values.typecode:
            if values.typecode == "Q":
                items = array("Q", items)
            else:
                try:
                    items = array("I", items)
                except OverflowError:
                    values = self._widen()
        before = len(values)
        try:
            values.extend(items)
        except OverflowError:
            del values[before:]  # extend from a list keeps what it stored before failing
            values = self._widen()
            values.extend(items)
        if len(values) >= SPILL_ITEMS:
            self._spill()

    def append(self, value: int) -> None:
        if value > _U32_MAX and self.values.typecode == "I":
            self._widen()
        self.values.append(value)
        if len(self.values) >= SPILL_ITEMS:
            self._spill()

    def _spill(self) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile(dir=self._directory)  # noqa: SIM115
        self._file.seek(0, os.SEEK_END)
        self.values.tofile(self._file)
        self._spilled += len(self.values)
        self.values = array(self.values.typecode)

    def _widen(self) -> array:
        """Make every value, spilled ones too, 8 bytes wide."""
        if self._file is not None:
            old = self._file
            self._file = tempfile.TemporaryFile(dir=self._directory)  # noqa: SIM115
            old.seek(0)
            for chunk in _read_chunks(old, "I", self._spilled):
                array("Q", chunk).tofile(self._file)
            old.close()
        self.values = array("Q", self.values)
        return self.values

    def chunks(self) -> Iterator[array]:
        """Every value in order, a chunk at a time."""
        if self._file is not None:
            self._file.seek(0)
            yield from _read_chunks(self._file, self.values.typecode, self._spilled)
        if self.values:
            yield self.values

    def read(self, start: int, stop: int) -> array:
        """Values [start, stop)."""
        result = array(self.values.typecode)
        if start < self._spilled and self._file is not None:
            end = min(stop, self._spilled)
            self._file.seek(start * result.itemsize)
            result.fromfile(self._file, end - start)
        if stop > self._spilled:
            result.extend(self.values[max(start - self._spilled, 0) : stop - self._spilled])
        return result

    def last(self, count: int) -> array:
        return self.read(len(self) - count, len(self))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _read_chunks(handle: BinaryIO, typecode: str, count: int) -> Iterator[array]:
    remaining = count
    while remaining > 0:
        chunk = array(typecode)
        chunk.fromfile(handle, min(_READ_ITEMS, remaining))
        remaining -= len(chunk)
        yield chunk
