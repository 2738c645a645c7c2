"""How the cache turns a `.sym` file into stored bytes and stored bytes back into an index.

The cache itself only moves bytes; this seam keeps it independent of the index format, which
belongs to the stackwalker's `symbols` package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from procsupervisor.workers.stackwalker.model import SymbolIndexProtocol


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
        from procsupervisor.workers.stackwalker.symbols import parse_sym

        return parse_sym(sym_path.read_bytes()).to_bytes()

    def load(self, buffer: bytes | memoryview) -> SymbolIndexProtocol:
        from procsupervisor.workers.stackwalker.symbols import SymbolIndex, SymbolIndexError

        # The store has already checked the value's size and CRC against its tag, so the
        # index's own CRC pass (verify=True) would read every page a second time; its
        # structural checks always run.
        try:
            return SymbolIndex.from_buffer(buffer, verify=False)
        except SymbolIndexError as exc:
            raise IndexCorruptError(str(exc)) from exc
