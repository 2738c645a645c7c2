"""Breakpad `.sym` records with BasicSourceLineResolver's exact semantics (docs/formats/breakpad.md
§1).

`ExactParser` reads one record, or one text, at a time into `ParsedRecords` (records.py): the
common, well-formed shapes of each record go through `bytes.split` + `int()` and anything
unusual falls back to the exact C-semantics field parsers (fields.py, cparse.py), so both give
the same answers. The streaming parser (parser.py) hands it whatever its bulk paths (bulk.py)
do not take, and it is the reference those paths must agree with.
"""

from __future__ import annotations

import re
from itertools import repeat
from operator import add, le, sub

from procsupervisor.workers.stackwalker.symbols.containers import range_high
from procsupervisor.workers.stackwalker.symbols.cparse import (
    LONG_MAX,
    U64_MAX,
    strtol,
    tokenize,
    tokenize_partial,
)
from procsupervisor.workers.stackwalker.symbols.fields import (
    HEX_CHARS,
    exact_line_record,
    hex_field,
    long_field,
    loose_hex,
    with_optional_m,
)
from procsupervisor.workers.stackwalker.symbols.records import KEPT_WIN_TYPES, ParsedRecords
from procsupervisor.workers.stackwalker.symbols.tables import NO_STRING

MAX_ERRORS = 100  # Breakpad stops after the 101st counted error

_LINE_RECORD_CHARS = HEX_CHARS + b" "
# Lines that may be keyword records; every other line is a line record.
_KEYWORD_LINE = re.compile(rb"^[FSPMI].*$", re.MULTILINE)
# A run of plain line records. Digit counts are capped so that every value is far below the
# ULLONG_MAX / LONG_MAX rejections and no range can wrap; longer numbers take the exact path.
_LINE_RECORD = rb"[0-9a-fA-F]{1,15} [0-9a-fA-F]{1,15} [0-9]{1,18} [0-9]{1,18}"
_LINE_BLOCK = re.compile(rb"(?:%s\n)*%s" % (_LINE_RECORD, _LINE_RECORD))

NO_FUNC = -1  # no current function: line records are errors
DROPPED_FUNC = -2  # a FUNC that parsed but was not stored: its records are parsed and lost

FuncFields = tuple[int, int, int, bytes, bool]  # base, size, parameter size, name, multiple


class Bail(Exception):
    """Raised after the 101st counted error: parsing stops there."""


def parse_func_fields(rest: bytes) -> FuncFields | None:
    """A FUNC line's fields after "FUNC ", or None when Breakpad counts the line an error."""
    found = with_optional_m(rest, 5)
    if found is None:
        return None
    multiple, tokens = found
    base = hex_field(tokens[0])
    size = hex_field(tokens[1])
    param = long_field(tokens[2], 16, 0)
    if base is None or size is None or param is None:
        return None
    return base, size, param, tokens[3], multiple


class ExactParser:
    """Parser state (the current FUNC) and every record kind, one at a time."""

    def __init__(self, spill_dir: str | None = None) -> None:
        """`spill_dir`: where large line-record columns wait (columns.py); None for the
        system's temporary directory."""
        self.records = ParsedRecords(spill_dir=spill_dir)
        self.stats = self.records.stats
        # the FUNC that line and INLINE records belong to: a record number, NO_FUNC or
        # DROPPED_FUNC; its highest line address so far; its current INLINE nesting level
        self._cur = NO_FUNC
        self._cur_last_high = -1
        self._cur_inline_level = 0

    def _error(self) -> None:
        self.stats.errors += 1
        if self.stats.errors > MAX_ERRORS:
            raise Bail

    # ---- the per-line loop --------------------------------------------------------------

    def _exact_feed(self, chunk: bytes) -> None:
        """Any text (lines ending in LF): keyword lines one by one, the runs of line records
        between them through `_line_block`."""
        pos = 0
        keyword_line = self._keyword_line
        records = self.records
        string_ids = records.string_ids
        intern = records.intern
        delta_addr = records.delta_addr
        delta_rules = records.delta_rules
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
                    and not address.translate(None, HEX_CHARS)
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
        records = self.records
        records.line_base.extend(bases)
        records.line_high.extend(map(sub, ends, repeat(1)))
        records.line_number.extend(numbers)
        records.line_file.extend(file_ids)
        self._cur_last_high = ends[-1] - 1

    def _line_records(self, lines: list[bytes]) -> None:
        """Line records one at a time, with every rule (conflicts, errors)."""
        record_chars = _LINE_RECORD_CHARS
        records = self.records
        line_base = records.line_base
        line_high = records.line_high
        line_number = records.line_number
        line_file = records.line_file
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
                    parsed = exact_line_record(line)
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
                parsed = exact_line_record(line)
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
                records.unsorted_line_funcs.add(cur)
            if high > last_high:
                last_high = high
            line_base.append(base)
            line_high.append(high)
            line_number.append(number)
            line_file.append(file_id)
        self._cur_last_high = last_high

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
            if self.records.module is None:
                self._module(line[7:])
        elif line.startswith(b"INFO "):
            pass
        else:
            return False
        return True

    # ---- records ------------------------------------------------------------------------

    def _func(self, rest: bytes) -> None:
        parsed = parse_func_fields(rest)
        if parsed is None:
            self._cur = NO_FUNC
            self._error()
            return
        base, size, param, name, multiple = parsed
        self._cur_last_high = -1
        self._cur_inline_level = 0
        high = range_high(base, size)
        records = self.records
        record = len(records.func_param)
        if high is None or not records.funcs.store(base, high, record):
            self._cur = DROPPED_FUNC
            return
        self._cur = record
        records.func_param.append(param)
        records.func_name.append(records.add_string(name))
        records.func_flags.append(1 if multiple else 0)
        records.func_line_lo.append(len(records.line_base))
        records.func_inline_lo.append(len(records.inline_line))

    def _public(self, rest: bytes) -> bool:
        found = with_optional_m(rest, 4)
        if found is None:
            return False
        multiple, tokens = found
        address = hex_field(tokens[0])
        param = long_field(tokens[1], 16, 0)
        if address is None or param is None:
            return False
        if address == 0:
            return True
        return self.records.add_public(address, param, tokens[2], multiple)

    def _file(self, rest: bytes) -> bool:
        tokens = tokenize(rest, 2)
        if tokens is None:
            return False
        file_id = long_field(tokens[0], 10, 0)
        if file_id is None:
            return False
        files = self.records.files
        if file_id not in files:
            files[file_id] = self.records.intern(tokens[1])
        return True

    def _module(self, rest: bytes) -> None:
        tokens = tokenize(rest, 4)
        if tokens is not None:
            os_name, arch, debug_id, name = (t.decode("utf-8", "replace") for t in tokens)
            self.records.module = {"os": os_name, "arch": arch, "debug_id": debug_id, "name": name}

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
        if len(init) != 3 or not init[2] or init[0].translate(None, HEX_CHARS):
            return False
        if not init[0] or not init[1] or init[1].translate(None, HEX_CHARS):
            return False
        base = int(init[0], 16)
        high = range_high(base, int(init[1], 16))
        if base <= U64_MAX and high is not None:
            self.records.cfi_inits.store(base, high, self.records.intern(init[2]))
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
                self.records.cfi_inits.store(base, high, self.records.intern(tokens[3]))
            return True
        parts = body.split(b" ", 1)
        if len(parts) != 2 or not parts[0] or not parts[1]:
            found = tokenize(body, 2)
            if found is None:
                return False
            parts = found
        records = self.records
        records.delta_addr.append(loose_hex(parts[0]))
        records.delta_rules.append(records.intern(parts[1]))
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
            program = self.records.intern(tokens[10])
            allocates_bp = 0
        else:
            program = NO_STRING
            allocates_bp = 1 if loose_hex(tokens[10]) & 0xFFFFFFFF else 0
        values.append(allocates_bp)
        self._store_win(win_type, base, size, values, program)
        return True

    def _store_win(
        self, win_type: int, base: int, size: int, values: list[int], program: int
    ) -> None:
        records = self.records
        kept = win_type in KEPT_WIN_TYPES
        # types 0 and 4 point at their values; the entries of the others are never read
        entry = len(records.win_program) if kept else 0
        if records.win_maps[win_type].store(base, size, entry):
            records.win_stored += 1
            if kept:
                records.win_values.extend(values)
                records.win_program.append(program)

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
        origins = self.records.origins
        if origin_id not in origins:
            origins[origin_id] = self.records.intern(name)
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
            records = self.records
            records.inline_line.append(call_line)
            records.inline_file.append(-1 if call_file is None else call_file)
            records.inline_origin.append(origin)
            for address, size in ranges:
                records.inline_range_base.append(address)
                records.inline_range_size.append(size)
            records.inline_range_lo.append(len(records.inline_range_base))
        return True
