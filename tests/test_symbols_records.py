"""Record types, conflict rules and parse errors of the .sym parser (docs/formats/breakpad.md
§1)."""

from __future__ import annotations

import random

import pytest

from procsupervisor.workers.stackwalker.model import InlineInfo, WindowsFrameInfo
from procsupervisor.workers.stackwalker.symbols import SymbolIndex, parse_sym, parser


def sym(*lines: str) -> SymbolIndex:
    return parse_sym(("\n".join(lines) + "\n").encode())


def name_at(index: SymbolIndex, rel: int) -> str | None:
    found = index.lookup(rel)
    return None if found is None else found.function_name


# ---- FUNC / line / FILE ----------------------------------------------------------------------


def test_func_line_and_file_lookup() -> None:
    index = sym(
        "MODULE Linux x86_64 ABCD0 app",
        "FILE 1 src/a.c",
        "FUNC 1000 20 8 do_thing(int)",
        "1000 10 41 1",
        "1010 10 42 7",
    )
    found = index.lookup(0x1004)
    assert found is not None
    assert (found.function_name, found.function_base, found.param_size) == (
        "do_thing(int)",
        0x1000,
        8,
    )
    assert (found.source_file, found.source_line, found.source_line_base) == ("src/a.c", 41, 0x1000)
    unknown_file = index.lookup(0x1011)
    assert unknown_file is not None
    assert (unknown_file.source_file, unknown_file.source_line) == (None, 42)
    assert index.lookup(0x1020) is None
    assert index.lookup(0xFFF) is None
    assert index.module == {"os": "Linux", "arch": "x86_64", "debug_id": "ABCD0", "name": "app"}


def test_func_multiple_flag_and_names_with_spaces() -> None:
    index = sym("FUNC m 10 5 0 operator new(unsigned long)", "FUNC 20 5 c  lead space")
    assert name_at(index, 0x12) == "operator new(unsigned long)"
    found = index.lookup(0x21)
    assert found is not None
    assert found.function_name == " lead space"
    assert found.param_size == 0xC


def test_func_overlap_first_wins_and_nested_dropped() -> None:
    index = sym(
        "FUNC 100 100 0 first",
        "FUNC 180 10 0 nested",
        "180 4 1 0",
        "FUNC 1f0 20 0 overlapping",
        "FUNC 0 0 0 zero_size",
        "FUNC ffffffffffffff00 100 0 top",
        "FUNC ffffffffffffff00 101 0 wraps",
    )
    assert name_at(index, 0x185) == "first"
    found = index.lookup(0x185)
    assert found is not None and found.source_line is None  # the nested FUNC's line was lost
    assert index.stats["functions"] == 2
    assert name_at(index, 0xFFFFFFFFFFFFFFFF) == "top"
    assert index.stats["errors"] == 0


def test_out_of_order_funcs_and_lines_are_sorted_with_first_wins() -> None:
    index = sym(
        "FUNC 300 10 0 c",
        "308 8 3 0",
        "300 8 1 0",
        "304 8 2 0",
        "FUNC 100 10 0 a",
        "FUNC 200 10 0 b",
        "FUNC 105 2 0 inside_a",
    )
    assert [name_at(index, r) for r in (0x100, 0x200, 0x300)] == ["a", "b", "c"]
    lines = [index.lookup(r) for r in (0x300, 0x307, 0x309)]
    assert [x.source_line for x in lines if x] == [1, 1, 3]
    assert index.stats["lines"] == 2


def test_line_record_tolerates_trailing_words_and_leading_spaces() -> None:
    index = sym("FUNC 100 10 0 f", "  100 4 7 0 trailing words", "104 4 0 0")
    assert [index.lookup(r).source_line for r in (0x100, 0x104)] == [7, 0]  # type: ignore[union-attr]
    assert index.stats["errors"] == 0


def test_file_duplicate_id_keeps_first() -> None:
    index = sym("FILE 0 first.c", "FILE 0 second.c", "FUNC 1 1 0 f", "1 1 5 0")
    assert index.lookup(1).source_file == "first.c"  # type: ignore[union-attr]


# ---- PUBLIC ----------------------------------------------------------------------------------


def test_public_rules_against_nearest_func_start() -> None:
    index = sym(
        "FUNC 4240 41 0 f",
        "PUBLIC 4250 0 inside_f",
        "PUBLIC m 5000 4 later",
        "PUBLIC 0 0 zero_is_discarded",
    )
    assert name_at(index, 0x4250) == "f"
    past = index.lookup(0x429E)
    assert past is not None and past.is_public and past.function_name == "inside_f"
    assert past.function_base == 0x4250
    assert name_at(index, 0x123456) == "later"
    assert index.lookup(0x123456).param_size == 4  # type: ignore[union-attr]
    assert index.stats["errors"] == 0 and index.stats["publics"] == 2

    at_start = sym("FUNC 4240 41 0 f", "PUBLIC 4240 0 same_start")
    assert at_start.lookup(0x429E) is None


def test_public_without_funcs_covers_everything_above_and_duplicates_are_errors() -> None:
    index = sym("PUBLIC 100 0 one", "PUBLIC 100 0 dup", "PUBLIC 200 0 two")
    assert name_at(index, 0x150) == "one"
    assert name_at(index, 0xFFFFFFFF) == "two"
    assert index.lookup(0xFF) is None
    assert index.stats["errors"] == 1 and index.stats["corrupt"] is True


def test_public_clears_current_function() -> None:
    index = sym("FUNC 100 10 0 f", "PUBLIC 200 0 p", "104 4 1 0")
    assert index.lookup(0x104).source_line is None  # type: ignore[union-attr]
    assert index.stats["errors"] == 1


# ---- INLINE / INLINE_ORIGIN ------------------------------------------------------------------


def _inline_names(index: SymbolIndex, rel: int) -> list[tuple[str, int, str | None, int]]:
    found = index.lookup(rel)
    assert found is not None
    return [
        (i.function_name, i.function_base, i.call_site_file, i.call_site_line)
        for i in found.inlines
    ]


def test_inline_new_syntax_innermost_first() -> None:
    index = sym(
        "FILE 0 main.c",
        "FILE 1 a.c",
        "FILE 2 b.c",
        "INLINE_ORIGIN 0 outer()",
        "INLINE_ORIGIN 1 inner()",
        "FUNC 1000 100 0 main",
        "INLINE 0 10 1 0 1010 40 1080 10",
        "INLINE 1 20 2 1 1020 8",
        "1000 100 5 0",
    )
    assert _inline_names(index, 0x1022) == [
        ("inner()", 0x1020, "b.c", 20),
        ("outer()", 0x1010, "a.c", 10),
    ]
    assert _inline_names(index, 0x1085) == [("outer()", 0x1080, "a.c", 10)]
    assert _inline_names(index, 0x1005) == []


def test_inline_old_syntax_has_no_call_site_file() -> None:
    index = sym(
        "FILE 0 main.c",
        "INLINE_ORIGIN 0 0 outer()",
        "FUNC 1000 100 0 main",
        "INLINE 0 10 0 1010 40",
        "INLINE 1 11 7 1020 8",
    )
    assert _inline_names(index, 0x1021) == [
        ("<name omitted>", 0x1020, None, 11),
        ("outer()", 0x1010, None, 10),
    ]


def test_inline_origin_syntax_detection_and_duplicates() -> None:
    index = sym(
        "INLINE_ORIGIN 0 -1 artificial",
        "INLINE_ORIGIN 1 operator()",
        "INLINE_ORIGIN 2 123 starts with digits",
        "INLINE_ORIGIN 1 duplicate",
        "FUNC 0 100 0 f",
        "INLINE 0 1 0 0 10 10",
        "INLINE 1 2 0 1 10 8",
        "INLINE 2 3 0 2 10 4",
    )
    assert [x[0] for x in _inline_names(index, 0x10)] == [
        "starts with digits",
        "operator()",
        "artificial",
    ]


def test_inline_nest_level_gate_and_identical_ranges_nest() -> None:
    index = sym(
        "INLINE_ORIGIN 0 a",
        "INLINE_ORIGIN 1 b",
        "INLINE_ORIGIN 2 c",
        "FUNC 0 100 0 f",
        "INLINE 2 1 0 0 10 10",  # level 2 with nothing before: dropped
        "INLINE 0 1 0 0 10 10",
        "INLINE 1 2 0 1 10 10",  # identical range: nests inside the previous one
        "INLINE 0 3 0 2 18 10",  # partial overlap with 10+10: range dropped
    )
    assert [x[0] for x in _inline_names(index, 0x12)] == ["b", "a"]
    assert _inline_names(index, 0x21) == []
    assert index.stats["inline_errors"] == 0 and index.stats["errors"] == 0


def test_inline_errors_are_counted_apart() -> None:
    index = sym(
        "INLINE 0 1 0 0 10",  # no current function
        "FUNC 0 100 0 f",
        "INLINE 0 1 0",  # too few tokens
        "INLINE_ORIGIN x name",
    )
    assert index.stats["inline_errors"] == 3
    assert index.stats["errors"] == 0 and index.stats["corrupt"] is False


# ---- STACK WIN -------------------------------------------------------------------------------


def test_stack_win_prefers_type4_then_type0_then_param_only() -> None:
    index = sym(
        "FUNC 1000 100 c f",
        "STACK WIN 4 1000 100 1 0 8 0 0 0 1 $T0 $ebp = $eip $T0 4 + ^ =",
        "STACK WIN 0 1010 10 3 2 10 4 20 0 0 1",
        "STACK WIN 0 2000 10 3 2 10 4 20 0 0 0",
    )
    frame_data = index.find_windows_frame_info(0x1012)
    assert frame_data == WindowsFrameInfo(
        kind="frame_data",
        prolog_size=1,
        parameter_size=8,
        program_string="$T0 $ebp = $eip $T0 4 + ^ =",
    )
    fpo = index.find_windows_frame_info(0x2001)
    assert fpo == WindowsFrameInfo(
        kind="fpo",
        prolog_size=3,
        epilog_size=2,
        parameter_size=0x10,
        saved_register_size=4,
        local_size=0x20,
        allocates_base_pointer=False,
    )
    param_only = sym("FUNC 1000 100 c f").find_windows_frame_info(0x1001)
    assert param_only == WindowsFrameInfo(kind="param_only", parameter_size=0xC)
    assert sym("PUBLIC 1000 c p").find_windows_frame_info(0x1001) is None


def test_stack_win_containment_innermost_and_conflicts() -> None:
    index = sym(
        "STACK WIN 4 1100 8 1 0 0 0 0 0 1 inner",
        "STACK WIN 4 1100 100 1 0 0 0 0 0 1 outer",
        "STACK WIN 4 1100 100 1 0 0 0 0 0 1 identical",
        "STACK WIN 4 11f0 20 1 0 0 0 0 0 1 partial",
        "STACK WIN 4 1120 8 1 0 0 0 0 0 1 later_inner",
    )

    def program(rel: int) -> str | None:
        info = index.find_windows_frame_info(rel)
        return None if info is None else info.program_string

    assert [program(r) for r in (0x1100, 0x1108, 0x1121, 0x11FF, 0x1200)] == [
        "inner",
        "outer",
        "later_inner",
        "outer",
        None,
    ]
    assert index.stats["stack_win"] == 3 and index.stats["errors"] == 0


def test_stack_win_allocates_bp_and_errors() -> None:
    index = sym(
        "STACK WIN 0 10 10 0 0 0 0 0 0 0 1",
        "STACK WIN 5 10 10 0 0 0 0 0 0 0 1",  # bad type
        "STACK WIN 4 10 10 0 0 0 0 0 0",  # too few fields
        "STACK FOO 10",
    )
    assert index.find_windows_frame_info(0x10).allocates_base_pointer is True  # type: ignore[union-attr]
    assert index.stats["errors"] == 3


# ---- STACK CFI -------------------------------------------------------------------------------


def test_cfi_init_and_deltas_in_address_order() -> None:
    index = sym(
        "STACK CFI INIT 1000 20 .cfa: $rsp 8 + .ra: .cfa -8 + ^",
        "STACK CFI 1001 .cfa: $rsp 16 + $rbp: .cfa -16 + ^",
        "STACK CFI 1004 .cfa: $rbp 16 +",
        "STACK CFI 1004 .cfa: $rbp 24 +",  # same address: replaces
        "STACK CFI INIT 1010 10 .cfa: $rsp 8 + .ra: .cfa -8 + ^",  # overlap: dropped
    )
    assert index.find_cfi_rules(0x1000) == {".cfa": "$rsp 8 +", ".ra": ".cfa -8 + ^"}
    assert index.find_cfi_rules(0x1003) == {
        ".cfa": "$rsp 16 +",
        ".ra": ".cfa -8 + ^",
        "$rbp": ".cfa -16 + ^",
    }
    assert index.find_cfi_rules(0x101F)[".cfa"] == "$rbp 24 +"  # type: ignore[index]
    assert index.find_cfi_rules(0x1020) is None
    assert index.find_cfi_rules(0xFFF) is None


def test_cfi_deltas_not_tied_to_init_and_partial_delta_errors() -> None:
    index = sym(
        "STACK CFI INIT 100 10 .cfa: sp 0 + .ra: lr",
        "STACK CFI 104 x29: .cfa -16 + ^ .cfa:",  # error after x29 is applied
        "STACK CFI 200 .cfa: sp 16 +",  # belongs to no INIT
        "STACK CFI INIT 200 10 .cfa:\tsp 0 +  .ra: lr",
    )
    assert index.find_cfi_rules(0x105) == {".cfa": "sp 0 +", ".ra": "lr", "x29": ".cfa -16 + ^"}
    assert index.find_cfi_rules(0x200) == {".cfa": "sp 16 +", ".ra": "lr"}


def test_cfi_bad_init_text_gives_none() -> None:
    index = sym("STACK CFI INIT 100 10 .cfa: .ra: lr", "STACK CFI INIT 200 10 : x")
    assert index.find_cfi_rules(0x100) is None
    assert index.find_cfi_rules(0x200) is None


def test_cfi_tokens_before_the_first_name_are_an_error() -> None:
    # CFIRuleParser reports pending tokens when a name comes: with no name yet, that fails.
    index = sym(
        "STACK CFI INIT 100 10 .cfa: sp 0 + .ra: lr",
        "STACK CFI 104 junk x29: .cfa -16 + ^",  # applies nothing
        "STACK CFI INIT 200 10 junk .cfa: sp 0 + .ra: lr",  # INIT fails: no CFI
    )
    assert index.find_cfi_rules(0x105) == {".cfa": "sp 0 +", ".ra": "lr"}
    assert index.find_cfi_rules(0x200) is None


def test_cfi_only_fragment_without_module_line() -> None:
    index = sym("STACK CFI INIT 10 4 .cfa: $esp 4 + .ra: .cfa 4 - ^")
    assert index.module is None
    assert index.lookup(0x10) is None
    assert index.find_cfi_rules(0x12) == {".cfa": "$esp 4 +", ".ra": ".cfa 4 - ^"}


# ---- text handling and errors ----------------------------------------------------------------


def test_crlf_lone_cr_and_blank_lines_parse_like_lf() -> None:
    lines = ["FILE 1 a.c", "FUNC 10 10 0 f", "10 10 3 1", "PUBLIC 100 0 p"]
    lf = parse_sym(("\n".join(lines) + "\n").encode())
    crlf = parse_sym(("\r\n".join(lines) + "\r\n").encode())
    cr = parse_sym(("\r\r\n\n".join(lines)).encode())
    assert lf == crlf == cr


def test_data_after_0xff_is_dropped_and_nul_is_one_error() -> None:
    cut = parse_sym(b"FUNC 10 10 0 f\n\xffFUNC 100 10 0 g\n")
    assert cut.stats["functions"] == 1 and cut.stats["errors"] == 0
    nul = parse_sym(b"FUNC 10 10 0 f\x00x\x00\nFUNC 100 10 0 g\n\x00\x00")
    assert nul.lookup(0x10).function_name == "f_x_"  # type: ignore[union-attr]
    assert nul.stats["errors"] == 1 and nul.stats["corrupt"] is True


def test_number_validation_matches_c_parsing() -> None:
    index = sym(
        "FUNC 0x10 0x10 0 hex_prefix_ok",
        "FUNC 100 10x 0 bad_size",
        "FUNC 200 10 -1 negative_param",
        "FUNC -300 10 0 wrapped_address",
        "FUNC ffffffffffffffff 1 0 max_address",
        "FUNC 400 10",
        "FILE -1 neg",
        "FILE 12ab x",
    )
    assert name_at(index, 0x11) == "hex_prefix_ok"
    assert name_at(index, 0x100) is None and name_at(index, 0x200) is None
    assert name_at(index, (1 << 64) - 0x300 + 1) == "wrapped_address"
    assert index.stats["errors"] == 6


def test_parsing_stops_after_the_101st_error() -> None:
    bad = ["FUNC bad"] * 101
    index = sym(*bad, "FUNC 10 10 0 after")
    assert index.stats["errors"] == 101 and index.stats["truncated"] is True
    assert index.lookup(0x10) is None
    kept = sym(*bad[:100], "FUNC 10 10 0 after")
    assert kept.stats["truncated"] is False and name_at(kept, 0x10) == "after"


def test_a_one_character_line_is_a_counted_error_anywhere() -> None:
    assert parse_sym(b"x").stats["errors"] == 1
    assert parse_sym(b"x\n").stats["errors"] == 1
    assert parse_sym(b"FUNC 10 10 0 f\nx").stats["errors"] == 1


def test_parsing_in_chunks_gives_the_same_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large files are fed in chunks cut at line ends: tiny chunks must not change a thing,
    including CR LF pairs split across two chunks and records running past a chunk's size."""
    lines = [
        "MODULE Linux x86_64 ABCD0 app",
        "FILE 1 a.c",
        "FUNC 1000 30 0 first",
        "1000 10 1 1",
        "1010 10 2 1",
        "x",
        "STACK CFI INIT 1000 30 .cfa: $rsp 8 + .ra: .cfa -8 + ^",
        "STACK CFI 1004 .cfa: $rsp 16 +",
        "FUNC 2000 10 4 second_function_with_a_name_longer_than_a_chunk",
        "2000 10 3 1",
        "PUBLIC 3000 0 p",
    ]
    for separator in (b"\n", b"\r\n"):
        data = separator.join(line.encode() for line in lines) + separator
        whole = parse_sym(data)
        assert whole.stats["errors"] == 1 and whole.stats["lines"] == 3
        for chunk_bytes in (1, 2, 3, 7, 16):
            monkeypatch.setattr(parser, "CHUNK_BYTES", chunk_bytes)
            assert parse_sym(data) == whole, (separator, chunk_bytes)
        monkeypatch.undo()


def test_unknown_keywords_are_line_records() -> None:
    index = sym("FUNC 10 10 0 f", "MODULEX 1 2 3", "Foo bar baz qux")
    assert index.stats["errors"] == 2


def test_empty_input_is_a_valid_empty_index() -> None:
    index = parse_sym(b"")
    assert index.lookup(0) is None
    assert index.find_cfi_rules(0) is None
    assert index.find_windows_frame_info(0) is None
    assert index.stats["errors"] == 0


def test_inline_info_type_is_the_shared_model() -> None:
    index = sym("INLINE_ORIGIN 0 x", "FUNC 0 10 0 f", "INLINE 0 1 0 0 0 10")
    found = index.lookup(0)
    assert found is not None
    assert found.inlines == [InlineInfo("x", 0, None, 1)]


def test_garbage_never_raises() -> None:
    """Mutated records and random bytes: parse errors are counted, nothing is raised."""
    rng = random.Random(5)
    seeds = [
        b"FUNC m 10 20 4 name with spaces",
        b"PUBLIC m 30 0 pub",
        b"10 4 7 1",
        b"FILE 1 a.c",
        b"INLINE 0 1 2 3 10 4 20 4",
        b"INLINE_ORIGIN 3 -1 name",
        b"STACK WIN 4 10 20 1 0 8 0 0 0 1 $T0 $ebp =",
        b"STACK CFI INIT 10 20 .cfa: $rsp 8 +",
        b"STACK CFI 12 .cfa: $rsp 16 +",
        b"MODULE a b c d",
    ]
    alphabet = b" -+x0123456789abcdefFm:\t\x00\xff\xfe_"
    for _ in range(300):
        lines = []
        for _ in range(rng.randrange(1, 30)):
            line = bytearray(rng.choice(seeds))
            for _ in range(rng.randrange(4)):
                position = rng.randrange(len(line) + 1)
                if rng.random() < 0.5 and line:
                    del line[position : position + rng.randrange(1, 4)]
                else:
                    line[position:position] = bytes(rng.choice(alphabet) for _ in range(2))
            lines.append(bytes(line))
        data = rng.choice([b"\n", b"\r\n", b"\r"]).join(lines)
        index = parse_sym(data)
        assert index.stats["errors"] <= 101
        for rel in (0, 0x10, 0x12, 0x20, 0x30, 1 << 63):
            index.lookup(rel)
            index.find_cfi_rules(rel)
            index.find_windows_frame_info(rel)
    for size in (1, 10, 1000):
        parse_sym(bytes(rng.randrange(256) for _ in range(size)))
