"""Local symbol directories in Breakpad's layout (BREAKPAD.md §2.1, §2.3)."""

from __future__ import annotations

import mmap
import os
import threading
from pathlib import Path

from procsupervisor.workers.stackwalker.model import CodeModule
from procsupervisor.workers.stackwalker.symbols.index import SymbolIndex
from procsupervisor.workers.stackwalker.symbols.parser import parse_sym

_UNSAFE_COMPONENTS = ("", ".", "..")


def _basename(path: str) -> str:
    cut = max(path.rfind("/"), path.rfind("\\"))
    return path[cut + 1 :]


def symbol_file_relpath(module: CodeModule) -> str | None:
    """`<F>/<I>/<N>.sym` for a module, or None when Breakpad would not look (§2.1).

    F = basename of debug_file (after the last / or \\), I = debug_identifier verbatim,
    N = F without a trailing ".pdb" (any case) when F is longer than 4 characters. Components
    that would leave the symbol root ("..", separators, NUL) also give None."""
    file_name = _basename(module.debug_file)
    debug_id = module.debug_identifier
    if not file_name or not debug_id:
        return None
    if file_name in _UNSAFE_COMPONENTS or debug_id in _UNSAFE_COMPONENTS:
        return None
    if any(bad in debug_id for bad in ("/", "\\", "\x00")) or "\x00" in file_name:
        return None
    stem = file_name
    if len(file_name) > 4 and file_name[-4:].lower() == ".pdb":
        stem = file_name[:-4]
    return f"{file_name}/{debug_id}/{stem}.sym"


def load_sym_file(path: Path) -> SymbolIndex:
    """Parse a `.sym` file; large files are read through an mmap rather than copied in."""
    with path.open("rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return parse_sym(b"")  # an empty file cannot be mapped
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return parse_sym(mapped)


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
            candidate = root / relpath
            if candidate.is_file():
                return candidate
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
