"""Local symbol directories in Breakpad's layout, without a cache (docs/formats/breakpad.md §2.1,
§2.3).

For library use of the stackwalker (scripts, tests, `stackwalk` without `--cache-dir`); the
worker's provider is the shared cache (procsupervisor.cache), whose local-directory supplier
resolves files through the same `symbols.paths`.
"""

from __future__ import annotations

import threading
from pathlib import Path

from procsupervisor.workers.stackwalker.model import CodeModule
from procsupervisor.workers.stackwalker.symbols.index import SymbolIndex
from procsupervisor.workers.stackwalker.symbols.parser import load_sym_file
from procsupervisor.workers.stackwalker.symbols.paths import find_symbol_file, symbol_file_relpath


class DirectorySymbolProvider:
    """SymbolProvider over local symbol roots, tried in order; the first existing file wins.

    Results, misses included, are memoized per (debug_file basename, debug_id) for the
    provider's life, so each file is parsed at most once."""

    def __init__(self, roots: list[Path]) -> None:
        self.roots = [Path(root) for root in roots]
        self._memo: dict[str, SymbolIndex | None] = {}
        self._lock = threading.Lock()

    def _find_relpath(self, relpath: str) -> Path | None:
        for root in self.roots:
            found = find_symbol_file(root, relpath)
            if found is not None:
                return found
        return None

    def get_symbols(self, module: CodeModule) -> SymbolIndex | None:
        # The relative path is a function of (debug_file basename, debug_id): memoizing on it
        # shares one parse between modules whose debug_file differs only in its directory.
        relpath = symbol_file_relpath(module)
        if relpath is None:
            return None
        with self._lock:
            if relpath in self._memo:
                return self._memo[relpath]
        path = self._find_relpath(relpath)
        index = None
        if path is not None:
            try:
                index = load_sym_file(path)
            except OSError:
                index = None
        with self._lock:
            return self._memo.setdefault(relpath, index)
