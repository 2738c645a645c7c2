"""Breakpad's symbol path rule and the local directory provider (BREAKPAD.md §2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from procsupervisor.workers.stackwalker.model import CodeModule
from procsupervisor.workers.stackwalker.symbols import (
    DirectorySymbolProvider,
    parse_sym,
    symbol_file_relpath,
)
from procsupervisor.workers.stackwalker.symbols.supplier import load_sym_file


def module(debug_file: str, debug_id: str, code_file: str = "app") -> CodeModule:
    return CodeModule(0x1000, 0x1000, code_file, "", debug_file, debug_id)


@pytest.mark.parametrize(
    ("debug_file", "debug_id", "expected"),
    [
        ("crash.pdb", "ID1", "crash.pdb/ID1/crash.sym"),
        ("c:\\build\\out/crash.pdb", "ID1", "crash.pdb/ID1/crash.sym"),
        ("/usr/lib/libc.so.6", "AB0", "libc.so.6/AB0/libc.so.6.sym"),
        ("a.PDB", "x", "a.PDB/x/a.sym"),
        (".pdb", "x", ".pdb/x/.pdb.sym"),
        ("/lib/x (deleted)", "x", "x (deleted)/x/x (deleted).sym"),
        ("", "ID", None),
        ("dir/", "ID", None),
        ("crash.pdb", "", None),
        ("..", "ID", None),
        ("crash.pdb", "../x", None),
    ],
)
def test_symbol_file_relpath(debug_file: str, debug_id: str, expected: str | None) -> None:
    assert symbol_file_relpath(module(debug_file, debug_id)) == expected


def write(root: Path, relpath: str, text: str) -> Path:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_roots_in_order_first_hit_wins_and_results_are_memoized(tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    write(second, "app.pdb/ID/app.sym", "FUNC 10 10 0 from_second\n")
    write(second, "lib.so/ID/lib.so.sym", "FUNC 10 10 0 lib_second\n")
    shadowing = write(first, "lib.so/ID/lib.so.sym", "FUNC 10 10 0 lib_first\n")
    provider = DirectorySymbolProvider([first, second])

    app = provider.get_symbols(module("app.pdb", "ID"))
    assert app is not None and app.lookup(0x10).function_name == "from_second"  # type: ignore[union-attr]
    lib = provider.get_symbols(module("/x/lib.so", "ID"))
    assert lib is not None and lib.lookup(0x10).function_name == "lib_first"  # type: ignore[union-attr]

    missing = module("none.pdb", "ID")
    assert provider.get_symbols(missing) is None
    write(first, "none.pdb/ID/none.sym", "FUNC 10 10 0 late\n")
    assert provider.get_symbols(missing) is None  # misses are memoized too
    shadowing.unlink()
    assert provider.get_symbols(module("/x/lib.so", "ID")) is lib


def test_empty_symbol_file_is_an_empty_valid_index(tmp_path: Path) -> None:
    write(tmp_path, "empty.pdb/ID/empty.sym", "")
    index = DirectorySymbolProvider([tmp_path]).get_symbols(module("empty.pdb", "ID"))
    assert index is not None and index.lookup(0x10) is None


def test_testdata_symbol_root(testdata: Path) -> None:
    provider = DirectorySymbolProvider([testdata / "breakpad/symbols"])
    test_app = module("c:\\test_app.pdb", "5A9832E5287241C1838ED98914E9B7FF1")
    index = provider.get_symbols(test_app)
    assert index is not None
    assert index.lookup(0x41FF).function_name == "main"  # type: ignore[union-attr]


def test_mmap_loading_matches_parsing_bytes(testdata: Path) -> None:
    path = testdata / "breakpad/symbols/test_app.pdb/5A9832E5287241C1838ED98914E9B7FF1/test_app.sym"
    assert load_sym_file(path).to_bytes() == parse_sym(path.read_bytes()).to_bytes()
