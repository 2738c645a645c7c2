"""The `.sym` parser and index builder as they were before the streaming build (git 1740ab7:
workers/stackwalker/symbols/{containers,records,builder,parser}.py, joined into one module).

Kept only here, as the reference the streaming build must match byte for byte
(tests/test_symbols_equality.py). Number fields, the section table and the on-disk layout are
shared with the package, which did not change them.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field
from functools import partial
from itertools import islice, repeat
from operator import add, le, lt, sub

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
from procsupervisor.workers.stackwalker.symbols.tables import NO_STRING, SECTIONS, empty_sections

# ---- containers.py ------------------------------------------------------------------------------


def range_high(base: int, size: int) -> int | None:
    """Inclusive end of [base, base+size), or None when Breakpad rejects it (size 0, overflow)."""
    if size <= 0:
        return None
    high = base + size - 1
    return None if high > U64_MAX else high


class ExclusiveRanges:
    """Non-overlapping ranges; insertion in arrival order, first one wins on overlap."""

    def __init__(self) -> None:
        self.bases: list[int] = []
        self.highs: list[int] = []
        self.values: list[int] = []

    def store(self, base: int, high: int, value: int) -> bool:
        highs = self.highs
        if not highs or base > highs[-1]:
            self.bases.append(base)
            highs.append(high)
            self.values.append(value)
            return True
        i = bisect_left(highs, base)
        if i < len(highs) and self.bases[i] <= high:
            return False
        self.bases.insert(i, base)
        highs.insert(i, high)
        self.values.insert(i, value)
        return True


@dataclass
class _Node:
    base: int
    high: int
    entry: int
    children: ContainedRanges | None = None


@dataclass
class ContainedRanges:
    """Children keyed by their inclusive high address (std::map semantics via sorted lists)."""

    allow_equal: bool
    keys: list[int] = field(default_factory=list)
    nodes: list[_Node] = field(default_factory=list)

    def store(self, base: int, size: int, entry: int) -> bool:
        high = range_high(base, size)
        if high is None:
            return False
        return self._store(base, high, entry)

    def _store(self, base: int, high: int, entry: int) -> bool:
        keys = self.keys
        nodes = self.nodes
        count = len(keys)
        # Fast path for the usual sorted input: strictly after every existing child.
        if not count or base > keys[-1]:
            keys.append(high)
            nodes.append(_Node(base, high, entry))
            return True
        i_base = bisect_left(keys, base)
        i_high = bisect_left(keys, high)
        if i_base == i_high and i_base != count and base >= nodes[i_base].base:
            child = nodes[i_base]
            if not self.allow_equal and child.base == base and child.high == high:
                return False
            if child.children is None:
                child.children = ContainedRanges(self.allow_equal)
            return child.children._store(base, high, entry)
        contains_high = i_high != count and high >= nodes[i_high].base
        if (i_base != count and base > nodes[i_base].base) or (
            contains_high and high < keys[i_high]
        ):
            return False
        if contains_high:
            i_high += 1
        new_node = _Node(base, high, entry)
        if i_base != i_high:
            new_node.children = ContainedRanges(
                self.allow_equal, keys[i_base:i_high], nodes[i_base:i_high]
            )
            del keys[i_base:i_high]
            del nodes[i_base:i_high]
        keys.insert(i_base, high)
        nodes.insert(i_base, new_node)
        return True

    def flatten(self) -> tuple[list[int], list[int], list[int], list[int]]:
        """Pre-order (bases, highs, parent positions, entries); parent -1 for top level.

        Children are disjoint and ordered, so pre-order is sorted by base and a parent always
        precedes its children: the lookup bisects on bases then walks up parents."""
        bases: list[int] = []
        highs: list[int] = []
        parents: list[int] = []
        entries: list[int] = []
        stack: list[tuple[ContainedRanges, int, int]] = [(self, 0, -1)]
        while stack:
            level, pos, parent = stack.pop()
            if pos >= len(level.nodes):
                continue
            stack.append((level, pos + 1, parent))
            node = level.nodes[pos]
            index = len(bases)
            bases.append(node.base)
            highs.append(node.high)
            parents.append(parent)
            entries.append(node.entry)
            if node.children is not None:
                stack.append((node.children, 0, index))
        return bases, highs, parents, entries


# ---- records.py ------------------------------------------------------------------------------


# (call line, call file id or None for the old syntax, origin id, [(address, size), ...])
InlineRecord = tuple[int, int | None, int, list[tuple[int, int]]]


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


@dataclass(eq=False)
class ParsedRecords:
    stats: ParseStats = field(default_factory=ParseStats)
    module: dict[str, str] | None = None  # the first MODULE line's fields
    # The string table. Strings that repeat (CFI rules, files, ...) are deduplicated through
    # string_ids; function and public names go straight into the table.
    string_ids: dict[bytes, int] = field(default_factory=dict)
    str_data: bytearray = field(default_factory=bytearray)
    str_offsets: array = field(default_factory=lambda: array("Q", [0]))
    files: dict[int, int] = field(default_factory=dict)  # FILE id -> string id
    origins: dict[int, int] = field(default_factory=dict)  # INLINE_ORIGIN id -> string id
    # FUNC records that were stored, indexed by record number
    funcs: ExclusiveRanges = field(default_factory=ExclusiveRanges)
    func_param: array = field(default_factory=partial(array, "Q"))
    func_name: array = field(default_factory=partial(array, "I"))
    func_flags: array = field(default_factory=partial(array, "B"))
    func_line_lo: array = field(default_factory=partial(array, "Q"))  # a FUNC's first line
    unsorted_line_funcs: set[int] = field(default_factory=set)  # FUNCs with overlapping lines
    func_inlines: dict[int, list[InlineRecord]] = field(default_factory=dict)
    # line records of stored FUNCs, grouped by function in record order
    line_base: array = field(default_factory=partial(array, "Q"))
    line_high: array = field(default_factory=partial(array, "Q"))
    line_number: array = field(default_factory=partial(array, "Q"))
    line_file: array = field(default_factory=partial(array, "Q"))
    publics: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # param, name, flags
    cfi_inits: ExclusiveRanges = field(default_factory=ExclusiveRanges)
    # in record order; a later delta at the same address replaces the earlier one
    delta_addr: array = field(default_factory=partial(array, "Q"))
    delta_rules: array = field(default_factory=partial(array, "I"))
    # STACK WIN by type; only types 0 (FPO) and 4 (FrameData) keep their fields
    win_maps: dict[int, ContainedRanges] = field(
        default_factory=lambda: {t: ContainedRanges(allow_equal=False) for t in range(5)}
    )
    win_records: list[tuple[tuple[int, ...], int]] = field(default_factory=list)
    win_stored: int = 0
    inline_records: int = 0

    def add_string(self, text: bytes) -> int:
        sid = len(self.str_offsets) - 1
        self.str_data += text
        self.str_offsets.append(len(self.str_data))
        return sid

    def intern(self, text: bytes) -> int:
        sid = self.string_ids.get(text)
        if sid is None:
            sid = self.add_string(text)
            self.string_ids[text] = sid
        return sid


# ---- builder.py ------------------------------------------------------------------------------


def build_sections(records: ParsedRecords) -> tuple[dict[str, array], dict]:
    """The index sections of `records`, and the metadata stored with them (the MODULE line's
    fields and the parse statistics)."""
    sections = empty_sections()
    _functions(records, sections)
    _publics(records, sections)
    _cfi(records, sections)
    _win(records, sections)
    counts = {
        "functions": len(sections["func_base"]),
        "lines": len(sections["line_base"]),
        "publics": len(sections["public_addr"]),
        "files": len(records.files),
        "inline_origins": len(records.origins),
        "inline_records": records.inline_records,
        "cfi_inits": len(sections["cfi_init_base"]),
        "cfi_deltas": len(sections["cfi_delta_addr"]),
        "stack_win": records.win_stored,
    }
    records.stats.counts = counts
    sections["str_offsets"] = records.str_offsets
    sections["str_data"] = array("B", records.str_data)
    meta = {"module": records.module, "stats": records.stats.as_dict()}
    sections["meta"] = array("B", json.dumps(meta, sort_keys=True).encode())
    return sections, meta


def _file_sids(records: ParsedRecords, file_ids: array) -> array:
    files = records.files
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


def _functions(records: ParsedRecords, sections: dict[str, array]) -> None:
    funcs = records.funcs
    order = funcs.values
    total_lines = len(records.line_base)
    line_lo = records.func_line_lo
    record_count = len(line_lo)

    def line_span(record: int) -> tuple[int, int]:
        hi = line_lo[record + 1] if record + 1 < record_count else total_lines
        return line_lo[record], hi

    in_order = order == list(range(record_count)) and not records.unsorted_line_funcs
    sections["func_base"] = array("Q", funcs.bases)
    sections["func_high"] = array("Q", funcs.highs)
    if in_order:
        sections["func_param"] = records.func_param
        sections["func_name"] = records.func_name
        sections["func_flags"] = records.func_flags
        starts = array("I", line_lo)
        starts.append(total_lines)
        sections["func_line_start"] = starts
        sections["line_base"] = records.line_base
        sections["line_high"] = records.line_high
        sections["line_number"] = records.line_number
        raw_files = records.line_file
    else:
        sections["func_param"] = array("Q", (records.func_param[r] for r in order))
        sections["func_name"] = array("I", (records.func_name[r] for r in order))
        sections["func_flags"] = array("B", (records.func_flags[r] for r in order))
        starts = array("I", [0])
        out_base, out_high = sections["line_base"], sections["line_high"]
        out_number, raw_files = sections["line_number"], array("Q")
        for record in order:
            lo, hi = line_span(record)
            if record in records.unsorted_line_funcs:
                kept = ExclusiveRanges()
                for i in range(lo, hi):
                    kept.store(records.line_base[i], records.line_high[i], i)
                picks = kept.values
                out_base.extend(records.line_base[i] for i in picks)
                out_high.extend(records.line_high[i] for i in picks)
                out_number.extend(records.line_number[i] for i in picks)
                raw_files.extend(records.line_file[i] for i in picks)
            else:
                out_base.extend(records.line_base[lo:hi])
                out_high.extend(records.line_high[lo:hi])
                out_number.extend(records.line_number[lo:hi])
                raw_files.extend(records.line_file[lo:hi])
            starts.append(len(out_base))
        sections["func_line_start"] = starts
    sections["line_file"] = _file_sids(records, raw_files)
    _inlines(records, sections, order)


def _inlines(records: ParsedRecords, sections: dict[str, array], order: list[int]) -> None:
    starts = array("I", [0])
    node_base, node_high = sections["inline_base"], sections["inline_high"]
    node_parent, node_record = sections["inline_parent"], sections["inline_record"]
    rec_name, rec_line = sections["inlrec_name"], sections["inlrec_line"]
    rec_file, rec_range_start = sections["inlrec_file"], sections["inlrec_range_start"]
    range_base, range_size = sections["inlrec_range_base"], sections["inlrec_range_size"]
    rec_range_start.append(0)
    for record in order:
        inlines = records.func_inlines.get(record)
        if inlines:
            tree = ContainedRanges(allow_equal=True)
            for call_line, call_file, origin, ranges in inlines:
                rec = len(rec_name)
                rec_name.append(records.origins.get(origin, NO_STRING))
                rec_line.append(call_line)
                file_sid = NO_STRING if call_file is None else records.files.get(call_file)
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


def _publics(records: ParsedRecords, sections: dict[str, array]) -> None:
    publics = records.publics
    addrs = sorted(publics)
    sections["public_addr"] = array("Q", addrs)
    sections["public_param"] = array("Q", (publics[a][0] for a in addrs))
    sections["public_name"] = array("I", (publics[a][1] for a in addrs))
    sections["public_flags"] = array("B", (publics[a][2] for a in addrs))


def _cfi(records: ParsedRecords, sections: dict[str, array]) -> None:
    inits = records.cfi_inits
    sections["cfi_init_base"] = array("Q", inits.bases)
    sections["cfi_init_high"] = array("Q", inits.highs)
    sections["cfi_init_rules"] = array("I", inits.values)
    addrs, rules = records.delta_addr, records.delta_rules
    if not all(map(lt, addrs, islice(addrs, 1, None))):
        latest = dict(zip(addrs, rules, strict=True))  # later deltas replace earlier ones
        addrs = array("Q", sorted(latest))
        rules = array("I", map(latest.__getitem__, addrs))
    sections["cfi_delta_addr"] = addrs
    sections["cfi_delta_rules"] = rules


def _win(records: ParsedRecords, sections: dict[str, array]) -> None:
    for win_type in (4, 0):
        prefix = f"win{win_type}_"
        bases, highs, parents, entries = records.win_maps[win_type].flatten()
        sections[prefix + "base"] = array("Q", bases)
        sections[prefix + "high"] = array("Q", highs)
        sections[prefix + "parent"] = array("I", (NO_STRING if p < 0 else p for p in parents))
        values = array("Q")
        programs = array("I")
        for entry in entries:
            fields, program = records.win_records[entry]
            values.extend(fields)
            programs.append(program)
        sections[prefix + "values"] = values
        sections[prefix + "program"] = programs


# ---- parser.py ------------------------------------------------------------------------------


MAX_ERRORS = 100  # Breakpad stops after the 101st counted error
CHUNK_BYTES = 8 << 20

_LINE_RECORD_CHARS = HEX_CHARS + b" "
# Lines that may be keyword records; every other line is a line record.
_KEYWORD_LINE = re.compile(rb"^[FSPMI].*$", re.MULTILINE)
# A run of plain line records. Digit counts are capped so that every value is far below the
# ULLONG_MAX / LONG_MAX rejections and no range can wrap; longer numbers take the exact path.
_LINE_RECORD = rb"[0-9a-fA-F]{1,15} [0-9a-fA-F]{1,15} [0-9]{1,18} [0-9]{1,18}"
_LINE_BLOCK = re.compile(rb"(?:%s\n)*%s" % (_LINE_RECORD, _LINE_RECORD))

NO_FUNC = -1  # no current function: line records are errors
DROPPED_FUNC = -2  # a FUNC that parsed but was not stored: its records are parsed and lost


def reference_index(data: bytes) -> bytes:
    """The serialized index the old parser and builder made of `data`."""
    sections, _meta = SymParser().parse(data)
    return bytes(serialize_sections(sections))


class _Bail(Exception):
    """Raised internally after the 101st counted error."""


class SymParser:
    """One-shot parser: `SymParser().parse(data)` -> (index sections, metadata dict)."""

    def __init__(self) -> None:
        self.records = ParsedRecords()
        self.stats = self.records.stats
        # the FUNC that line and INLINE records belong to: a record number, NO_FUNC or
        # DROPPED_FUNC; its highest line address so far; its current INLINE nesting level
        self._cur = NO_FUNC
        self._cur_last_high = -1
        self._cur_inline_level = 0

    # ---- driver -------------------------------------------------------------------------

    def parse(self, data: bytes) -> tuple[dict[str, array], dict]:
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
        return build_sections(self.records)

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

    # ---- the per-line loop --------------------------------------------------------------

    def _feed(self, chunk: bytes) -> None:
        """Keyword lines one by one; the runs of line records between them in bulk."""
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
        found = with_optional_m(rest, 5)
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
        publics = self.records.publics
        if address in publics:
            return False
        publics[address] = (param, self.records.add_string(tokens[2]), 1 if multiple else 0)
        return True

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
        records = self.records
        record = len(records.win_records)
        if records.win_maps[win_type].store(base, size, record):
            records.win_stored += 1
            if win_type in (0, 4):
                records.win_records.append((tuple(values), program))
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
            records.func_inlines.setdefault(cur, []).append((call_line, call_file, origin, ranges))
            records.inline_records += 1
        return True


# ---- layout.py (the serializer) ---------------------------------------------------------------

MAGIC = b"PSSYMIX\x00"
FORMAT_VERSION = 2
_HEADER = struct.Struct("<8sIIIIQ")
_TABLE_ENTRY = struct.Struct("<QQQ")  # offset, byte length, element size
_TYPECODE_BY_SIZE = {1: "B", 4: "I", 8: "Q"}
# A "Q" section whose values all fit in 32 bits is stored with 4-byte elements: module-relative
# addresses, sizes and line numbers nearly always fit, which makes the index about half as big.
_ALLOWED_SIZES = {"B": (1,), "I": (4,), "Q": (4, 8)}
_U32_MAX = 0xFFFFFFFF


def _align8(n: int) -> int:
    return (n + 7) & ~7


def serialize_sections(sections: dict[str, array]) -> bytearray:
    """Lay the sections out in the on-disk format (tables.SECTIONS order)."""
    count = len(SECTIONS)
    table_end = _HEADER.size + count * _TABLE_ENTRY.size
    placements: list[tuple[int, int]] = []
    pos = _align8(table_end)
    stored: list[array] = []
    for name, code in SECTIONS:
        values = sections[name]
        if values.typecode != code:
            raise ValueError(f"section {name} has typecode {values.typecode}, expected {code}")
        if code == "Q" and (not values or max(values) <= _U32_MAX):
            values = array("I", values)
        stored.append(values)
        nbytes = len(values) * values.itemsize
        placements.append((pos, nbytes))
        pos = _align8(pos + nbytes)
    out = bytearray(pos)
    for i, (values, (offset, nbytes)) in enumerate(zip(stored, placements, strict=True)):
        if nbytes:
            out[offset : offset + nbytes] = memoryview(values).cast("B")
        table_pos = _HEADER.size + i * _TABLE_ENTRY.size
        _TABLE_ENTRY.pack_into(out, table_pos, offset, nbytes, values.itemsize)
    crc = zlib.crc32(memoryview(out)[_HEADER.size :])
    _HEADER.pack_into(out, 0, MAGIC, FORMAT_VERSION, count, crc, 0, pos - _HEADER.size)
    return out
