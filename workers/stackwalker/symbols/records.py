"""What parsing a `.sym` file keeps: its records in flat typed arrays, in record order.

The parser (parser.py, bulk.py) fills a `ParsedRecords`; the builder (builder.py) lays it out as
the index sections (tables.py). Nothing here is an object per record, and the line records,
most of a large file, wait in temporary files (columns.py): parsing a file takes less memory
than the file's size (docs/architecture.md §9).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from functools import partial
from itertools import accumulate

from procsupervisor.workers.stackwalker.symbols.columns import SpillColumn
from procsupervisor.workers.stackwalker.symbols.containers import ContainedRanges, ExclusiveRanges

# The STACK WIN types whose fields are kept (FrameData and FPO); the others only take part in
# conflicts.
KEPT_WIN_TYPES = (4, 0)
WIN_VALUE_COUNT = 7


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
    func_line_lo: array = field(default_factory=partial(array, "I"))  # a FUNC's first line
    func_inline_lo: array = field(default_factory=partial(array, "I"))  # its first INLINE
    unsorted_line_funcs: set[int] = field(default_factory=set)  # FUNCs with overlapping lines
    # line records of stored FUNCs, grouped by function in record order; line_file holds the
    # FILE ids, resolved to names when the index is laid out. Large ones go to temporary files
    # in spill_dir (None: the system's temporary directory).
    spill_dir: str | None = None
    line_base: SpillColumn = field(init=False)
    line_high: SpillColumn = field(init=False)
    line_number: SpillColumn = field(init=False)
    line_file: SpillColumn = field(init=False)
    # INLINE records of stored FUNCs in record order (a FUNC's are contiguous); call file -1
    # for the old syntax; the record's ranges are [range_lo[i], range_lo[i + 1])
    inline_line: array = field(default_factory=partial(array, "Q"))
    inline_file: array = field(default_factory=partial(array, "q"))
    inline_origin: array = field(default_factory=partial(array, "q"))
    inline_range_lo: array = field(default_factory=lambda: array("I", [0]))
    inline_range_base: array = field(default_factory=partial(array, "Q"))
    inline_range_size: array = field(default_factory=partial(array, "Q"))
    # PUBLIC records in arrival order (addresses unique); `public_seen` is built only once
    # an address arrives out of order, to find duplicates
    public_addr: array = field(default_factory=partial(array, "Q"))
    public_param: array = field(default_factory=partial(array, "Q"))
    public_name: array = field(default_factory=partial(array, "I"))
    public_flags: array = field(default_factory=partial(array, "B"))
    public_seen: set[int] | None = None
    cfi_inits: ExclusiveRanges = field(default_factory=ExclusiveRanges)
    # in record order; a later delta at the same address replaces the earlier one
    delta_addr: array = field(default_factory=partial(array, "Q"))
    delta_rules: array = field(default_factory=partial(array, "I"))
    # STACK WIN by type; types 0 and 4 keep WIN_VALUE_COUNT values and a program per record,
    # the stored entry being the record's position in win_program
    win_maps: dict[int, ContainedRanges] = field(
        default_factory=lambda: {t: ContainedRanges(allow_equal=False) for t in range(5)}
    )
    win_values: array = field(default_factory=partial(array, "I"))
    win_program: array = field(default_factory=partial(array, "I"))
    win_stored: int = 0
    win_other_entries: int = 0  # entry numbers of the types 1-3 ranges (never read)

    def __post_init__(self) -> None:
        self.line_base = SpillColumn(self.spill_dir)
        self.line_high = SpillColumn(self.spill_dir)
        self.line_number = SpillColumn(self.spill_dir)
        self.line_file = SpillColumn(self.spill_dir)

    def close(self) -> None:
        """Drop the temporary files of the line records."""
        for column in (self.line_base, self.line_high, self.line_number, self.line_file):
            column.close()

    def add_string(self, text: bytes) -> int:
        sid = len(self.str_offsets) - 1
        self.str_data += text
        self.str_offsets.append(len(self.str_data))
        return sid

    def add_strings(self, texts: list[bytes]) -> int:
        """Append names in order; returns the id of the first."""
        first = len(self.str_offsets) - 1
        self.str_offsets.extend(accumulate(map(len, texts), initial=len(self.str_data)))
        del self.str_offsets[first + 1]  # accumulate repeats the starting offset
        self.str_data += b"".join(texts)
        return first

    def intern(self, text: bytes) -> int:
        sid = self.string_ids.get(text)
        if sid is None:
            sid = self.add_string(text)
            self.string_ids[text] = sid
        return sid

    @property
    def inline_records(self) -> int:
        return len(self.inline_line)

    def add_public(self, address: int, param: int, name: bytes, multiple: bool) -> bool:
        """Store a PUBLIC unless its address is taken (then False: a counted error)."""
        addrs = self.public_addr
        seen = self.public_seen
        if seen is None and addrs and address <= addrs[-1]:
            # the first address out of order; until now each one was above all before it
            seen = self.public_seen = set(addrs)
        if seen is not None:
            if address in seen:
                return False
            seen.add(address)
        addrs.append(address)
        self.public_param.append(param)
        self.public_name.append(self.add_string(name))
        self.public_flags.append(1 if multiple else 0)
        return True
