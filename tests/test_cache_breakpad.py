"""The cache with the stackwalker's real symbol index, over the shared test data."""

from __future__ import annotations

import mmap
import re
from pathlib import Path

import pytest
from _cache_helpers import assert_no_pickle

from procsupervisor.cache.provider import CachingSymbolProvider, build_provider
from procsupervisor.workers.stackwalker.model import CodeModule
from procsupervisor.workers.stackwalker.symbols import (
    DirectorySymbolProvider,
    parse_sym,
    symbol_file_relpath,
)

pytestmark = pytest.mark.testdata


def _modules(root: Path) -> list[tuple[CodeModule, Path]]:
    """Every `<debug_file>/<debug_id>/<name>.sym` under a symbol root, as a module."""
    found = []
    for path in sorted(root.glob("*/*/*.sym")):
        debug_file, debug_id = path.parent.parent.name, path.parent.name
        module = CodeModule(0, 0x100000, debug_file, "", debug_file, debug_id)
        if root / (symbol_file_relpath(module) or "") == path:  # skip variants like x.old.sym
            found.append((module, path))
    return found


def _sample_addresses(sym: bytes, limit: int = 300) -> list[int]:
    addresses = [int(m.group(1), 16) for m in re.finditer(rb"^FUNC (?:m )?([0-9a-f]+)", sym, re.M)]
    step = max(1, len(addresses) // limit)
    picked = addresses[::step]
    return sorted({a + delta for a in picked for delta in (0, 1, 7)})


@pytest.mark.parametrize("root", ["breakpad/symbols", "rust-minidump/symbols"])
def test_cached_lookups_match_direct_parsing(testdata: Path, tmp_path: Path, root: str) -> None:
    symbol_root = testdata / root
    cold = build_provider([symbol_root], tmp_path / "cache")
    assert isinstance(cold, CachingSymbolProvider)
    direct = DirectorySymbolProvider([symbol_root])
    modules = _modules(symbol_root)
    assert modules
    for module, path in modules:
        expected = direct.get_symbols(module)
        cached = cold.get_symbols(module)
        assert expected is not None and cached is not None
        for address in _sample_addresses(path.read_bytes()):
            assert cached.lookup(address) == expected.lookup(address)
            assert cached.find_cfi_rules(address) == expected.find_cfi_rules(address)
            assert cached.find_windows_frame_info(address) == expected.find_windows_frame_info(
                address
            )
    assert cold.stats()["downloads"] == len(modules)

    warm = build_provider([symbol_root], tmp_path / "cache")
    for module, path in modules:
        index = warm.get_symbols(module)
        assert index == parse_sym(path.read_bytes())
        if len(path.read_bytes()) > 4096:
            assert isinstance(index._buffer, mmap.mmap)  # opened in place, not copied
    stats = warm.stats()
    assert stats["disk_hits"] == len(modules) and stats["downloads"] == 0
    assert stats["parse_seconds"] == 0
    assert_no_pickle(tmp_path / "cache")


def test_build_provider_without_cache_dir_is_the_plain_directory_provider(
    testdata: Path,
) -> None:
    provider = build_provider([testdata / "breakpad" / "symbols"], None)
    assert isinstance(provider, DirectorySymbolProvider)
