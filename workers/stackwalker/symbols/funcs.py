"""FUNC batches (FUNC lines with their line and INLINE records) checked, split up and
converted in bulk, changing nothing: what the parser commits, in its own process or from a
helper process's work (converter.py). Anything these cannot vouch for makes the batch None,
for the exact parser.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, compress, islice, repeat
from operator import add, and_, gt, itemgetter, sub

from procsupervisor.workers.stackwalker.symbols.cparse import LONG_MAX, U64_MAX
from procsupervisor.workers.stackwalker.symbols.exact import FuncFields, parse_func_fields
from procsupervisor.workers.stackwalker.symbols.fields import HEX_CHARS
from procsupervisor.workers.stackwalker.symbols.numbers import (
    LineColumns,
    Unclean,
    hex_column,
    line_columns,
    record_columns,
)

_FUNC_LINE = re.compile(rb"\nFUNC ([^\n]*)(?=\n|$)")
_INLINE_TEXT_CHARS = HEX_CHARS + b" \n"


@dataclass
class PreparedFuncs:
    """A batch of FUNCs with their line records and INLINE records, checked and converted
    (by the parser, or by its helper process), waiting to be committed."""

    bases: Sequence[int]
    highs: Sequence[int]
    params: Sequence[int]
    names: list[bytes]
    flags: bytes
    inlines: dict[int, list[bytes]]  # FUNC position -> its INLINE records after "INLINE "
    parsed_inlines: ParsedInlines | None  # the same, parsed, when all are plain
    counts: list[int]  # line records per FUNC
    columns: LineColumns


def prepared_funcs(heads: list[bytes], bodies: list[bytes]) -> PreparedFuncs | None:
    """FUNC lines without "FUNC ", each with the text after it up to the next FUNC line
    ("" or LF-led lines), checked, split up and converted; None unless every FUNC will be
    stored and every line record is plain (then the batch goes to the exact parser). Changes
    nothing: a helper process runs this as well as the parser. Whether the batch starts above
    the FUNCs before it is checked when it is committed."""
    try:
        bases, highs, params, names, flags = _func_heads(heads, -1)
        inlines: dict[int, list[bytes]] = {}
        lines = bodies
        joined = b"".join(bodies)
        if b"\nINLINE " in joined:
            lines = list(bodies)
            marked = map(bytes.__contains__, lines, repeat(b"\nINLINE "))
            for k in compress(range(len(lines)), marked):
                inlines[k], lines[k] = _take_inlines(lines[k])
            joined = b"".join(lines)
        counts = list(map(bytes.count, lines, repeat(b"\n")))
        columns = line_columns(joined[1:], sum(counts))
    except Unclean:
        return None
    parsed_inlines = _parsed_inlines(inlines, len(heads)) if inlines else None
    return PreparedFuncs(
        bases, highs, params, names, flags, inlines, parsed_inlines, counts, columns
    )


def split_funcs(text: bytes) -> list[bytes]:
    """[text before the first FUNC line, head, body, head, body, ...]: heads are FUNC lines
    without "FUNC ", bodies the LF-led lines up to the next FUNC line."""
    return _FUNC_LINE.split(text)


@dataclass
class ParsedInlines:
    per_func: list[int]  # INLINE records of each FUNC of the batch
    numbers: list[int]  # nest level, call line, call file, origin of each record
    range_counts: list[int]
    ranges: list[int]  # address, size, ... of every record in turn


def _parsed_inlines(inlines: dict[int, list[bytes]], count: int) -> ParsedInlines | None:
    """The INLINE records of a batch when every one has the new syntax with plain numbers
    and none is dropped for its nesting (each at most one level below the one before it in
    its FUNC, level 0 at the FUNC's start); None otherwise (they go one by one)."""
    texts = [text for group in inlines.values() for text in group]
    joined = b"\n".join(texts)
    if (
        joined.translate(None, _INLINE_TEXT_CHARS)
        or b"  " in joined
        or b"\n " in joined
        or b" \n" in joined
        or joined[:1] == b" "
        or joined[-1:] == b" "
    ):
        return None
    fields = list(map(bytes.split, texts))
    token_counts = list(map(len, fields))
    if min(token_counts) < 6 or max(token_counts) >= 512 or sum(map(and_, token_counts, repeat(1))):
        return None
    try:
        numbers = list(map(int, chain.from_iterable(map(itemgetter(slice(0, 4)), fields))))
        ranges = list(
            map(int, chain.from_iterable(map(itemgetter(slice(4, None)), fields)), repeat(16))
        )
    except ValueError:  # a hex letter in a decimal field
        return None
    if max(numbers) >= LONG_MAX or max(ranges) >= U64_MAX:
        return None
    per_func = [0] * count
    levels_before: list[int] = []  # the nesting level each record follows
    first = 0
    for k, group in inlines.items():
        per_func[k] = len(group)
        levels_before.append(0)
        levels_before.extend(numbers[4 * first : 4 * (first + len(group) - 1) : 4])
        first += len(group)
    if any(map(gt, numbers[0::4], map(add, levels_before, repeat(1)))):
        return None
    range_counts = [(tokens - 4) // 2 for tokens in token_counts]
    return ParsedInlines(per_func, numbers, range_counts, ranges)


def _take_inlines(body: bytes) -> tuple[list[bytes], bytes]:
    """(the INLINE records' text after "INLINE ", the other lines) of an LF-led body.

    dump_syms writes a FUNC's INLINE records right after it: that leading run is cut off with
    one `find` per record; INLINE lines anywhere else are picked out line by line."""
    found = []
    pos = 0
    while body.startswith(b"\nINLINE ", pos):
        end = body.find(b"\n", pos + 1)
        if end < 0:
            end = len(body)
        found.append(body[pos + 8 : end])
        pos = end
    rest = body[pos:]
    if b"\nINLINE " not in rest:
        return found, rest
    lines = rest.split(b"\n")
    found += [line[7:] for line in lines if line.startswith(b"INLINE ")]
    return found, b"\n".join(line for line in lines if not line.startswith(b"INLINE "))


def _func_heads(
    heads: list[bytes], last_high: int
) -> tuple[list[int], list[int], list[int], list[bytes], bytes]:
    """(bases, inclusive highs, parameter sizes, names, flags) of FUNC lines that are all well
    formed, non-empty and in address order above `last_high`; Unclean otherwise."""
    fields = list(map(bytes.split, heads, repeat(b" "), repeat(3)))
    if len(fields) * 4 == sum(map(len, fields)):
        base_texts, size_texts, param_texts, names = record_columns(fields, 4)
        if b"m" in base_texts or b"" in names:
            parsed: list[FuncFields | None] = [parse_func_fields(head) for head in heads]
        else:
            bases = hex_column(base_texts, 16)
            sizes = hex_column(size_texts, 16)
            params = hex_column(param_texts, 15)
            flags = bytes(len(heads))
            parsed = []
    else:
        parsed = [parse_func_fields(head) for head in heads]
    if parsed:
        if None in parsed:
            raise Unclean
        bases = [p[0] for p in parsed]  # type: ignore[index]
        sizes = [p[1] for p in parsed]  # type: ignore[index]
        params = [p[2] for p in parsed]  # type: ignore[index]
        names = tuple(p[3] for p in parsed)  # type: ignore[index]
        flags = bytes(p[4] for p in parsed)  # type: ignore[index]
    if 0 in sizes or max(bases) >= U64_MAX or max(sizes) >= U64_MAX or max(params) >= LONG_MAX:
        raise Unclean
    highs = list(map(sub, map(add, bases, sizes), repeat(1)))
    if max(highs) > U64_MAX or bases[0] <= last_high:
        raise Unclean
    if not all(map(gt, islice(bases, 1, None), highs)):
        raise Unclean  # an overlap drops a FUNC
    return bases, highs, params, list(names), flags
