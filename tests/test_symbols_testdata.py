"""Known answers from the shared test data (expected Breakpad outputs, resolver test files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from procsupervisor.workers.stackwalker.model import InlineInfo, WindowsFrameInfo
from procsupervisor.workers.stackwalker.symbols import SymbolIndex, parse_sym

TEST_APP = "test_app.pdb/{}/test_app.sym"
TEST_APP_ID = "5A9832E5287241C1838ED98914E9B7FF1"
LINUX_INLINE = "breakpad/symbols/linux_inline/BBA6FA10B8AAB33D00000000000000000/linux_inline.{}.sym"


def load(path: Path) -> SymbolIndex:
    return parse_sym(path.read_bytes())


def test_minidump2_frames(testdata: Path) -> None:
    """breakpad/expected-breakpad/minidump2.machine.txt: frames 0-2 in test_app.exe
    (base 0x400000) and frame 3 in kernel32.dll (base 0x7c800000)."""
    app = load(testdata / "breakpad/symbols" / TEST_APP.format(TEST_APP_ID))
    # frame 0: eip 0x40429e (context frame: looked up at eip), printed 58 + 0x3
    frame0 = app.lookup(0x429E)
    assert frame0 is not None
    assert frame0.function_name == "`anonymous namespace'::CrashFunction"
    assert (frame0.source_file, frame0.source_line) == ("c:\\test_app.cc", 58)
    assert 0x429E - frame0.source_line_base == 0x3  # type: ignore[operator]
    # frame 1: return address 0x404200, looked up at 0x4041ff, printed 65 + 0x5 from 0x404200
    frame1 = app.lookup(0x41FF)
    assert frame1 is not None
    assert (frame1.function_name, frame1.source_file, frame1.source_line) == (
        "main",
        "c:\\test_app.cc",
        65,
    )
    assert 0x4200 - frame1.source_line_base == 0x5  # type: ignore[operator]
    frame2 = app.lookup(0x53EB)
    assert frame2 is not None
    assert frame2.function_name == "__tmainCRTStartup"
    assert frame2.source_file == "f:\\sp\\vctools\\crt_bld\\self_x86\\crt\\src\\crt0.c"
    assert (frame2.source_line, 0x53EC - frame2.source_line_base) == (327, 0x12)  # type: ignore[operator]
    # the x86 walker unwinds these frames with STACK WIN FrameData programs
    info = app.find_windows_frame_info(0x429E)
    assert info is not None and info.kind == "frame_data" and info.program_string

    kernel32 = load(
        testdata / "breakpad/symbols/kernel32.pdb/BCE8785C57B44245A669896B6A19B9542/kernel32.sym"
    )
    frame3 = kernel32.lookup(0x16FD6)
    assert frame3 is not None and frame3.is_public
    assert (frame3.function_name, 0x16FD7 - frame3.function_base) == ("BaseProcessStart", 0x23)


def test_crlf_copy_indexes_identically(testdata: Path) -> None:
    root = testdata / "rust-minidump/breakpad-symbols-testdata/symbols"
    lf_path = root / TEST_APP.format(TEST_APP_ID)
    crlf_path = root / TEST_APP.format("6A9832E5287241C1838ED98914E9B7FF1")
    assert b"\r\n" in crlf_path.read_bytes() and b"\r" not in lf_path.read_bytes()
    assert load(lf_path).to_bytes() == load(crlf_path).to_bytes()


@pytest.mark.parametrize(
    ("variant", "expected_files"),
    [
        ("new", ["c.cpp", "b.cpp", "a.cpp"]),
        ("old", [None, None, None]),
    ],
)
def test_linux_inline_frames(
    testdata: Path, variant: str, expected_files: list[str | None]
) -> None:
    """expected-breakpad/linux_inline.with-{new,old}-sym: rip 0x2161b6, module base 0x200000."""
    index = load(testdata / LINUX_INLINE.format(variant))
    found = index.lookup(0x161B6)
    assert found is not None
    assert (found.function_name, found.source_file, found.source_line) == (
        "main",
        "linux_inline.cpp",
        27,
    )
    assert found.inlines == [
        InlineInfo("func()", 0x15B83, expected_files[0], 32),
        InlineInfo("bar()", 0x15B72, expected_files[1], 39),
        InlineInfo("foo()", 0x15B45, expected_files[2], 42),
    ]


def test_resolver_module1(testdata: Path) -> None:
    index = load(testdata / "breakpad/resolver-syms/module1.out")
    assert index.stats["errors"] == 0
    assert index.lookup(0x1000).function_name == "Function1_1"  # type: ignore[union-attr]
    assert index.lookup(0x2000) is None  # the zero-size FUNC was not stored
    assert index.lookup(0x2900).function_name == "PublicSymbol"  # type: ignore[union-attr]
    large = index.lookup(0x3FFF)
    assert large is not None and (large.source_file, large.source_line) == ("file1_3.cc", 4098359)
    assert index.find_windows_frame_info(0x1104) == WindowsFrameInfo(
        kind="frame_data",
        prolog_size=1,
        program_string="$eip 4 + ^ = $esp $ebp 8 + = $ebp $ebp ^ =",
    )
    assert index.find_windows_frame_info(0x1200) == WindowsFrameInfo(
        kind="param_only", parameter_size=8
    )
    assert index.find_cfi_rules(0x3D53) == {
        ".cfa": "$ebp 8 +",
        ".ra": ".cfa 4 - ^",
        "$ebp": ".cfa 8 - ^",
    }
    assert index.find_cfi_rules(0x3D84) == {
        ".cfa": "$ebp 8 +",
        ".ra": ".cfa 4 - ^",
        "$ebp": ".cfa 8 - ^",
        "$ebx": ".cfa 20 - ^",
        "$esi": ".cfa 16 - ^",
        "$edi": ".cfa 12 - ^",
    }
    assert index.find_cfi_rules(0x3DEF) is None


@pytest.mark.parametrize(("name", "errors"), [("module3_bad.out", 1), ("module4_bad.out", 2)])
def test_resolver_bad_modules_are_corrupt_but_usable(
    testdata: Path, name: str, errors: int
) -> None:
    index = load(testdata / "breakpad/resolver-syms" / name)
    assert index.stats["errors"] == errors and index.stats["corrupt"] is True
    assert index.stats["functions"] == 0 and index.stats["lines"] == 0
    assert index.lookup(0x1000) is None


def test_every_testdata_sym_file_parses_cleanly(testdata: Path) -> None:
    files = sorted(testdata.rglob("*.sym"))
    assert len(files) >= 20
    for path in files:
        index = load(path)
        assert index.stats["errors"] == 0, path
        again = SymbolIndex.from_buffer(index.to_bytes(), verify=True)
        assert again == index
