"""Lay out parsed `.sym` records as the symbol index's sections (tables.py, docs/formats/breakpad.md
§1.4) and write them (layout.py).

Conflict rules that need the whole file are settled here: FUNCs are put in address order with
their line records (overlapping lines of one function keep the first, as Breakpad's RangeMap
does), INLINE records become per-function containment trees, and a later CFI delta at the same
address replaces the earlier one. Sections are the parser's arrays wherever the order already
is right; the largest one computed here (the line records' file names) is produced while it is
written, a chunk at a time.
"""

from __future__ import annotations

import json
from array import array
from itertools import accumulate, compress, islice, repeat
from operator import ge, lt
from typing import BinaryIO

from procsupervisor.workers.stackwalker.symbols.columns import SpillColumn
from procsupervisor.workers.stackwalker.symbols.containers import (
    ContainedRanges,
    ExclusiveRanges,
    range_high,
)
from procsupervisor.workers.stackwalker.symbols.layout import (
    LazySection,
    SectionData,
    write_sections,
)
from procsupervisor.workers.stackwalker.symbols.records import WIN_VALUE_COUNT, ParsedRecords
from procsupervisor.workers.stackwalker.symbols.tables import NO_STRING

_FILE_TABLE_MAX = 1 << 22  # FILE ids below this are resolved through a list, others a dict


def write_index(records: ParsedRecords, out: BinaryIO) -> dict:
    """Write the index of `records` to the seekable `out`; returns its metadata (the MODULE
    line's fields and the parse statistics)."""
    try:
        sections, meta = build_sections(records)
        write_sections(out, sections)
    finally:
        records.close()
    return meta


def build_sections(records: ParsedRecords) -> tuple[dict[str, SectionData], dict]:
    sections: dict[str, SectionData] = {}
    order = _functions(records, sections)
    _inlines(records, sections, order)
    _publics(records, sections)
    _cfi(records, sections)
    _win(records, sections)
    counts = {
        "functions": len(sections["func_base"]),  # type: ignore[arg-type]
        "lines": len(records.line_base),
        "publics": len(sections["public_addr"]),  # type: ignore[arg-type]
        "files": len(records.files),
        "inline_origins": len(records.origins),
        "inline_records": records.inline_records,
        "cfi_inits": len(sections["cfi_init_base"]),  # type: ignore[arg-type]
        "cfi_deltas": len(sections["cfi_delta_addr"]),  # type: ignore[arg-type]
        "stack_win": records.win_stored,
    }
    records.stats.counts = counts
    sections["str_offsets"] = records.str_offsets
    sections["str_data"] = records.str_data
    meta = {"module": records.module, "stats": records.stats.as_dict()}
    sections["meta"] = json.dumps(meta, sort_keys=True).encode()
    return sections, meta


def _functions(records: ParsedRecords, sections: dict[str, SectionData]) -> array:
    """FUNC and line sections; returns the FUNC record numbers in address order."""
    funcs = records.funcs
    order = funcs.values
    record_count = len(order)
    total_lines = len(records.line_base)
    line_lo = records.func_line_lo
    sections["func_base"] = funcs.bases
    sections["func_high"] = funcs.highs
    columns = [records.line_base, records.line_high, records.line_number, records.line_file]
    if not records.unsorted_line_funcs and order == array("I", range(record_count)):
        sections["func_param"] = records.func_param
        sections["func_name"] = records.func_name
        sections["func_flags"] = records.func_flags
        starts = array("I", line_lo)
        starts.append(total_lines)
        sections["func_line_start"] = starts
    else:
        sections["func_param"] = array("Q", map(records.func_param.__getitem__, order))
        sections["func_name"] = array("I", map(records.func_name.__getitem__, order))
        sections["func_flags"] = array("B", map(records.func_flags.__getitem__, order))
        sections["func_line_start"], columns = _lines_in_address_order(records, order)
        records.close()  # the regrouped columns replace the parsed ones
        records.line_base, records.line_high, records.line_number, records.line_file = columns
    for name, column in zip(("line_base", "line_high", "line_number"), columns, strict=False):
        sections[name] = _column_section(column)
    sections["line_file"] = _file_sids(records, columns[3])
    return order


def _lines_in_address_order(
    records: ParsedRecords, order: array
) -> tuple[array, list[SpillColumn]]:
    """The line records regrouped by FUNC address, the lines of a FUNC whose lines overlap
    reduced to the ones Breakpad's RangeMap keeps; and where each FUNC's lines start."""
    sources = [records.line_base, records.line_high, records.line_number, records.line_file]
    out = [SpillColumn(records.spill_dir) for _ in sources]
    line_lo = records.func_line_lo
    record_count = len(line_lo)
    total_lines = len(records.line_base)
    starts = array("I", [0])
    for record in order:
        lo = line_lo[record]
        hi = line_lo[record + 1] if record + 1 < record_count else total_lines
        lines = [source.read(lo, hi) for source in sources]
        if record in records.unsorted_line_funcs:
            kept = ExclusiveRanges()
            for i, (base, high) in enumerate(zip(lines[0], lines[1], strict=True)):
                kept.store(base, high, i)
            lines = [array(part.typecode, map(part.__getitem__, kept.values)) for part in lines]
        for part, target in zip(lines, out, strict=True):
            target.extend(part)
        starts.append(len(out[0]))
    return starts, out


def _column_section(column: SpillColumn) -> LazySection:
    """A spilled column as written: 4-byte values unless one needed 8 (a "Q" section's rule)."""
    if column.typecode == "Q" and max(map(max, column.chunks())) <= 0xFFFFFFFF:
        return LazySection(len(column), 4, lambda: (array("I", c) for c in column.chunks()))
    itemsize = 4 if column.typecode == "I" else 8
    return LazySection(len(column), itemsize, column.chunks)


def _file_sids(records: ParsedRecords, file_ids: SpillColumn) -> LazySection:
    """The FILE name of every line record (NO_STRING for an unknown id), made as written."""
    files = records.files
    top = max((max(chunk) for chunk in file_ids.chunks()), default=0)
    if top < _FILE_TABLE_MAX:
        table = [NO_STRING] * (top + 1)
        for file_id, sid in files.items():
            if file_id <= top:
                table[file_id] = sid

        def resolve(chunk: array) -> array:
            return array("I", map(table.__getitem__, chunk))

    else:

        def resolve(chunk: array) -> array:
            return array("I", map(files.get, chunk, repeat(NO_STRING)))

    return LazySection(len(file_ids), 4, lambda: map(resolve, file_ids.chunks()))


def _inlines(records: ParsedRecords, sections: dict[str, SectionData], order: array) -> None:
    node_base, node_high = array("Q"), array("Q")
    node_parent, node_record = array("I"), array("I")
    rec_name, rec_line, rec_file = array("I"), array("Q"), array("I")
    rec_range_start = array("I", [0])
    range_base, range_size = array("Q"), array("Q")
    total = records.inline_records
    inline_lo = array("I", records.func_inline_lo)
    inline_lo.append(total)
    # positions (in address order) of the FUNCs that have INLINE records, and their records
    has_inlines = map(lt, inline_lo, islice(inline_lo, 1, None))
    if order == array("I", range(len(order))):
        owners = [(record, record) for record in compress(range(len(order)), has_inlines)]
    else:
        flags = list(has_inlines)
        owners = [(pos, record) for pos, record in enumerate(order) if flags[record]]
    node_counts = [0] * len(order)
    range_lo = records.inline_range_lo
    for position, record in owners:
        ranges: list[tuple[int, int, int]] = []  # base, size, record, in arrival order
        for i in range(inline_lo[record], inline_lo[record + 1]):
            rec = len(rec_name)
            rec_name.append(records.origins.get(records.inline_origin[i], NO_STRING))
            rec_line.append(records.inline_line[i])
            rec_file.append(records.files.get(records.inline_file[i], NO_STRING))
            for r in range(range_lo[i], range_lo[i + 1]):
                address, size = records.inline_range_base[r], records.inline_range_size[r]
                range_base.append(address)
                range_size.append(size)
                ranges.append((address, size, rec))
            rec_range_start.append(len(range_base))
        first = len(node_base)
        nodes = _nested_in_order(ranges)
        if nodes is None:
            tree = ContainedRanges(allow_equal=True)
            for address, size, rec in ranges:
                tree.store(address, size, rec)
            nodes = tree.flatten()
        bases, highs, parents, entries = nodes
        node_base.extend(bases)
        node_high.extend(highs)
        if parents is None:
            node_parent.extend(repeat(NO_STRING, len(bases)))
        else:
            node_parent.extend(NO_STRING if p < 0 else first + p for p in parents)
        node_record.extend(entries)
        node_counts[position] = len(bases)
    starts = array("I", accumulate(node_counts, initial=0))
    sections.update(
        func_inline_start=starts,
        inline_base=node_base,
        inline_high=node_high,
        inline_parent=node_parent,
        inline_record=node_record,
        inlrec_name=rec_name,
        inlrec_line=rec_line,
        inlrec_file=rec_file,
        inlrec_range_start=rec_range_start,
        inlrec_range_base=range_base,
        inlrec_range_size=range_size,
    )


def _nested_in_order(
    ranges: list[tuple[int, int, int]],
) -> tuple[list[int], list[int], list[int], list[int]] | None:
    """The containment tree of INLINE ranges that arrive the way dump_syms writes them
    (depth first, each inside the one it is inlined into, siblings in address order), in
    pre-order as ContainedRanges.flatten gives it; None for any other arrival order."""
    bases: list[int] = []
    highs: list[int] = []
    parents: list[int] = []
    entries: list[int] = []
    path: list[int] = []  # the last stored node and its ancestors
    for base, size, entry in ranges:
        high = range_high(base, size)
        if high is None:
            continue  # not stored, as ContainedRanges.store refuses it
        while path and highs[path[-1]] < base:
            path.pop()  # ends before this one starts: this one is not inside it
        # the path's last node is now the innermost candidate parent; with an empty path this
        # range starts after every stored one
        if path and (high > highs[path[-1]] or base < bases[path[-1]]):
            return None
        parents.append(path[-1] if path else -1)
        path.append(len(bases))
        bases.append(base)
        highs.append(high)
        entries.append(entry)
    return bases, highs, parents, entries


def _publics(records: ParsedRecords, sections: dict[str, SectionData]) -> None:
    addrs = records.public_addr
    columns = [addrs, records.public_param, records.public_name, records.public_flags]
    if not _strictly_increasing(addrs):
        order = sorted(range(len(addrs)), key=addrs.__getitem__)  # addresses are unique
        columns = [array(c.typecode, map(c.__getitem__, order)) for c in columns]
    names = ("public_addr", "public_param", "public_name", "public_flags")
    sections.update(zip(names, columns, strict=True))


def _cfi(records: ParsedRecords, sections: dict[str, SectionData]) -> None:
    inits = records.cfi_inits
    sections["cfi_init_base"] = inits.bases
    sections["cfi_init_high"] = inits.highs
    sections["cfi_init_rules"] = inits.values
    addrs, rules = records.delta_addr, records.delta_rules
    if not _strictly_increasing(addrs):
        addrs, rules = _sorted_deltas(addrs, rules)
    sections["cfi_delta_addr"] = addrs
    sections["cfi_delta_rules"] = rules


def _strictly_increasing(values: array) -> bool:
    return all(map(lt, values, islice(values, 1, None)))


def _sorted_deltas(addrs: array, rules: array) -> tuple[array, array]:
    """Deltas in address order, the last one of each address kept.

    A file's deltas are mostly ascending runs (one per STACK CFI INIT) in some other order;
    putting the runs in order of their first address is then enough, and costs memory per run
    rather than per delta. Otherwise every delta is sorted."""
    count = len(addrs)
    run_starts = [0, *compress(range(1, count), map(ge, addrs, islice(addrs, 1, None)))]
    run_ends = [*run_starts[1:], count]
    runs = sorted(zip(run_starts, run_ends, strict=True), key=lambda run: addrs[run[0]])
    by_runs = array(addrs.typecode)
    for lo, hi in runs:
        by_runs.extend(addrs[lo:hi])
    if _strictly_increasing(by_runs):
        ordered_rules = array("I")
        for lo, hi in runs:
            ordered_rules.extend(rules[lo:hi])
        return by_runs, ordered_rules
    del by_runs
    order = sorted(range(count), key=addrs.__getitem__)  # stable: equal addresses in order
    kept = [
        position
        for i, position in enumerate(order)
        if i + 1 == count or addrs[order[i + 1]] != addrs[position]
    ]
    return array("Q", map(addrs.__getitem__, kept)), array("I", map(rules.__getitem__, kept))


def _win(records: ParsedRecords, sections: dict[str, SectionData]) -> None:
    win_values = records.win_values
    for win_type in (4, 0):
        prefix = f"win{win_type}_"
        bases, highs, parents, entries = records.win_maps[win_type].flatten()
        sections[prefix + "base"] = bases
        sections[prefix + "high"] = highs
        if parents is None:
            sections[prefix + "parent"] = array("I", [NO_STRING]) * len(bases)
        else:
            sections[prefix + "parent"] = array(
                "I", (NO_STRING if p < 0 else p for p in parents)
            )
        values = array("I")
        for entry in entries:
            start = entry * WIN_VALUE_COUNT
            values.extend(win_values[start : start + WIN_VALUE_COUNT])
        sections[prefix + "values"] = values
        sections[prefix + "program"] = array("I", map(records.win_program.__getitem__, entries))
