"""The symbol format as a store sees it: a `.sym` file into bytes, bytes back into an index.

A cache (procsupervisor.cache) only moves bytes; it builds and opens them through an
`IndexCodec`, so the index format stays the business of this package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from procsupervisor.workers.stackwalker.model import SymbolIndexProtocol
from procsupervisor.workers.stackwalker.symbols.index import SymbolIndex
from procsupervisor.workers.stackwalker.symbols.layout import SymbolIndexError
from procsupervisor.workers.stackwalker.symbols.parser import load_sym_file


class IndexCorruptError(Exception):
    """A stored index failed verification: the cache deletes it and fetches again."""


class IndexCodec(Protocol):
    def build(self, sym_path: Path) -> bytes:
        """Parse a complete `.sym` file into the serialized index."""
        ...

    def load(self, buffer: bytes | memoryview) -> SymbolIndexProtocol:
        """Open a serialized index without copying it; IndexCorruptError if it is damaged."""
        ...


class BreakpadIndexCodec:
    """The stackwalker's flat, position-independent SymbolIndex."""

    def build(self, sym_path: Path) -> bytes:
        return load_sym_file(sym_path).to_bytes()

    def load(self, buffer: bytes | memoryview) -> SymbolIndexProtocol:
        # The store has already checked the value's size and CRC against its tag, so the
        # index's own CRC pass (verify=True) would read every page a second time; its
        # structural checks always run.
        try:
            return SymbolIndex.from_buffer(buffer, verify=False)
        except SymbolIndexError as exc:
            raise IndexCorruptError(str(exc)) from exc
