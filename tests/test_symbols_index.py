"""The serialized index: round trips, in-place loading, and rejection of damaged buffers."""

from __future__ import annotations

import mmap
import random
from pathlib import Path

import pytest

from procsupervisor.workers.stackwalker.symbols import SymbolIndex, SymbolIndexError, parse_sym

SAMPLE = b"""MODULE windows x86 0123 sample.pdb
FILE 1 a.c
FILE 2 b c.c
INLINE_ORIGIN 0 inlined()
FUNC 1000 40 8 outer
INLINE 0 12 2 0 1010 10
1000 10 10 1
1010 30 11 2
FUNC 2000 10 0 second
2000 10 20 1
PUBLIC 3000 4 public_sym
STACK WIN 4 1000 40 1 0 8 0 0 0 1 $T0 $ebp =
STACK WIN 0 2000 10 1 0 0 0 0 0 0 1
STACK CFI INIT 1000 40 .cfa: $esp 4 + .ra: .cfa 4 - ^
STACK CFI 1001 .cfa: $esp 8 +
"""

PROBES = [0, 0x1000, 0x1011, 0x103F, 0x2005, 0x2FFF, 0x3000, 0x5000, -1, 1 << 64]


def answers(index: SymbolIndex) -> list[object]:
    return [
        (index.lookup(rel), index.find_windows_frame_info(rel), index.find_cfi_rules(rel))
        for rel in PROBES
    ]


def test_round_trip_bytes_and_mmap(tmp_path: Path) -> None:
    index = parse_sym(SAMPLE)
    blob = index.to_bytes()
    assert isinstance(blob, bytes) and len(blob) == index.nbytes
    again = SymbolIndex.from_buffer(blob)
    assert again == index
    assert answers(again) == answers(index)
    assert again.module == {
        "os": "windows",
        "arch": "x86",
        "debug_id": "0123",
        "name": "sample.pdb",
    }
    assert again.stats == index.stats
    path = tmp_path / "sample.idx"
    path.write_bytes(blob)
    with (
        path.open("rb") as handle,
        mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped,
    ):
        mapped_index = SymbolIndex.from_buffer(mapped, verify=True)
        assert answers(mapped_index) == answers(index)
        assert mapped_index.to_bytes() == blob
        mapped_index.release()
    viewed = SymbolIndex.from_buffer(memoryview(bytearray(blob)), verify=False)
    assert answers(viewed) == answers(index)


def test_answers_of_the_sample() -> None:
    index = parse_sym(SAMPLE)
    hit = index.lookup(0x1011)
    assert hit is not None
    assert (hit.function_name, hit.source_file, hit.source_line) == ("outer", "b c.c", 11)
    assert [(i.function_name, i.call_site_file) for i in hit.inlines] == [("inlined()", "b c.c")]
    assert index.lookup(0x5000).function_name == "public_sym"  # type: ignore[union-attr]
    assert index.lookup(-1) is None and index.lookup(1 << 64) is None


def test_rejects_wrong_magic_version_and_non_buffers() -> None:
    blob = bytearray(parse_sym(SAMPLE).to_bytes())
    with pytest.raises(SymbolIndexError):
        SymbolIndex.from_buffer(b"")
    with pytest.raises(SymbolIndexError):
        SymbolIndex.from_buffer(b"X" + bytes(blob[1:]))
    wrong_version = bytearray(blob)
    wrong_version[8] ^= 0x7F
    with pytest.raises(SymbolIndexError):
        SymbolIndex.from_buffer(bytes(wrong_version), verify=False)
    with pytest.raises(SymbolIndexError):
        SymbolIndex.from_buffer("not bytes")  # type: ignore[arg-type]
    with pytest.raises(SymbolIndexError):
        SymbolIndex.from_buffer(bytes(blob) + b"\0")
    with pytest.raises(SymbolIndexError):
        SymbolIndex.from_buffer(memoryview(bytes(blob) * 2)[::2])


def test_every_truncation_is_rejected() -> None:
    blob = parse_sym(SAMPLE).to_bytes()
    for length in range(len(blob)):
        with pytest.raises(SymbolIndexError):
            SymbolIndex.from_buffer(blob[:length], verify=False)


def test_bit_flips_are_caught_by_the_crc() -> None:
    blob = parse_sym(SAMPLE).to_bytes()
    rng = random.Random(1234)
    for _ in range(300):
        damaged = bytearray(blob)
        position = rng.randrange(len(damaged))
        damaged[position] ^= 1 << rng.randrange(8)
        with pytest.raises(SymbolIndexError):
            SymbolIndex.from_buffer(bytes(damaged), verify=True)


def test_unverified_damage_never_raises_other_errors() -> None:
    """Without the crc pass, damage in the arrays may give wrong answers, but any failure is a
    SymbolIndexError (at load or at lookup), never IndexError, a hang, etc."""
    blob = parse_sym(SAMPLE).to_bytes()
    rng = random.Random(99)
    for _ in range(400):
        damaged = bytearray(blob)
        for _ in range(rng.randrange(1, 6)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        try:
            index = SymbolIndex.from_buffer(bytes(damaged), verify=False)
            for rel in (*PROBES, rng.randrange(0x4000)):
                index.lookup(rel)
                index.find_windows_frame_info(rel)
                index.find_cfi_rules(rel)
        except SymbolIndexError:
            pass


def test_random_garbage_is_rejected() -> None:
    rng = random.Random(7)
    for size in (1, 31, 32, 100, 4096):
        with pytest.raises(SymbolIndexError):
            SymbolIndex.from_buffer(bytes(rng.randrange(256) for _ in range(size)))


def test_sections_narrow_to_32_bits_only_when_every_value_fits() -> None:
    small = parse_sym(SAMPLE)
    wide = parse_sym(SAMPLE + b"FUNC ffffffff00000000 10 0 high\n")
    again = SymbolIndex.from_buffer(wide.to_bytes(), verify=True)
    assert again.lookup(0xFFFFFFFF00000004).function_name == "high"  # type: ignore[union-attr]
    assert answers(again) == answers(small)
    # func_base and func_high went from 4- to 8-byte elements: 3 functions x 2 x 4 more bytes
    assert wide.nbytes > small.nbytes
