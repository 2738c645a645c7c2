"""Columns of numbers taken from record text in bulk (docs/formats/breakpad.md §1.2): a whole column
of a batch is split, checked and converted by C-level passes (`split`, one `unhexlify` or one
`map` per field, `max`), never a record at a time. Anything these cannot vouch for raises
Unclean, and the caller hands the batch to the exact parser.
"""

from __future__ import annotations

import sys
from array import array
from binascii import unhexlify
from collections.abc import Iterable
from functools import cache
from itertools import compress, islice, repeat
from operator import add, itemgetter, le, lt, sub

from procsupervisor.workers.stackwalker.symbols.cparse import U64_MAX
from procsupervisor.workers.stackwalker.symbols.fields import DEC_CHARS, HEX_CHARS

_LINE_TEXT_CHARS = HEX_CHARS + b" \n"
_HEX_LIST_CHARS = HEX_CHARS + b","
_BIG_BATCH = 4096  # line records from which looking small numbers up beats int()

# bases, inclusive highs, line numbers, file ids, positions out of order
LineColumns = tuple[array, array, array, array, list[int]]


class Unclean(Exception):
    """A batch has something only the exact parser may decide."""


@cache
def small_numbers() -> tuple[dict[bytes, int], dict[bytes, int]]:
    """Decimal text -> value, and lowercase hex text -> value - 1, for 0..65535: line numbers,
    file ids and line sizes are nearly all small, and a dict lookup is cheaper than `int`."""
    decimal = {b"%d" % i: i for i in range(1 << 16)}
    hex_minus_one = {b"%x" % i: i - 1 for i in range(1 << 16)}
    return decimal, hex_minus_one



def record_columns(rows: list[list[bytes]], width: int) -> list[list[bytes]]:
    """The columns of rows that must all have `width` fields (else Unclean)."""
    if len(rows) * width != sum(map(len, rows)):
        raise Unclean  # rows are split with at most `width` fields: all have exactly that
    return [list(map(itemgetter(k), rows)) for k in range(width)]



def hex_column(texts: Iterable[bytes], max_digits: int, checked: bool = False) -> array:
    """Non-empty hex numbers of at most `max_digits` digits ("I" or "Q" array), or Unclean;
    `checked`: the texts are known to hold hex digits only.

    Numbers of one run usually have one width (addresses of one region): then they are all
    converted by one `unhexlify` of their zero-padded concatenation, else one by one."""
    texts = list(texts)
    count = len(texts)
    if not count:
        return array("I")
    joined = b",".join(texts)
    if not checked and joined.translate(None, _HEX_LIST_CHARS):
        raise Unclean
    width = len(texts[0])
    if (
        0 < width <= 16
        and len(joined) == count * (width + 1) - 1
        and joined[width :: width + 1] == b"," * (count - 1)
    ):
        if width > max_digits:
            raise Unclean
        padded_width, typecode = (8, "I") if width <= 8 else (16, "Q")
        padding = b"0" * (padded_width - width)
        values = array(typecode)
        values.frombytes(unhexlify(padding + joined.replace(b",", padding)))
        if sys.byteorder == "little":
            values.byteswap()
        return values
    if max(map(len, texts)) > max_digits:
        raise Unclean
    try:
        return array("Q", map(int, texts, repeat(16)))
    except (ValueError, OverflowError):
        raise Unclean from None



def line_columns(text: bytes, count: int) -> LineColumns:
    """(bases, inclusive highs, line numbers, file ids, out of order) of `count` plain line
    records, one per line of `text`; Unclean unless every one is well formed, non-empty and in
    range. "Out of order" lists the positions whose line starts at or below the end of the one
    before it (which matters only inside one FUNC)."""
    if not count:
        return array("I"), array("I"), array("I"), array("I"), []
    if text.translate(None, _LINE_TEXT_CHARS):
        raise Unclean
    # every line's four fields, then a lone LF token: a line of any other shape shifts the LF
    # tokens out of step, and an empty field fails to convert
    tokens = (text + b"\n").replace(b"\n", b" \n ").split(b" ")
    if len(tokens) != 5 * count + 1 or tokens[4::5].count(b"\n") != count:
        raise Unclean
    del tokens[-1]
    bases = hex_column(tokens[0::5], 16, checked=True)  # the whole text was checked
    if bases.typecode == "Q" and max(bases) >= U64_MAX:
        raise Unclean
    decimal, hex_minus_one = small_numbers() if count >= _BIG_BATCH else ({}, {})
    try:
        # a number missing from the tables (None), or a size of 0 (-1), fails the conversion
        size_minus_one = array("I", map(hex_minus_one.get, tokens[1::5]))
    except (TypeError, OverflowError):
        sizes = hex_column(tokens[1::5], 16, checked=True)
        if 0 in sizes or max(sizes) >= U64_MAX:
            raise Unclean from None
        size_minus_one = array("Q", map(sub, sizes, repeat(1)))
    numbers = decimal_column(tokens[2::5], decimal)
    file_ids = decimal_column(tokens[3::5], decimal)
    try:
        highs = array("I", map(add, bases, size_minus_one))
    except OverflowError:
        try:
            highs = array("Q", map(add, bases, size_minus_one))
        except OverflowError:
            raise Unclean from None
    out_of_order: list[int] = []
    if not all(map(lt, highs, islice(bases, 1, None))):
        out_of_order = list(compress(range(1, count), map(le, islice(bases, 1, None), highs)))
    return bases, highs, numbers, file_ids, out_of_order


def decimal_column(texts: list[bytes], table: dict[bytes, int]) -> array:
    """Plain decimal numbers below LONG_MAX, or Unclean."""
    try:
        return array("I", map(table.get, texts))
    except (TypeError, OverflowError):
        pass
    if b"".join(texts).translate(None, DEC_CHARS) or max(map(len, texts)) > 18:
        raise Unclean
    try:
        return array("Q", map(int, texts))
    except ValueError:
        raise Unclean from None
