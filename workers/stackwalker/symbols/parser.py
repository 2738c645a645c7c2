"""Breakpad `.sym` parser with BasicSourceLineResolver's semantics (BREAKPAD.md §1).

`SymParser.parse(data)` reads the whole text and returns the index sections (tables.py);
`parse_sym(data)` lays them out as a ready SymbolIndex. Records are kept in flat arrays, not
per-record objects; the common, well-formed shapes of each record go through `bytes.split` +
`int()` and anything unusual falls back to the exact C-semantics helpers in cparse.py, so both
give the same answers.
"""

from __future__ import annotations

import json
import mmap
import re
from array import array
from dataclasses import dataclass, field
from itertools import islice, repeat
from operator import add, le, lt, sub

from procsupervisor.workers.stackwalker.symbols.containers import (
    ContainedRanges,
    ExclusiveRanges,
    range_high,
)
from procsupervisor.workers.stackwalker.symbols.cparse import (
    LONG_MAX,
    U64_MAX,
    checked_long,
    checked_u64,
    strtol,
    tokenize,
    tokenize_partial,
    unchecked_ulong,
)
from procsupervisor.workers.stackwalker.symbols.index import SymbolIndex
from procsupervisor.workers.stackwalker.symbols.layout import serialize_sections
from procsupervisor.workers.stackwalker.symbols.tables import NO_STRING, empty_sections

MAX_ERRORS = 100  # Breakpad stops after the 101st counted error
CHUNK_BYTES = 8 << 20

_HEX_CHARS = b"0123456789abcdefABCDEF"
_DEC_CHARS = b"0123456789"
_LINE_RECORD_CHARS = _HEX_CHARS + b" "
# Lines that may be keyword records; every other line is a line record.
_KEYWORD_LINE = re.compile(rb"^[FSPMI].*$", re.MULTILINE)
# A run of plain line records. Digit counts are capped so that every value is far below the
# ULLONG_MAX / LONG_MAX rejections and no range can wrap; longer numbers take the exact path.
_LINE_RECORD = rb"[0-9a-fA-F]{1,15} [0-9a-fA-F]{1,15} [0-9]{1,18} [0-9]{1,18}"
_LINE_BLOCK = re.compile(rb"(?:%s\n)*%s" % (_LINE_RECORD, _LINE_RECORD))

NO_FUNC = -1  # no current function: line records are errors
DROPPED_FUNC = -2  # a FUNC that parsed but was not stored: its records are parsed and lost


def parse_sym(data: bytes | bytearray | memoryview | mmap.mmap) -> SymbolIndex:
    """Parse `.sym` text (the file's raw bytes, or an mmap of the file) into a ready index."""
    sections, _meta = SymParser().parse(data)
    return SymbolIndex.from_buffer(serialize_sections(sections), verify=False)


class _Bail(Exception):
    """Raised internally after the 101st counted error."""


def hex_field(token: bytes) -> int | None:
    """Validated `strtoull(.., 16)` field (FUNC/PUBLIC/line/INLINE addresses and sizes)."""
    if token and not token.translate(None, _HEX_CHARS):
        value = int(token, 16)
        return value if value < U64_MAX else None
    return checked_u64(token, 16)


def long_field(token: bytes, base: int, minimum: int) -> int | None:
    """Validated `strtol` field: >= minimum and != LONG_MAX."""
    if token and not token.translate(None, _DEC_CHARS if base == 10 else _HEX_CHARS):
        value = int(token, base)
        return value if value < LONG_MAX and value >= minimum else None
    return checked_long(token, base, minimum)


def loose_hex(token: bytes) -> int:
    """Unvalidated `strtoul(.., 16)` (STACK WIN / STACK CFI numbers)."""
    if token and not token.translate(None, _HEX_CHARS):
        value = int(token, 16)
        return value if value <= U64_MAX else U64_MAX
    return unchecked_ulong(token, 16)


def _with_optional_m(rest: bytes, max_tokens: int) -> tuple[bool, list[bytes]] | None:
    """Breakpad's TokenizeWithOptionalField(rest, "m", max_tokens) for FUNC and PUBLIC."""
    parts = rest.split(b" ", max_tokens - 2)
    if len(parts) != max_tokens - 1 or b"" in parts:
        found = tokenize(rest, max_tokens - 1)
        if found is None:
            return None
        parts = found
    if parts[0] != b"m":
        return False, parts
    tail = tokenize(parts[-1], 2)
    if tail is None:
        return None
    return True, parts[1:-1] + tail


@dataclass
class ParseStats:
    errors: int = 0
    inline_errors: int = 0
    truncated: bool = False  # stopped after the 101st counted error
    counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int | bool]:
        result: dict[str, int | bool] = dict(self.counts)
        result["errors"] = self.errors
        result["inline_errors"] = self.inline_errors
        result["corrupt"] = self.errors > 0
        result["truncated"] = self.truncated
        return result


class SymParser:
    """One-shot parser: `SymParser().parse(data)` -> (index sections, metadata dict)."""

    def __init__(self) -> None:
        self.stats = ParseStats()
        self.module: dict[str, str] | None = None
        # strings that repeat (CFI rules, files, ...) are deduplicated through _string_ids;
        # function and public names go straight into the table
        self._string_ids: dict[bytes, int] = {}
        self._str_data = bytearray()
        self._str_offsets = array("Q", [0])
        self._files: dict[int, int] = {}
        self._origins: dict[int, int] = {}
        # FUNC records that were stored, by record number
        self._funcs = ExclusiveRanges()
        self._func_param = array("Q")
        self._func_name = array("I")
        self._func_flags = array("B")
        self._func_line_lo = array("Q")
        self._unsorted_line_funcs: set[int] = set()
        self._func_inlines: dict[int, list[tuple[int, int | None, int, list[tuple[int, int]]]]] = {}
        self._cur = NO_FUNC
        self._cur_last_high = -1
        self._cur_inline_level = 0
        # line records of stored FUNCs, grouped by function in record order
        self._line_base = array("Q")
        self._line_high = array("Q")
        self._line_number = array("Q")
        self._line_file = array("Q")
        self._publics: dict[int, tuple[int, int, int]] = {}
        self._cfi_inits = ExclusiveRanges()
        # in record order; a later delta at the same address replaces the earlier one
        self._delta_addr = array("Q")
        self._delta_rules = array("I")
        self._win_maps = {t: ContainedRanges(allow_equal=False) for t in range(5)}
        self._win_records: list[tuple[tuple[int, ...], int]] = []
        self._win_stored = 0
        self._inline_records = 0

    # ---- driver -------------------------------------------------------------------------

    def parse(
        self, data: bytes | bytearray | memoryview | mmap.mmap
    ) -> tuple[dict[str, array], dict]:
        if isinstance(data, (memoryview, bytearray)):
            data = bytes(data)  # an mmap.mmap is used in place: its slices are bytes
        end = data.find(b"\xff")
        if end < 0:
            end = len(data)
        while end > 0 and data[end - 1] == 0:
            end -= 1
        has_nul = data.find(b"\x00", 0, end) >= 0
        try:
            if has_nul:
                self._error()
            pos = 0
            while pos < end:
                cut = self._chunk_end(data, pos, end)
                chunk = data[pos:cut]
                pos = cut
                if has_nul:
                    chunk = chunk.replace(b"\x00", b"_")
                if b"\r" in chunk:
                    chunk = chunk.replace(b"\r", b"\n")
                self._feed(chunk)
        except _Bail:
            self.stats.truncated = True
        return self._finish()

    @staticmethod
    def _chunk_end(data: bytes | bytearray, pos: int, end: int) -> int:
        limit = pos + CHUNK_BYTES
        if limit >= end:
            return end
        cut = max(data.rfind(b"\n", pos, limit), data.rfind(b"\r", pos, limit))
        if cut < 0:
            nl = [i for i in (data.find(b"\n", limit, end), data.find(b"\r", limit, end)) if i >= 0]
            return min(nl) + 1 if nl else end
        return cut + 1

    def _error(self) -> None:
        self.stats.errors += 1
        if self.stats.errors > MAX_ERRORS:
            raise _Bail

    def _add_string(self, text: bytes) -> int:
        sid = len(self._str_offsets) - 1
        self._str_data += text
        self._str_offsets.append(len(self._str_data))
        return sid

    def _intern(self, text: bytes) -> int:
        sid = self._string_ids.get(text)
        if sid is None:
            sid = self._add_string(text)
            self._string_ids[text] = sid
        return sid

    # ---- the per-line loop --------------------------------------------------------------

    def _feed(self, chunk: bytes) -> None:
        """Keyword lines one by one; the runs of line records between them in bulk."""
        pos = 0
        keyword_line = self._keyword_line
        string_ids = self._string_ids
        intern = self._intern
        delta_addr = self._delta_addr
        delta_rules = self._delta_rules
        for match in _KEYWORD_LINE.finditer(chunk):
            start = match.start()
            if start > pos:
                self._line_block(chunk[pos:start])
            pos = match.end() + 1  # past the keyword line's newline
            line = match.group()
            if line.startswith(b"STACK CFI "):
                # the bulk of a large file's keyword lines: plain deltas are handled inline
                parts = line.split(b" ", 3)
                address = parts[2]
                if (
                    len(parts) == 4
                    and parts[3]
                    and address
                    and len(address) <= 16
                    and not address.translate(None, _HEX_CHARS)
                ):
                    rules = parts[3]
                    sid = string_ids.get(rules)
                    delta_addr.append(int(address, 16))
                    delta_rules.append(intern(rules) if sid is None else sid)
                    continue
            if not keyword_line(line):
                self._line_records([line])
        if pos < len(chunk):
            self._line_block(chunk[pos:])

    def _line_block(self, block: bytes) -> None:
        body = block.strip(b"\n")
        if not body:
            return
        cur = self._cur
        if cur == NO_FUNC or _LINE_BLOCK.fullmatch(body) is None:
            self._line_records(body.split(b"\n"))
            return
        if cur < 0:
            return  # well-formed records of a FUNC that was not stored: nothing to keep
        tokens = body.replace(b"\n", b" ").split(b" ")
        bases = list(map(int, tokens[0::4], repeat(16)))
        sizes = list(map(int, tokens[1::4], repeat(16)))
        numbers = list(map(int, tokens[2::4]))
        file_ids = list(map(int, tokens[3::4]))
        ends = list(map(add, bases, sizes))
        if 0 in sizes or bases[0] <= self._cur_last_high or not all(map(le, ends[:-1], bases[1:])):
            self._line_records(body.split(b"\n"))
            return
        self._line_base.extend(bases)
        self._line_high.extend(map(sub, ends, repeat(1)))
        self._line_number.extend(numbers)
        self._line_file.extend(file_ids)
        self._cur_last_high = ends[-1] - 1

    def _line_records(self, lines: list[bytes]) -> None:
        """Line records one at a time, with every rule (conflicts, errors)."""
        record_chars = _LINE_RECORD_CHARS
        line_base = self._line_base
        line_high = self._line_high
        line_number = self._line_number
        line_file = self._line_file
        cur = self._cur
        last_high = self._cur_last_high
        for line in lines:
            if not line:
                continue
            if cur == NO_FUNC:
                self._error()
                continue
            parts = line.split(b" ")
            if len(parts) == 4 and not line.translate(None, record_chars):
                try:
                    base = int(parts[0], 16)
                    size = int(parts[1], 16)
                    number = int(parts[2])
                    file_id = int(parts[3])
                except ValueError:
                    parsed = self._slow_line_record(line)
                else:
                    if (
                        base < U64_MAX
                        and size < U64_MAX
                        and number < LONG_MAX
                        and file_id < LONG_MAX
                    ):
                        parsed = (base, size, number, file_id)
                    else:
                        parsed = None
            else:
                parsed = self._slow_line_record(line)
            if parsed is None:
                self._error()
                continue
            if cur < 0:
                continue
            base, size, number, file_id = parsed
            if size == 0:
                continue
            high = base + size - 1
            if high > U64_MAX:
                continue
            if base <= last_high:
                self._unsorted_line_funcs.add(cur)
            if high > last_high:
                last_high = high
            line_base.append(base)
            line_high.append(high)
            line_number.append(number)
            line_file.append(file_id)
        self._cur_last_high = last_high

    @staticmethod
    def _slow_line_record(line: bytes) -> tuple[int, int, int, int] | None:
        tokens = tokenize(line, 4)
        if tokens is None:
            return None
        base = checked_u64(tokens[0], 16)
        size = checked_u64(tokens[1], 16)
        number = checked_long(tokens[2], 10, 0)
        file_id = checked_long(tokens[3], 10, 0)
        if base is None or size is None or number is None or file_id is None:
            return None
        return base, size, number, file_id

    def _keyword_line(self, line: bytes) -> bool:
        """Handle a keyword record; False if the line is not one (then it is a line record)."""
        if line.startswith(b"STACK CFI INIT ") and self._stack_cfi_init_fast(line):
            pass
        elif line.startswith(b"FUNC "):
            self._func(line[5:])
        elif line.startswith(b"STACK "):
            if not self._stack(line[6:]):
                self._error()
        elif line.startswith(b"PUBLIC "):
            self._cur = NO_FUNC
            if not self._public(line[7:]):
                self._error()
        elif line.startswith(b"FILE "):
            if not self._file(line[5:]):
                self._error()
        elif line.startswith(b"INLINE "):
            if not self._inline(line[7:]):
                self.stats.inline_errors += 1
        elif line.startswith(b"INLINE_ORIGIN "):
            if not self._inline_origin(line[14:]):
                self.stats.inline_errors += 1
        elif line.startswith(b"MODULE "):
            if self.module is None:
                self._module(line[7:])
        elif line.startswith(b"INFO "):
            pass
        else:
            return False
        return True

    # ---- records ------------------------------------------------------------------------

    def _func(self, rest: bytes) -> None:
        found = _with_optional_m(rest, 5)
        parsed = None
        if found is not None:
            multiple, tokens = found
            base = hex_field(tokens[0])
            size = hex_field(tokens[1])
            param = long_field(tokens[2], 16, 0)
            if base is not None and size is not None and param is not None:
                parsed = (base, size, param, tokens[3], multiple)
        if parsed is None:
            self._cur = NO_FUNC
            self._error()
            return
        base, size, param, name, multiple = parsed
        self._cur_last_high = -1
        self._cur_inline_level = 0
        high = range_high(base, size)
        record = len(self._func_param)
        if high is None or not self._funcs.store(base, high, record):
            self._cur = DROPPED_FUNC
            return
        self._cur = record
        self._func_param.append(param)
        self._func_name.append(self._add_string(name))
        self._func_flags.append(1 if multiple else 0)
        self._func_line_lo.append(len(self._line_base))

    def _public(self, rest: bytes) -> bool:
        found = _with_optional_m(rest, 4)
        if found is None:
            return False
        multiple, tokens = found
        address = hex_field(tokens[0])
        param = long_field(tokens[1], 16, 0)
        if address is None or param is None:
            return False
        if address == 0:
            return True
        if address in self._publics:
            return False
        self._publics[address] = (param, self._add_string(tokens[2]), 1 if multiple else 0)
        return True

    def _file(self, rest: bytes) -> bool:
        tokens = tokenize(rest, 2)
        if tokens is None:
            return False
        file_id = long_field(tokens[0], 10, 0)
        if file_id is None:
            return False
        if file_id not in self._files:
            self._files[file_id] = self._intern(tokens[1])
        return True

    def _module(self, rest: bytes) -> None:
        tokens = tokenize(rest, 4)
        if tokens is not None:
            os_name, arch, debug_id, name = (t.decode("utf-8", "replace") for t in tokens)
            self.module = {"os": os_name, "arch": arch, "debug_id": debug_id, "name": name}

    def _stack(self, rest: bytes) -> bool:
        start = 0
        n = len(rest)
        while start < n and rest[start] == 0x20:
            start += 1
        stop = rest.find(b" ", start)
        if stop < 0:
            platform, body = rest[start:], b""
        else:
            platform, body = rest[start:stop], rest[stop + 1 :]
        if platform == b"CFI":
            return self._stack_cfi(body)
        if platform == b"WIN":
            return self._stack_win(body)
        return False

    def _stack_cfi_init_fast(self, line: bytes) -> bool:
        """A well-formed `STACK CFI INIT` line; False means "use the general path". (Deltas
        are stored by `_feed` directly, or by the general path when unusual.)"""
        parts = line.split(b" ", 3)
        if len(parts) != 4 or not parts[3]:
            return False
        init = parts[3].split(b" ", 2)
        if len(init) != 3 or not init[2] or init[0].translate(None, _HEX_CHARS):
            return False
        if not init[0] or not init[1] or init[1].translate(None, _HEX_CHARS):
            return False
        base = int(init[0], 16)
        high = range_high(base, int(init[1], 16))
        if base <= U64_MAX and high is not None:
            self._cfi_inits.store(base, high, self._intern(init[2]))
            return True
        return False

    def _stack_cfi(self, body: bytes) -> bool:
        first = body.lstrip(b" ").split(b" ", 1)[0]
        if first == b"INIT":
            tokens = tokenize(body, 4)
            if tokens is None:
                return False
            base = loose_hex(tokens[1])
            high = range_high(base, loose_hex(tokens[2]))
            if high is not None:
                self._cfi_inits.store(base, high, self._intern(tokens[3]))
            return True
        parts = body.split(b" ", 1)
        if len(parts) != 2 or not parts[0] or not parts[1]:
            found = tokenize(body, 2)
            if found is None:
                return False
            parts = found
        self._delta_addr.append(loose_hex(parts[0]))
        self._delta_rules.append(self._intern(parts[1]))
        return True

    def _stack_win(self, body: bytes) -> bool:
        tokens = tokenize(body, 11)
        if tokens is None:
            return False
        # strtol's long result lands in an int: keep the low 32 bits (negative ones end up > 4)
        win_type = strtol(tokens[0], 16)[0] & 0xFFFFFFFF
        if win_type > 4:
            return False
        base = loose_hex(tokens[1])
        size = loose_hex(tokens[2])
        values = [loose_hex(t) & 0xFFFFFFFF for t in tokens[3:9]]
        has_program = loose_hex(tokens[9]) & 0xFFFFFFFF
        if has_program:
            program = self._intern(tokens[10])
            allocates_bp = 0
        else:
            program = NO_STRING
            allocates_bp = 1 if loose_hex(tokens[10]) & 0xFFFFFFFF else 0
        values.append(allocates_bp)
        record = len(self._win_records)
        if self._win_maps[win_type].store(base, size, record):
            self._win_stored += 1
            if win_type in (0, 4):
                self._win_records.append((tuple(values), program))
        return True

    def _inline_origin(self, rest: bytes) -> bool:
        tokens = tokenize(rest, 2)
        if tokens is None:
            return False
        origin_id = long_field(tokens[0], 10, 0)
        if origin_id is None:
            return False
        remaining = tokens[1]
        word = remaining.split(b" ", 1)[0]
        old_syntax = all(0x30 <= ch <= 0x39 or (ch == 0x2D and i == 0) for i, ch in enumerate(word))
        if old_syntax:
            split = tokenize(remaining, 2)
            if split is None or long_field(split[0], 10, -1) is None:
                return False
            name = split[1]
        else:
            name = remaining
        if origin_id not in self._origins:
            self._origins[origin_id] = self._intern(name)
        return True

    def _inline(self, rest: bytes) -> bool:
        tokens = tokenize_partial(rest, 512)
        assert tokens is not None
        if len(tokens) < 5:
            return False
        new_syntax = len(tokens) % 2 == 0
        nest = long_field(tokens[0], 10, 0)
        call_line = long_field(tokens[1], 10, 0)
        if nest is None or call_line is None:
            return False
        index = 2
        call_file: int | None = None
        if new_syntax:
            call_file = long_field(tokens[2], 10, -1)
            if call_file is None:
                return False
            index = 3
        origin = long_field(tokens[index], 10, 0)
        if origin is None:
            return False
        ranges: list[tuple[int, int]] = []
        for i in range(index + 1, len(tokens), 2):
            address = hex_field(tokens[i])
            size = hex_field(tokens[i + 1])
            if address is None or size is None:
                return False
            ranges.append((address, size))
        cur = self._cur
        if cur == NO_FUNC:
            return False  # the reference binary dereferences a null function here
        if nest > self._cur_inline_level + 1:
            return True  # dropped by AppendInline, silently
        self._cur_inline_level = nest
        if cur >= 0:
            self._func_inlines.setdefault(cur, []).append((call_line, call_file, origin, ranges))
            self._inline_records += 1
        return True

    # ---- building the sections ----------------------------------------------------------

    def _finish(self) -> tuple[dict[str, array], dict]:
        sections = empty_sections()
        self._finish_functions(sections)
        self._finish_publics(sections)
        self._finish_cfi(sections)
        self._finish_win(sections)
        counts = {
            "functions": len(sections["func_base"]),
            "lines": len(sections["line_base"]),
            "publics": len(sections["public_addr"]),
            "files": len(self._files),
            "inline_origins": len(self._origins),
            "inline_records": self._inline_records,
            "cfi_inits": len(sections["cfi_init_base"]),
            "cfi_deltas": len(sections["cfi_delta_addr"]),
            "stack_win": self._win_stored,
        }
        self.stats.counts = counts
        sections["str_offsets"] = self._str_offsets
        sections["str_data"] = array("B", self._str_data)
        meta = {"module": self.module, "stats": self.stats.as_dict()}
        sections["meta"] = array("B", json.dumps(meta, sort_keys=True).encode())
        return sections, meta

    def _file_sids(self, file_ids: array) -> array:
        files = self._files
        if not file_ids:
            return array("I")
        top = max(file_ids)
        if top < 1 << 22:
            table = [NO_STRING] * (top + 1)
            for file_id, sid in files.items():
                if file_id <= top:
                    table[file_id] = sid
            return array("I", map(table.__getitem__, file_ids))
        return array("I", [files.get(f, NO_STRING) for f in file_ids])

    def _finish_functions(self, sections: dict[str, array]) -> None:
        funcs = self._funcs
        order = funcs.values
        total_lines = len(self._line_base)
        line_lo = self._func_line_lo
        record_count = len(line_lo)

        def line_span(record: int) -> tuple[int, int]:
            hi = line_lo[record + 1] if record + 1 < record_count else total_lines
            return line_lo[record], hi

        in_order = order == list(range(record_count)) and not self._unsorted_line_funcs
        sections["func_base"] = array("Q", funcs.bases)
        sections["func_high"] = array("Q", funcs.highs)
        if in_order:
            sections["func_param"] = self._func_param
            sections["func_name"] = self._func_name
            sections["func_flags"] = self._func_flags
            starts = array("I", line_lo)
            starts.append(total_lines)
            sections["func_line_start"] = starts
            sections["line_base"] = self._line_base
            sections["line_high"] = self._line_high
            sections["line_number"] = self._line_number
            raw_files = self._line_file
        else:
            sections["func_param"] = array("Q", (self._func_param[r] for r in order))
            sections["func_name"] = array("I", (self._func_name[r] for r in order))
            sections["func_flags"] = array("B", (self._func_flags[r] for r in order))
            starts = array("I", [0])
            out_base, out_high = sections["line_base"], sections["line_high"]
            out_number, raw_files = sections["line_number"], array("Q")
            for record in order:
                lo, hi = line_span(record)
                if record in self._unsorted_line_funcs:
                    kept = ExclusiveRanges()
                    for i in range(lo, hi):
                        kept.store(self._line_base[i], self._line_high[i], i)
                    picks = kept.values
                    out_base.extend(self._line_base[i] for i in picks)
                    out_high.extend(self._line_high[i] for i in picks)
                    out_number.extend(self._line_number[i] for i in picks)
                    raw_files.extend(self._line_file[i] for i in picks)
                else:
                    out_base.extend(self._line_base[lo:hi])
                    out_high.extend(self._line_high[lo:hi])
                    out_number.extend(self._line_number[lo:hi])
                    raw_files.extend(self._line_file[lo:hi])
                starts.append(len(out_base))
            sections["func_line_start"] = starts
        sections["line_file"] = self._file_sids(raw_files)
        self._finish_inlines(sections, order)

    def _finish_inlines(self, sections: dict[str, array], order: list[int]) -> None:
        starts = array("I", [0])
        node_base, node_high = sections["inline_base"], sections["inline_high"]
        node_parent, node_record = sections["inline_parent"], sections["inline_record"]
        rec_name, rec_line = sections["inlrec_name"], sections["inlrec_line"]
        rec_file, rec_range_start = sections["inlrec_file"], sections["inlrec_range_start"]
        range_base, range_size = sections["inlrec_range_base"], sections["inlrec_range_size"]
        rec_range_start.append(0)
        for record in order:
            inlines = self._func_inlines.get(record)
            if inlines:
                tree = ContainedRanges(allow_equal=True)
                for call_line, call_file, origin, ranges in inlines:
                    rec = len(rec_name)
                    rec_name.append(self._origins.get(origin, NO_STRING))
                    rec_line.append(call_line)
                    file_sid = NO_STRING if call_file is None else self._files.get(call_file)
                    rec_file.append(NO_STRING if file_sid is None else file_sid)
                    for address, size in ranges:
                        range_base.append(address)
                        range_size.append(size)
                        tree.store(address, size, rec)
                    rec_range_start.append(len(range_base))
                first = len(node_base)
                bases, highs, parents, entries = tree.flatten()
                node_base.extend(bases)
                node_high.extend(highs)
                node_parent.extend(NO_STRING if p < 0 else first + p for p in parents)
                node_record.extend(entries)
            starts.append(len(node_base))
        sections["func_inline_start"] = starts

    def _finish_publics(self, sections: dict[str, array]) -> None:
        publics = self._publics
        addrs = sorted(publics)
        sections["public_addr"] = array("Q", addrs)
        sections["public_param"] = array("Q", (publics[a][0] for a in addrs))
        sections["public_name"] = array("I", (publics[a][1] for a in addrs))
        sections["public_flags"] = array("B", (publics[a][2] for a in addrs))

    def _finish_cfi(self, sections: dict[str, array]) -> None:
        inits = self._cfi_inits
        sections["cfi_init_base"] = array("Q", inits.bases)
        sections["cfi_init_high"] = array("Q", inits.highs)
        sections["cfi_init_rules"] = array("I", inits.values)
        addrs, rules = self._delta_addr, self._delta_rules
        if not all(map(lt, addrs, islice(addrs, 1, None))):
            latest = dict(zip(addrs, rules, strict=True))  # later deltas replace earlier ones
            addrs = array("Q", sorted(latest))
            rules = array("I", map(latest.__getitem__, addrs))
        sections["cfi_delta_addr"] = addrs
        sections["cfi_delta_rules"] = rules

    def _finish_win(self, sections: dict[str, array]) -> None:
        for win_type in (4, 0):
            prefix = f"win{win_type}_"
            bases, highs, parents, entries = self._win_maps[win_type].flatten()
            sections[prefix + "base"] = array("Q", bases)
            sections[prefix + "high"] = array("Q", highs)
            sections[prefix + "parent"] = array("I", (NO_STRING if p < 0 else p for p in parents))
            values = array("Q")
            programs = array("I")
            for entry in entries:
                fields, program = self._win_records[entry]
                values.extend(fields)
                programs.append(program)
            sections[prefix + "values"] = values
            sections[prefix + "program"] = programs
