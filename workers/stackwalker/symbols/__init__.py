"""Breakpad `.sym` parsing into a compact, mmap-able symbol index (docs/formats/breakpad.md §1, §2,
§7).

    from procsupervisor.workers.stackwalker.symbols import parse_sym, SymbolIndex
    index = parse_sym(open("app.sym", "rb").read())
    index.lookup(0x1234)                     # SymbolLookup | None (module-relative addresses)
    index.find_cfi_rules(0x1234)             # {".cfa": ..., ".ra": ..., "$rbp": ...} | None
    index.find_windows_frame_info(0x1234)    # WindowsFrameInfo | None
    blob = index.to_bytes()                  # store anywhere (e.g. the symbol cache)
    SymbolIndex.from_buffer(mmap_or_bytes, verify=True)   # in place, no parsing
    build_index_file(sym_path, index_path)   # file to file, in less memory than the .sym

`index.module` is the first MODULE line ({"os", "arch", "debug_id", "name"}) or None;
`index.stats` has the record counts (functions, lines, publics, files, inline_origins,
inline_records, cfi_inits, cfi_deltas, stack_win), `errors` (counted parse errors, §1.5),
`inline_errors`, `corrupt` (errors > 0) and `truncated` (parsing stopped after the 101st error).
Names are decoded as UTF-8 with replacement characters for invalid bytes.

Finding files (§2.1): `symbol_file_relpath(module)` is Breakpad's `<debug_file>/<debug_id>/
<name>.sym` rule, `is_safe_relpath` the one check that such a path stays inside its root, and
`find_symbol_file(root, relpath)` resolves one. `DirectorySymbolProvider(roots)` serves local
roots without a cache; `BreakpadIndexCodec` is the index format as a cache stores it.

The parser and what uses it are imported on first use: opening and searching an index (a warm
cache, the unwinder) loads none of it.
"""

from __future__ import annotations

import importlib
from typing import Any

from procsupervisor.workers.stackwalker.symbols.index import SymbolIndex
from procsupervisor.workers.stackwalker.symbols.layout import SymbolIndexError
from procsupervisor.workers.stackwalker.symbols.paths import (
    find_symbol_file,
    is_safe_relpath,
    symbol_file_relpath,
)

_LAZY = {
    "BreakpadIndexCodec": "codec",
    "IndexCodec": "codec",
    "IndexCorruptError": "codec",
    "DirectorySymbolProvider": "directory",
    "build_index_file": "parser",
    "load_sym_file": "parser",
    "parse_sym": "parser",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "BreakpadIndexCodec",
    "DirectorySymbolProvider",
    "IndexCodec",
    "IndexCorruptError",
    "SymbolIndex",
    "SymbolIndexError",
    "build_index_file",
    "find_symbol_file",
    "is_safe_relpath",
    "load_sym_file",
    "parse_sym",
    "symbol_file_relpath",
]
