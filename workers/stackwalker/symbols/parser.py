"""Breakpad `.sym` parser with BasicSourceLineResolver's semantics (docs/formats/breakpad.md §1),
streaming.

The text is read `CHUNK_BYTES` at a time (from a file, never mapped, or from bytes), cut at line
ends and split into runs of one record kind, which bulk.py handles a batch at a time; what it
does not take goes through the exact parser (exact.py). Records accumulate in flat arrays
(records.py), so memory stays below the file's size, and builder.py writes the index sections
from them to a file or to memory.

    parse_sym(data) -> SymbolIndex                 # in memory
    build_index_file(sym_path, out_path) -> meta   # file to file, bounded memory
"""

from __future__ import annotations

import io
import mmap
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from procsupervisor.workers.stackwalker.symbols.builder import write_index
from procsupervisor.workers.stackwalker.symbols.bulk import BulkParser
from procsupervisor.workers.stackwalker.symbols.converter import BatchHelper, helper_allowed
from procsupervisor.workers.stackwalker.symbols.exact import Bail
from procsupervisor.workers.stackwalker.symbols.funcs import prepared_funcs
from procsupervisor.workers.stackwalker.symbols.index import SymbolIndex
from procsupervisor.workers.stackwalker.symbols.records import ParsedRecords

CHUNK_BYTES = 1 << 20  # text handled at a time; bounds every per-chunk list and copy
HELPER_MIN_BYTES = 16 << 20  # from this size a helper process converts line records
_SCAN_BYTES = 8 << 20

# Where a run of one kind ends: the first line break not followed by a line of that kind. A
# FUNC run (FUNC, INLINE and line records) ends at the next line another handler takes: any
# other line inside it is still parsed exactly (bulk.py checks every batch), and finding these
# few keywords costs less than looking at every line's start.
_FUNC_RUN_END = re.compile(rb"\n(?:PUBLIC |STACK |FILE |INLINE_ORIGIN |MODULE |INFO )")
_CFI_RUN_END = re.compile(rb"\n(?!STACK CFI )")
_WIN_RUN_END = re.compile(rb"\n(?!STACK WIN )")
_PUBLIC_RUN_END = re.compile(rb"\n(?!PUBLIC )")
_FILE_RUN_END = re.compile(rb"\n(?!FILE )")
_ORIGIN_RUN_END = re.compile(rb"\n(?!INLINE_ORIGIN )")
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def parse_sym(data: bytes | bytearray | memoryview | mmap.mmap) -> SymbolIndex:
    """Parse `.sym` text (the file's raw bytes, or an mmap of the file) into a ready index."""
    out = io.BytesIO()
    write_index(SymParser().parse_bytes(data), out)
    return SymbolIndex.from_buffer(out.getvalue(), verify=False)


def build_index_file(sym_path: Path, out_path: Path) -> dict:
    """Index the `.sym` file at `sym_path` into a new file `out_path`; returns the metadata
    stored with it ({"module": ..., "stats": ...}). Memory stays below the `.sym` file's size
    plus a few MiB: the file is read in chunks and the index is written section by section."""
    out_path = Path(out_path)
    with Path(sym_path).open("rb") as handle:
        records = SymParser(spill_dir=str(out_path.parent)).parse_file(handle)
    with out_path.open("wb") as out:
        return write_index(records, out)


def load_sym_file(path: Path) -> SymbolIndex:
    """Parse a `.sym` file into an index, built in an unnamed temporary file and mapped: a big
    file's index never sits in this process's memory whole."""
    with Path(path).open("rb") as handle:
        records = SymParser().parse_file(handle)
    with tempfile.TemporaryFile() as out:
        write_index(records, out)
        mapped = mmap.mmap(out.fileno(), out.tell(), access=mmap.ACCESS_READ)
    return SymbolIndex.from_buffer(mapped, verify=False)  # the map outlives the file


class SymParser(BulkParser):
    """One-shot parser: `SymParser().parse_bytes(data)` or `.parse_file(handle)` -> records."""

    def parse_bytes(self, data: bytes | bytearray | memoryview | mmap.mmap) -> ParsedRecords:
        if isinstance(data, (memoryview, bytearray)):
            data = bytes(data)  # an mmap.mmap is used in place: its slices are bytes
        end = data.find(b"\xff")
        if end < 0:
            end = len(data)
        while end > 0 and data[end - 1] == 0:
            end -= 1
        has_nul = data.find(b"\x00", 0, end) >= 0
        step = CHUNK_BYTES
        return self._parse((data[pos : min(pos + step, end)] for pos in range(0, end, step)),
                           has_nul)  # fmt: skip

    def parse_file(self, handle: BinaryIO) -> ParsedRecords:
        """Read a seekable binary file from its start: one pass to find where the text ends
        (Breakpad stops at the first 0xFF byte and drops trailing NULs), one to parse. A large
        file's FUNC batches are prepared by a helper process too (converter.py)."""
        end, has_nul = _text_extent(handle)
        handle.seek(0)
        if end < HELPER_MIN_BYTES or self.converter is not None or not helper_allowed():
            return self._parse(_read_blocks(handle, end), has_nul)
        self.converter = BatchHelper(prepared_funcs)
        try:
            return self._parse(_read_blocks(handle, end), has_nul)
        finally:
            self.converter.close()
            self.converter = None

    def _parse(self, blocks: Iterable[bytes], has_nul: bool) -> ParsedRecords:
        try:
            if has_nul:
                self._error()
            carry = b""
            for block in blocks:
                text = carry + block if carry else block
                cut = max(text.rfind(b"\n"), text.rfind(b"\r")) + 1
                if not cut:
                    carry = text
                    continue
                carry = text[cut:]
                self._feed(_normalized(text[:cut] if carry else text, has_nul))
            if carry:
                self._feed(_normalized(carry + b"\n", has_nul))
        except Bail:
            self.stats.truncated = True
        return self.records

    def _feed(self, text: bytes) -> None:
        """Whole lines, each ending in LF, split into runs of one kind."""
        pos = 0
        size = len(text)
        while pos < size:
            first = text[pos]
            if first == 0x0A:  # an empty line is no record at all
                pos += 1
                continue
            handler = None
            if first == 0x53:  # S
                if text.startswith(b"STACK CFI ", pos):
                    handler, run_end = self._cfi_region, _CFI_RUN_END
                elif text.startswith(b"STACK WIN ", pos):
                    handler, run_end = self._win_region, _WIN_RUN_END
            elif first == 0x50:  # P
                if text.startswith(b"PUBLIC ", pos):
                    handler, run_end = self._public_region, _PUBLIC_RUN_END
            elif first == 0x46 and text.startswith(b"FILE ", pos):
                handler, run_end = self._file_region, _FILE_RUN_END
            elif first in _HEX_DIGITS or text.startswith(b"INLINE ", pos):
                handler, run_end = self._func_region, _FUNC_RUN_END
            elif text.startswith(b"INLINE_ORIGIN ", pos):
                handler, run_end = self._origin_region, _ORIGIN_RUN_END
            if handler is None:
                end = text.index(b"\n", pos) + 1
                self._exact_feed(text[pos:end])
            else:
                found = run_end.search(text, pos)
                end = found.start() + 1 if found is not None else size
                handler(text[pos:end])
            pos = end


def _normalized(text: bytes, has_nul: bool) -> bytes:
    """NULs read as "_" (docs/formats/breakpad.md §1.1) and every CR as a line end: CR LF becomes
    one LF, since an empty line is no record."""
    if has_nul:
        text = text.replace(b"\x00", b"_")
    if b"\r" in text:
        text = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return text


def _text_extent(handle: BinaryIO) -> tuple[int, bool]:
    """(length of the text, whether it holds a NUL): up to the first 0xFF byte, without
    trailing NULs."""
    pos = 0
    text_end = 0
    first_nul = -1
    while True:
        block = handle.read(_SCAN_BYTES)
        if not block:
            break
        stop = block.find(b"\xff")
        if stop >= 0:
            block = block[:stop]
        kept = len(block.rstrip(b"\x00"))
        if kept:
            text_end = pos + kept
        if first_nul < 0:
            nul = block.find(b"\x00")
            if nul >= 0:
                first_nul = pos + nul
        pos += len(block)
        if stop >= 0:
            break
    return text_end, 0 <= first_nul < text_end


def _read_blocks(handle: BinaryIO, end: int) -> Iterator[bytes]:
    remaining = end
    while remaining > 0:
        block = handle.read(min(CHUNK_BYTES, remaining))
        if not block:
            return
        remaining -= len(block)
        yield block
