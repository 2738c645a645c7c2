"""The streaming index build makes byte-identical indexes to the old builder, kept in
tests/_reference_symbols.py: on every `.sym` of the test data and on synthetic files with every
record kind, conflict and error the parser knows (docs/formats/breakpad.md §1)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from _reference_symbols import reference_index

from procsupervisor.workers.stackwalker.symbols import (
    build_index_file,
    builder,
    bulk,
    columns,
    converter,
    parse_sym,
    parser,
)
from procsupervisor.workers.stackwalker.symbols.containers import ContainedRanges


def built_from_file(tmp_path: Path, data: bytes) -> bytes:
    source = tmp_path / "in.sym"
    source.write_bytes(data)
    out = tmp_path / "out.symidx"
    build_index_file(source, out)
    return out.read_bytes()


def assert_same_index(tmp_path: Path, data: bytes) -> None:
    expected = reference_index(data)
    assert parse_sym(data).to_bytes() == expected
    assert built_from_file(tmp_path, data) == expected


def test_every_sym_of_the_test_data(testdata: Path, tmp_path: Path) -> None:
    paths = sorted(testdata.rglob("*.sym"))
    assert len(paths) > 20
    for path in paths:
        data = path.read_bytes()
        expected = reference_index(data)
        assert parse_sym(data).to_bytes() == expected, path
        out = tmp_path / "out.symidx"
        build_index_file(path, out)
        assert out.read_bytes() == expected, path


# ---- synthetic files ---------------------------------------------------------------------------

NAMES = ["f", "g(int)", "operator new(unsigned long)", " lead", "a  b", "ns::x<y>", "\xe9t\xe9"]
ODD_LINES = ["", "x", "FUNC", "STACK", "STACK CFI", "PUBLIC 10", "STACK WIN 4 1"]
RULES = [".cfa: $rsp 8 + .ra: .cfa -8 + ^", ".cfa: $rsp 16 +", "$rbp: .cfa -16 + ^", "x", ":"]


def _hex(rng: random.Random, big: bool) -> str:
    if big and rng.random() < 0.3:
        return f"{rng.randrange(1 << 32, 1 << 64):x}"
    return f"{rng.randrange(0, 0x3000):x}"


def synthetic_lines(rng: random.Random, count: int) -> list[str]:
    """Records of every kind in a random order and mostly well formed, with overlaps, address
    disorder, duplicates, zero sizes, huge values and both INLINE syntaxes."""
    big = rng.random() < 0.3
    r = rng.randrange
    lines: list[str] = []
    address = r(0, 0x200)
    for _ in range(count):
        roll = rng.random()
        if roll < 0.08:
            lines.append(f"FILE {r(-1, 12)} file{r(9)}.c")
        elif roll < 0.12:
            old_syntax = f"{r(-1, 3)} " if rng.random() < 0.5 else ""
            lines.append(f"INLINE_ORIGIN {r(-1, 9)} {old_syntax}{rng.choice(NAMES)}")
        elif roll < 0.30:
            address = address + r(0, 0x40) if rng.random() < 0.8 else r(0, 0x3000)
            size = rng.choice([0, 1, r(1, 0x80)])
            flag = "m " if rng.random() < 0.1 else ""
            lines.append(f"FUNC {flag}{address:x} {size:x} {r(0, 20):x} {rng.choice(NAMES)}")
            pos = address
            for _ in range(r(0, 8)):
                step = rng.choice([0, 1, r(1, 0x10)])
                if rng.random() < 0.1:
                    pos = max(pos - r(0, 0x10), 0)
                lines.append(f"{pos:x} {step:x} {r(0, 300)} {r(-1, 12)}")
                pos += step
            address = pos
        elif roll < 0.36:
            ranges = " ".join(f"{address + r(-4, 0x20):x} {r(0, 0x10):x}" for _ in range(r(1, 4)))
            call_file = f"{r(-1, 12)} " if rng.random() < 0.5 else ""
            lines.append(f"INLINE {r(0, 3)} {r(0, 90)} {call_file}{r(0, 9)} {ranges}")
        elif roll < 0.48:
            lines.append(f"{_hex(rng, big)} {r(0, 0x20):x} {r(0, 99)} {r(0, 12)}")
        elif roll < 0.56:
            flag = "m " if rng.random() < 0.1 else ""
            lines.append(f"PUBLIC {flag}{_hex(rng, big)} {r(0, 9):x} {rng.choice(NAMES)}")
        elif roll < 0.66:
            lines.append(f"STACK CFI INIT {_hex(rng, big)} {r(0, 0x80):x} {rng.choice(RULES)}")
        elif roll < 0.82:
            lines.append(f"STACK CFI {_hex(rng, big)} {rng.choice(RULES)}")
        elif roll < 0.94:
            win_type = rng.choice([0, 4, 4, 1, 2, 3, 5])
            values = " ".join(f"{r(0, 20):x}" for _ in range(6))
            tail = "1 $T0 $ebp = $eip $T0 4 + ^ =" if rng.random() < 0.5 else f"0 {r(0, 2)}"
            lines.append(f"STACK WIN {win_type} {r(0, 0x3000):x} {r(0, 0x100):x} {values} {tail}")
        elif roll < 0.96:
            lines.append(f"MODULE Linux x86_64 {r(1 << 40):X} mod{r(3)}")
        elif roll < 0.97:
            lines.append("INFO CODE_ID 1234")
        else:
            lines.append(rng.choice(ODD_LINES))
    return lines


def _mutate(rng: random.Random, line: str) -> str:
    alphabet = " -+x0123456789abcdefFm:\t_"
    chars = list(line)
    for _ in range(rng.randrange(1, 4)):
        position = rng.randrange(len(chars) + 1)
        if rng.random() < 0.5 and chars:
            del chars[position : position + rng.randrange(1, 3)]
        else:
            chars[position:position] = rng.choice(alphabet)
    return "".join(chars)


@pytest.mark.parametrize("seed", range(60))
def test_synthetic_files(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    lines = synthetic_lines(rng, rng.randrange(1, 400))
    if seed % 3 == 0:
        lines = [_mutate(rng, line) if rng.random() < 0.05 else line for line in lines]
    separator = rng.choice(["\n", "\n", "\r\n", "\r"])
    data = separator.join(lines).encode()
    if rng.random() < 0.5:
        data += separator.encode()
    assert_same_index(tmp_path, data)


def sorted_file_lines(rng: random.Random) -> list[str]:
    """The shape real dump_syms output has (what the fast paths take), sizes of every kind."""
    lines = [f"MODULE Linux x86_64 {rng.randrange(99):X} lib.so", "INFO CODE_ID AB"]
    lines += [f"FILE {i} /src/f{i}.cc" for i in range(20)]
    lines += [f"INLINE_ORIGIN {i} inl{i}()" for i in range(10)]
    address = 0x1000 if rng.random() < 0.5 else (1 << 33)
    starts = []
    for n in range(rng.randrange(1, 300)):
        size = rng.randrange(1, 0x200)
        flag = "m " if rng.random() < 0.05 else ""
        lines.append(f"FUNC {flag}{address:x} {size:x} {rng.randrange(0, 4) * 4:x} func{n}()")
        if rng.random() < 0.3:
            head = f"{rng.randrange(1, 99)} {rng.randrange(20)} {rng.randrange(10)}"
            lines.append(f"INLINE 0 {head} {address:x} {size:x}")
            lines.append(f"INLINE 1 {head} {address + 1:x} 1")
            roll = rng.random()
            if roll < 0.01:  # two levels down: dropped
                lines.append(f"INLINE 3 {head} {address + 1:x} 1")
            elif roll < 0.02:  # the old syntax (no call file)
                lines.append(f"INLINE 1 {rng.randrange(1, 99)} 3 {address + 2:x} 1")
        pos = address
        records = []
        while pos < address + size:
            step = min(rng.randrange(1, 0x40), address + size - pos)
            records.append(f"{pos:x} {step:x} {rng.randrange(1, 5000)} {rng.randrange(20)}")
            pos += step
        if rng.random() < 0.05:  # overlapping lines in one function: resolved when laid out
            rng.shuffle(records)
            records.append(records[0])
        lines += records
        starts.append((address, size))
        address += size + rng.randrange(0, 0x10)
    lines += [f"PUBLIC {a:x} 0 pub_{a:x}" for a, _ in starts if rng.random() < 0.5]
    for a, size in starts:
        if rng.random() < 0.2:
            lines.append(f"STACK WIN 4 {a:x} {size:x} 4 0 8 0 10 0 1 $T0 $ebp = $eip $T0 4 + ^ =")
        lines.append(f"STACK CFI INIT {a:x} {size:x} .cfa: $rsp 8 + .ra: .cfa -8 + ^")
        for k in range(1, min(size, 4)):
            lines.append(f"STACK CFI {a + k:x} .cfa: $rsp {8 * k + 8} +")
    return lines




@pytest.mark.parametrize("seed", range(12))
def test_well_formed_sorted_files(tmp_path: Path, seed: int) -> None:
    lines = sorted_file_lines(random.Random(1000 + seed))
    assert_same_index(tmp_path, ("\n".join(lines) + "\n").encode())


EDGE_CASES = {
    "empty": b"",
    "only newlines": b"\n\n\r\n\r",
    "nul bytes": b"FUNC 10 10 0 f\x00g\n10 10 1 1\n",
    "trailing nuls": b"FUNC 10 10 0 f\n10 10 1 1\n\x00\x00\x00",
    "0xff ends the text": b"FUNC 10 10 0 f\n10 10 1 1\xff\nFUNC 30 10 0 g\n",
    "lines before any FUNC": b"10 4 1 1\nFUNC 10 10 0 f\n10 4 1 1\n",
    "lines after PUBLIC": b"FUNC 10 10 0 f\nPUBLIC 40 0 p\n10 4 1 1\n",
    "lines of a dropped FUNC": b"FUNC 10 20 0 f\nFUNC 18 8 0 dropped\n18 4 1 1\nzz\n",
    "overlapping lines": b"FUNC 10 40 0 f\n10 10 1 1\n14 4 2 1\n30 8 3 1\n20 10 4 1\n",
    "zero size lines": b"FUNC 10 40 0 f\n10 0 1 1\n10 4 2 1\n14 0 3 1\n",
    "u64 edge": b"FUNC fffffffffffffff0 10 0 top\nfffffffffffffff0 10 1 1\n"
    b"ffffffffffffffff 1 2 1\n",
    "huge numbers": b"FUNC 10 10 0 f\n10 4 99999999999999999999 1\n14 4 1 9223372036854775807\n",
    "signs and prefixes": b"FUNC 10 10 0 f\n+10 4 1 1\n0x14 4 1 1\n-1 4 1 1\n18 4 -1 1\n",
    "tabs": b"FUNC 10 10 0 f\n10\t4 1 1\nFUNC\t30 10 0 g\n",
    "uppercase hex lines": b"FUNC A0 10 0 f\nA0 8 1 1\nA8 8 2 1\n",
    "F-led line record": b"FUNC F00 100 0 f\nF00 10 1 1\nFA0 10 2 1\n",
    "unsorted funcs": b"FUNC 300 10 0 c\n300 10 3 1\nFUNC 100 10 0 a\n100 10 1 1\n"
    b"FUNC 200 10 0 b\n",
    "duplicate publics": b"PUBLIC 10 0 a\nPUBLIC 10 0 b\nPUBLIC 0 0 zero\nPUBLIC 8 0 c\n",
    "cfi out of order": b"STACK CFI INIT 10 40 .cfa: $rsp 8 +\nSTACK CFI 30 a\n"
    b"STACK CFI 20 b\nSTACK CFI 30 c\n",
    "cfi odd spacing": b"STACK  CFI 10 x\nSTACK CFI  INIT 10 10 y\nSTACK CFI 10\nSTACK CFI\n",
    "win nesting": b"STACK WIN 4 10 40 0 0 0 0 0 0 0 1\nSTACK WIN 4 20 8 0 0 0 0 0 0 0 0\n"
    b"STACK WIN 4 0 100 0 0 0 0 0 0 1 $T0\nSTACK WIN 4 20 8 0 0 0 0 0 0 0 0\n"
    b"STACK WIN 4 30 20 0 0 0 0 0 0 0 0\nSTACK WIN 0 10 10 0 0 0 0 0 0 0 1\n"
    b"STACK WIN 2 10 10 0 0 0 0 0 0 0 1\nSTACK WIN -1 10 10 0 0 0 0 0 0 0 1\n",
    "inline nesting": b"INLINE_ORIGIN 1 o\nFUNC 10 40 0 f\nINLINE 0 1 1 10 20\nINLINE 1 2 1 18 4\n"
    b"INLINE 3 2 1 18 4\nINLINE 0 5 7 1 30 8 40 4\nINLINE 0 5 1 10 20\n",
    "inline before func": b"INLINE 0 1 1 10 20\nFUNC 10 40 0 f\n",
    "module twice": b"MODULE a b c d\nMODULE e f g h\nMODULE short\n",
    "bail after 101 errors": b"FUNC 10 10 0 f\n"
    + b"x\n" * 101
    + b"FUNC 30 10 0 never\n30 10 1 1\n",
    "100 errors then records": b"x\n" * 100 + b"FUNC 30 10 0 kept\n30 10 1 1\n",
    "errors inside a line run": b"FUNC 10 100 0 f\n10 4 1 1\n"
    + b"14 4 z 1\n" * 101
    + b"18 4 1 1\n",
    "no final newline": b"FUNC 10 10 0 f\n10 10 1 1",
    "CR only": b"FUNC 10 10 0 f\r10 10 1 1\rPUBLIC 40 0 p\r",
}


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_edge_cases(tmp_path: Path, name: str) -> None:
    assert_same_index(tmp_path, EDGE_CASES[name])


@pytest.mark.parametrize("chunk_bytes", [1, 3, 17, 64, 1000])
def test_small_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_bytes: int) -> None:
    """Chunk boundaries fall anywhere: inside lines, CR LF pairs, runs of line records."""
    rng = random.Random(chunk_bytes)
    data = "\r\n".join(synthetic_lines(rng, 300)).encode()
    expected = reference_index(data)
    monkeypatch.setattr(parser, "CHUNK_BYTES", chunk_bytes)
    assert parse_sym(data).to_bytes() == expected
    assert built_from_file(tmp_path, data) == expected


@pytest.mark.parametrize("seed", range(8))
def test_line_columns_spilled_to_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """Line records beyond a few go to temporary files, widen there when an address needs 8
    bytes, and are regrouped from there when FUNCs arrive out of address order."""
    rng = random.Random(500 + seed)
    lines = synthetic_lines(rng, 400)
    lines += [f"FUNC {1 << 40:x} 10 0 wide", f"{1 << 40:x} 10 1 1"]  # 8-byte line values
    data = "\n".join(lines).encode()
    expected = reference_index(data)
    monkeypatch.setattr(columns, "SPILL_ITEMS", 3)
    assert parse_sym(data).to_bytes() == expected
    assert built_from_file(tmp_path, data) == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.sym", "out.symidx"]


def test_inline_trees_in_dump_syms_order_match_the_generic_build() -> None:
    """builder._nested_in_order, the shortcut for INLINE ranges written depth first, gives
    ContainedRanges' tree whenever it answers."""
    rng = random.Random(7)
    answered = 0
    for _ in range(3000):
        ranges = []
        base = rng.randrange(0, 50)
        for entry in range(rng.randrange(1, 9)):
            base += rng.choice([-4, 0, 1, 2, 8, 30])
            ranges.append((max(base, 0), rng.choice([0, 1, 2, 4, 8, 16, 40]), entry))
        fast = builder._nested_in_order(ranges)
        if fast is None:
            continue
        answered += 1
        tree = ContainedRanges(allow_equal=True)
        for address, size, entry in ranges:
            tree.store(address, size, entry)
        bases, highs, parents, entries = tree.flatten()
        expected_parents = [-1] * len(bases) if parents is None else parents
        assert fast == (list(bases), list(highs), expected_parents, list(entries)), ranges
    assert answered > 500


@pytest.mark.parametrize("seed", range(6))
def test_line_records_converted_by_a_helper_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """Large files have their line records converted by a helper process: batches in flight,
    committed in order, an unclean one handed to the exact parser."""
    rng = random.Random(900 + seed)
    well_formed = sorted_file_lines(rng)
    lines = well_formed[: len(well_formed) // 2] + synthetic_lines(rng, 60)
    lines += well_formed[len(well_formed) // 2 :]
    data = "\n".join(lines).encode()
    monkeypatch.setattr(parser, "HELPER_MIN_BYTES", 0)
    monkeypatch.setattr(bulk, "FUNC_BATCH", 3)
    assert built_from_file(tmp_path, data) == reference_index(data)


def test_a_helper_process_that_dies_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = "\n".join(sorted_file_lines(random.Random(3))).encode()
    monkeypatch.setattr(parser, "HELPER_MIN_BYTES", 0)
    monkeypatch.setattr(bulk, "FUNC_BATCH", 2)
    monkeypatch.setattr(converter, "_serve", lambda work, requests, results: None)  # exits now
    assert built_from_file(tmp_path, data) == reference_index(data)


def test_unclean_batches_converted_here_while_the_helper_is_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the helper full, batches are converted in the parser's own process; an unclean one
    among them still goes to the exact parser, in its place."""
    rng = random.Random(11)
    lines = sorted_file_lines(rng)
    middle = next(i for i, line in enumerate(lines) if line.startswith("FUNC")) + 40
    lines[middle:middle] = ["10 0 1 1", "zz"]  # a zero-size line and an error, mid-batch
    data = "\n".join(lines).encode()
    monkeypatch.setattr(parser, "HELPER_MIN_BYTES", 0)
    monkeypatch.setattr(bulk, "FUNC_BATCH", 1)
    monkeypatch.setattr(bulk, "DEPTH", 0)  # never wait: everything converted here
    assert built_from_file(tmp_path, data) == reference_index(data)
    monkeypatch.setattr(bulk, "DEPTH", 1)
    assert built_from_file(tmp_path, data) == reference_index(data)
