"""What parsing a `.sym` file keeps: its records in flat arrays, in record order.

The parser (parser.py) fills a `ParsedRecords`; the builder (builder.py) lays it out as the
index sections (tables.py). Records are kept in typed arrays, not per-record objects, so a
large file costs a few bytes per record.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from functools import partial

from procsupervisor.workers.stackwalker.symbols.containers import ContainedRanges, ExclusiveRanges

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
