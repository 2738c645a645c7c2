"""Breakpad's symbol path rule and the local directory provider (docs/formats/breakpad.md §2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from procsupervisor.workers.stackwalker.model import CodeModule
from procsupervisor.workers.stackwalker.symbols import (
    DirectorySymbolProvider,
    find_symbol_file,
    is_safe_relpath,
    load_sym_file,
    parse_sym,
    symbol_file_relpath,
)


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


@pytest.mark.parametrize(
    "relpath",
    ["../ID/x.sym", "a/../x.sym", "a/./x.sym", "a//x.sym", "a/ID/x/y.sym", "a\\..\\b/ID/x.sym",
     "a/ID\x00/x.sym", "a/ID", ""],
)  # fmt: skip
def test_unsafe_relpaths_are_never_resolved(tmp_path: Path, relpath: str) -> None:
    (tmp_path / "root").mkdir()
    write(tmp_path, "ID/x.sym", "FUNC 10 10 0 outside\n")  # where "../ID/x.sym" would lead
    assert not is_safe_relpath(relpath)
    assert find_symbol_file(tmp_path / "root", relpath) is None


def test_cache_supplier_and_plain_provider_resolve_the_same_file(tmp_path: Path) -> None:
    from procsupervisor.cache.supplier_local import LocalDirectorySupplier

    path = write(tmp_path, "app.pdb/ID/app.sym", "FUNC 10 10 0 f\n")
    relpath = symbol_file_relpath(module("c:\\out\\app.pdb", "ID"))
    assert relpath == "app.pdb/ID/app.sym" and is_safe_relpath(relpath)
    assert find_symbol_file(tmp_path, relpath) == path
    fetched = LocalDirectorySupplier(tmp_path).fetch(relpath, tmp_path)
    assert fetched is not None and fetched.path == path and not fetched.temporary
    assert LocalDirectorySupplier(tmp_path).fetch("../app.pdb/ID/app.sym", tmp_path) is None


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
