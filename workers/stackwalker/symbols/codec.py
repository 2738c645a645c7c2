"""The symbol format as a store sees it: a `.sym` file into an index file, bytes back into an
index.

A cache (procsupervisor.cache) only moves bytes and files; it builds and opens them through an
`IndexCodec`, so the index format stays the business of this package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from procsupervisor.workers.stackwalker.model import SymbolIndexProtocol
from procsupervisor.workers.stackwalker.symbols.index import SymbolIndex
from procsupervisor.workers.stackwalker.symbols.layout import FORMAT_VERSION, SymbolIndexError


class IndexCorruptError(Exception):
    """A stored index failed verification: the cache deletes it and fetches again."""


class IndexCodec(Protocol):
    # Names the format and its version; an index stored under another tag (by an older or newer
    # release, in a store shared between hosts) is never opened.
    format_tag: str

    def build_file(self, sym_path: Path, out_path: Path) -> None:
        """Index a complete `.sym` file into the new file `out_path`."""
        ...

    def load(self, buffer: bytes | memoryview) -> SymbolIndexProtocol:
        """Open a serialized index without copying it; IndexCorruptError if it is damaged."""
        ...


class BreakpadIndexCodec:
    """The stackwalker's flat, position-independent SymbolIndex."""

    format_tag = f"psymidx{FORMAT_VERSION}"

    def build_file(self, sym_path: Path, out_path: Path) -> None:
        # the parser is loaded by the first build only: opening indexes never needs it
        from procsupervisor.workers.stackwalker.symbols.parser import build_index_file

        build_index_file(sym_path, out_path)

    def load(self, buffer: bytes | memoryview) -> SymbolIndexProtocol:
        # The store has already checked the value's size and CRC against its tag, so the
        # index's own CRC pass (verify=True) would read every page a second time; its
        # structural checks always run.
        try:
            return SymbolIndex.from_buffer(buffer, verify=False)
        except SymbolIndexError as exc:
            raise IndexCorruptError(str(exc)) from exc
