"""Breakpad `.sym` parsing into a compact, mmap-able symbol index (BREAKPAD.md §1, §2, §7).

from procsupervisor.workers.stackwalker.symbols import parse_sym, SymbolIndex
index = parse_sym(open("app.sym", "rb").read())
index.lookup(0x1234)            # SymbolLookup | None
blob = index.to_bytes()         # store anywhere (e.g. the symbol cache)
SymbolIndex.from_buffer(mmap_or_bytes)   # in place, no parsing
"""

from __future__ import annotations

from procsupervisor.workers.stackwalker.symbols.index import SymbolIndex
from procsupervisor.workers.stackwalker.symbols.layout import SymbolIndexError, serialize_sections
from procsupervisor.workers.stackwalker.symbols.parser import SymParser
from procsupervisor.workers.stackwalker.symbols.supplier import (
    DirectorySymbolProvider,
    symbol_file_relpath,
)


def parse_sym(data: bytes | bytearray | memoryview) -> SymbolIndex:
    """Parse `.sym` text (the file's raw bytes) into a ready-to-use index."""
    sections, _meta = SymParser().parse(data)
    return SymbolIndex.from_buffer(serialize_sections(sections), verify=False)


__all__ = [
    "DirectorySymbolProvider",
    "SymbolIndex",
    "SymbolIndexError",
    "parse_sym",
    "symbol_file_relpath",
]
