"""Lay out parsed `.sym` records as the symbol index's sections (tables.py, docs/formats/breakpad.md
§1.4).

Conflict rules that need the whole file are settled here: FUNCs are put in address order with
their line records (overlapping lines of one function keep the first, as Breakpad's RangeMap
does), INLINE records become per-function containment trees, and a later CFI delta at the same
address replaces the earlier one.
"""

from __future__ import annotations

import json
from array import array
from itertools import islice
from operator import lt

from procsupervisor.workers.stackwalker.symbols.containers import (
    ContainedRanges,
    ExclusiveRanges,
)
from procsupervisor.workers.stackwalker.symbols.records import ParsedRecords
from procsupervisor.workers.stackwalker.symbols.tables import NO_STRING, empty_sections


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
