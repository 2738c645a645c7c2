"""Fast paths of the `.sym` parser: runs of same-kind records handled a batch at a time.

A `.sym` file is long runs of one kind (FUNCs with their line records, PUBLIC, STACK CFI, STACK
WIN, FILE, INLINE_ORIGIN). A batch of FUNCs with their lines, of PUBLICs or of STACK CFI
records is checked and converted by C-level passes over whole lists (`split`, `map(int, ...)`,
`max`), and committed only when nothing in it could be an error, a conflict or a silently
dropped record; otherwise the batch goes to the exact parser (exact.py), which the attempt has
not touched. Other runs go record by record with a short well-formed path and the exact parser
for the rest. Either way the records, the errors and the order of the strings are the exact
parser's.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate, chain, compress, islice, repeat
from operator import add, and_, gt, is_, itemgetter, ne, not_, sub
from typing import Any

from procsupervisor.workers.stackwalker.symbols.converter import DEPTH, BatchHelper
from procsupervisor.workers.stackwalker.symbols.cparse import LONG_MAX, U64_MAX
from procsupervisor.workers.stackwalker.symbols.exact import (
    NO_FUNC,
    ExactParser,
    FuncFields,
    parse_func_fields,
)
from procsupervisor.workers.stackwalker.symbols.fields import DEC_CHARS, HEX_CHARS
from procsupervisor.workers.stackwalker.symbols.numbers import (
    LineColumns,
    Unclean,
    hex_column,
    line_columns,
    record_columns,
)
from procsupervisor.workers.stackwalker.symbols.tables import NO_STRING

# FUNCs per batch: small enough that a batch needing the exact path costs little.
FUNC_BATCH = 256
RECORD_BATCH = 4096  # PUBLIC and STACK CFI lines per batch
_INLINE_CHARS = HEX_CHARS + b" "
_INLINE_TEXT_CHARS = HEX_CHARS + b" \n"
AT_HELPER = object()  # a pending batch's columns are being converted by the helper
# Batches converted here may queue up behind one still at the helper before the parser waits:
# a busy machine can make the helper the slower of the two.
MAX_PENDING = 32
_FUNC_LINE = re.compile(rb"\nFUNC ([^\n]*)(?=\n|$)")


@dataclass
class _PreparedFuncs:
    """A batch of FUNCs with their line records and INLINE records, checked and converted
    (by the parser, or by its helper process), waiting to be committed."""

    bases: Sequence[int]
    highs: Sequence[int]
    params: Sequence[int]
    names: list[bytes]
    flags: bytes
    inlines: dict[int, list[bytes]]  # FUNC position -> its INLINE records after "INLINE "
    parsed_inlines: _Inlines | None  # the same, parsed, when all are plain
    counts: list[int]  # line records per FUNC
    columns: LineColumns


def prepared_funcs(heads: list[bytes], bodies: list[bytes]) -> _PreparedFuncs | None:
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
    return _PreparedFuncs(
        bases, highs, params, names, flags, inlines, parsed_inlines, counts, columns
    )


class BulkParser(ExactParser):
    # ---- FUNC, line and INLINE records ---------------------------------------------------

    def __init__(self, spill_dir: str | None = None) -> None:
        super().__init__(spill_dir)
        # prepares FUNC batches in a helper process (large files), else None
        self.converter: BatchHelper | None = None
        # batches not committed yet, in order: (heads, bodies, prepared), prepared being None
        # (not clean) or AT_HELPER while the helper prepares it (results come back in order)
        self._pending: deque[tuple[list[bytes], list[bytes], Any]] = deque()
        self._at_helper = 0

    def _func_region(self, region: bytes) -> None:
        """Lines that are FUNC, INLINE or line records (or start with a hex digit)."""
        parts = _split_funcs(b"\n" + region[:-1])
        if parts[0]:
            self._exact_feed(parts[0][1:] + b"\n")  # the current FUNC's lines, continued
        heads, bodies = parts[1::2], parts[2::2]
        for start in range(0, len(heads), FUNC_BATCH):
            batch_heads = heads[start : start + FUNC_BATCH]
            batch_bodies = bodies[start : start + FUNC_BATCH]
            if self.converter is None:
                self._commit(batch_heads, batch_bodies, prepared_funcs(batch_heads, batch_bodies))
                continue
            if self._at_helper < DEPTH:
                self.converter.send(batch_heads, batch_bodies)
                self._pending.append((batch_heads, batch_bodies, AT_HELPER))
                self._at_helper += 1
            else:  # the helper is behind: prepare here rather than wait
                prepared = prepared_funcs(batch_heads, batch_bodies)
                self._pending.append((batch_heads, batch_bodies, prepared))
            self._commit_ready()
        self._drain()

    def _exact_funcs(self, heads: list[bytes], bodies: list[bytes]) -> None:
        pairs = zip(heads, bodies, strict=True)
        self._exact_feed(b"".join(map(b"FUNC %s%s\n".__mod__, pairs)))

    def _commit_oldest(self) -> None:
        heads, bodies, prepared = self._pending.popleft()
        if prepared is AT_HELPER:
            assert self.converter is not None
            self._at_helper -= 1
            prepared = self.converter.receive(lambda: prepared_funcs(heads, bodies))
        self._commit(heads, bodies, prepared)

    def _commit_ready(self) -> None:
        """Commit, in order, the batches that are ready without waiting."""
        while self._pending and (
            self._pending[0][2] is not AT_HELPER
            or self.converter is None
            or self.converter.ready()
        ):
            self._commit_oldest()
        if len(self._pending) > MAX_PENDING:
            self._commit_oldest()

    def _drain(self) -> None:
        while self._pending:
            self._commit_oldest()

    def _commit(
        self, heads: list[bytes], bodies: list[bytes], prepared: _PreparedFuncs | None
    ) -> None:
        if prepared is None or prepared.bases[0] <= self.records.funcs.last_high():
            # an error, a conflict or an overlap with the FUNCs before: only the exact parser
            # may decide
            self._exact_funcs(heads, bodies)
        else:
            self._commit_funcs(prepared)

    def _commit_funcs(self, prepared: _PreparedFuncs) -> None:
        records = self.records
        first_record = len(records.func_param)
        count = len(prepared.counts)
        funcs = records.funcs
        funcs.bases.extend(_wide(prepared.bases))
        funcs.highs.extend(_wide(prepared.highs))
        funcs.values.extend(range(first_record, first_record + count))
        records.func_param.extend(_wide(prepared.params))
        first_name = records.add_strings(prepared.names)
        records.func_name.extend(range(first_name, first_name + count))
        records.func_flags.extend(prepared.flags)
        first_line = len(records.line_base)
        counts = prepared.counts
        starts = list(accumulate(counts[:-1], initial=0))
        records.func_line_lo.extend(map(add, starts, repeat(first_line)))
        if prepared.parsed_inlines is not None:
            self._store_inlines(prepared.parsed_inlines)
        elif prepared.inlines:
            self._commit_inlines(first_record, count, prepared.inlines)
        else:
            records.func_inline_lo.extend(repeat(len(records.inline_line), count))
            self._cur_inline_level = 0
        line_bases, line_highs, numbers, file_ids, out_of_order = prepared.columns
        records.line_base.extend(line_bases)
        records.line_high.extend(line_highs)
        records.line_number.extend(numbers)
        records.line_file.extend(file_ids)
        # a line starting at or below the end of the one before it, in the same FUNC, makes
        # that FUNC's lines "unsorted" (resolved like Breakpad's RangeMap when laid out)
        for position in out_of_order:
            k = bisect_right(starts, position) - 1
            if starts[k] != position:
                records.unsorted_line_funcs.add(first_record + k)
        self._cur = first_record + count - 1
        last_count = counts[-1]
        self._cur_last_high = max(line_highs[len(line_highs) - last_count :]) if last_count else -1

    def _store_inlines(self, parsed: _Inlines) -> None:
        """A batch's INLINE records, all plain new-syntax ones that none drops."""
        records = self.records
        first = len(records.inline_line)
        records.func_inline_lo.extend(
            map(add, accumulate(parsed.per_func[:-1], initial=0), repeat(first))
        )
        records.inline_line.extend(parsed.numbers[1::4])
        records.inline_file.extend(parsed.numbers[2::4])
        records.inline_origin.extend(parsed.numbers[3::4])
        first_range = len(records.inline_range_base)
        records.inline_range_base.extend(parsed.ranges[0::2])
        records.inline_range_size.extend(parsed.ranges[1::2])
        records.inline_range_lo.extend(
            map(add, accumulate(parsed.range_counts), repeat(first_range))
        )
        self._cur_inline_level = parsed.numbers[-4] if parsed.per_func[-1] else 0

    def _commit_inlines(
        self, first_record: int, count: int, inlines: dict[int, list[bytes]]
    ) -> None:
        """The INLINE records of a batch of FUNCs (`inlines`: FUNC position in the batch ->
        the records' text after "INLINE ", ascending)."""
        records = self.records
        done = 0
        for k, texts in inlines.items():
            records.func_inline_lo.extend(repeat(len(records.inline_line), k + 1 - done))
            done = k + 1
            self._cur = first_record + k
            self._cur_inline_level = 0
            for rest in texts:
                if not self._inline(rest):
                    self.stats.inline_errors += 1
        records.func_inline_lo.extend(repeat(len(records.inline_line), count - done))
        if count - 1 not in inlines:
            self._cur_inline_level = 0

    def _inline(self, rest: bytes) -> bool:
        """The new syntax with plain numbers, stored straight away; anything else exactly."""
        if (
            self._cur >= 0
            and not rest.translate(None, _INLINE_CHARS)
            and b"  " not in rest
            and rest[:1] != b" "
            and rest[-1:] != b" "
        ):
            tokens = rest.split(b" ")
            count = len(tokens)
            if 6 <= count < 512 and not count % 2:
                try:
                    numbers = list(map(int, tokens[:4]))  # decimal: a hex letter fails here
                    ranges = list(map(int, tokens[4:], repeat(16)))
                except ValueError:
                    return super()._inline(rest)
                if max(numbers) < LONG_MAX and max(ranges) < U64_MAX:
                    nest, call_line, call_file, origin = numbers
                    if nest > self._cur_inline_level + 1:
                        return True  # dropped by AppendInline, silently
                    self._cur_inline_level = nest
                    records = self.records
                    records.inline_line.append(call_line)
                    records.inline_file.append(call_file)
                    records.inline_origin.append(origin)
                    records.inline_range_base.extend(ranges[0::2])
                    records.inline_range_size.extend(ranges[1::2])
                    records.inline_range_lo.append(len(records.inline_range_base))
                    return True
        return super()._inline(rest)

    # ---- PUBLIC and STACK CFI ------------------------------------------------------------

    def _public_region(self, region: bytes) -> None:
        """Lines starting with "PUBLIC "."""
        bodies = _without_prefix(region, b"PUBLIC ")
        for start in range(0, len(bodies), RECORD_BATCH):
            batch = bodies[start : start + RECORD_BATCH]
            try:
                self._public_batch(batch)
            except Unclean:
                for body in batch:
                    self._exact_line(b"PUBLIC " + body)

    def _public_batch(self, bodies: list[bytes]) -> None:
        fields = list(map(bytes.split, bodies, repeat(b" "), repeat(2)))
        addr_texts, param_texts, names = record_columns(fields, 3)
        if b"m" in addr_texts or b"" in names:
            raise Unclean
        addrs = hex_column(addr_texts, 16)
        params = hex_column(param_texts, 15)
        records = self.records
        last = records.public_addr[-1] if records.public_addr else 0
        if records.public_seen is not None or addrs[0] <= last or 0 in addrs:
            raise Unclean  # a duplicate is a counted error; address 0 is skipped
        if max(addrs) >= U64_MAX or not all(map(gt, islice(addrs, 1, None), addrs)):
            raise Unclean
        records.public_addr.extend(_wide(addrs))
        records.public_param.extend(_wide(params))
        first = records.add_strings(names)
        records.public_name.extend(range(first, first + len(names)))
        records.public_flags.extend(bytes(len(names)))
        self._cur = NO_FUNC

    def _cfi_region(self, region: bytes) -> None:
        """Lines starting with "STACK CFI "."""
        bodies = _without_prefix(region, b"STACK CFI ")
        for start in range(0, len(bodies), RECORD_BATCH):
            batch = bodies[start : start + RECORD_BATCH]
            try:
                self._cfi_batch(batch)
            except Unclean:
                self._cfi_lines([b"STACK CFI " + body for body in batch])

    def _cfi_batch(self, bodies: list[bytes]) -> None:
        """Deltas ("address rules") and INIT records ("INIT base size rules")."""
        fields = list(map(bytes.split, bodies, repeat(b" "), repeat(1)))
        firsts, rests = record_columns(fields, 2)
        is_delta = list(map(ne, firsts, repeat(b"INIT")))
        rules = list(rests)
        delta_addrs = hex_column(compress(firsts, is_delta), 16)
        init_positions = list(compress(range(len(bodies)), map(not_, is_delta)))
        if init_positions:
            init_fields = list(map(bytes.split, map(rests.__getitem__, init_positions),
                                   repeat(b" "), repeat(2)))  # fmt: skip
            init_bases, init_sizes, init_rules = record_columns(init_fields, 3)
            if b"" in init_rules:
                raise Unclean
            bases = hex_column(init_bases, 16)
            sizes = hex_column(init_sizes, 16)
            if 0 in sizes or max(bases) >= U64_MAX:
                raise Unclean
            highs = list(map(sub, map(add, bases, sizes), repeat(1)))
            if max(highs) > U64_MAX:
                raise Unclean
            for i, text in zip(init_positions, init_rules, strict=True):
                rules[i] = text
        if b"" in rules:
            raise Unclean
        records = self.records
        sids = list(map(records.string_ids.get, rules))
        if None in sids:
            intern = records.intern
            for i in compress(range(len(sids)), map(is_, sids, repeat(None))):
                sids[i] = intern(rules[i])  # new strings get their ids in line order
        records.delta_addr.extend(_wide(delta_addrs))
        records.delta_rules.extend(compress(sids, is_delta))
        if init_positions:
            inits = records.cfi_inits
            init_sids = list(map(sids.__getitem__, init_positions))
            if bases[0] > inits.last_high() and all(map(gt, islice(bases, 1, None), highs)):
                inits.bases.extend(_wide(bases))
                inits.highs.extend(_wide(highs))
                inits.values.extend(init_sids)
            else:  # overlaps drop the newcomer, silently
                for base, high, sid in zip(bases, highs, init_sids, strict=True):
                    inits.store(base, high, sid)

    def _cfi_lines(self, lines: list[bytes]) -> None:
        records = self.records
        string_ids = records.string_ids
        intern = records.intern
        delta_addr = records.delta_addr
        delta_rules = records.delta_rules
        for line in lines:
            if line.startswith(b"INIT ", 10):
                if not self._stack_cfi_init_fast(line):
                    self._exact_line(line)
                continue
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
            else:
                self._exact_line(line)

    # ---- record by record ----------------------------------------------------------------

    def _win_region(self, region: bytes) -> None:
        """Lines starting with "STACK WIN "."""
        intern = self.records.intern
        for line in region[:-1].split(b"\n"):
            tokens = line[10:].split(b" ", 10)
            if (
                len(tokens) == 11
                and all(tokens)
                and not b"".join(tokens[:10]).translate(None, HEX_CHARS)
                and max(map(len, tokens[:10])) <= 16
            ):
                numbers = [int(token, 16) for token in tokens[:10]]
                win_type = numbers[0]
                if win_type <= 4:
                    base, size = numbers[1], numbers[2]
                    values = [value & 0xFFFFFFFF for value in numbers[3:9]]
                    if numbers[9] & 0xFFFFFFFF:
                        values.append(0)
                        self._store_win(win_type, base, size, values, intern(tokens[10]))
                        continue
                    last = tokens[10]
                    if len(last) <= 16 and not last.translate(None, HEX_CHARS):
                        values.append(1 if int(last, 16) & 0xFFFFFFFF else 0)
                        self._store_win(win_type, base, size, values, NO_STRING)
                        continue
            self._exact_line(line)

    def _file_region(self, region: bytes) -> None:
        """Lines starting with "FILE "."""
        records = self.records
        files = records.files
        for line in region[:-1].split(b"\n"):
            parts = line.split(b" ", 2)
            if len(parts) == 3 and parts[2] and _plain_decimal(parts[1]):
                file_id = int(parts[1])
                if file_id not in files:
                    files[file_id] = records.intern(parts[2])
            else:
                self._exact_line(line)

    def _origin_region(self, region: bytes) -> None:
        """Lines starting with "INLINE_ORIGIN "."""
        records = self.records
        origins = records.origins
        for line in region[:-1].split(b"\n"):
            parts = line.split(b" ", 2)
            # a name whose first word could be a number is the old syntax's file id: exact path
            if len(parts) == 3 and parts[2][:1] not in b"0123456789- " and _plain_decimal(parts[1]):
                origin_id = int(parts[1])
                if origin_id not in origins:
                    origins[origin_id] = records.intern(parts[2])
            else:
                self._exact_line(line)

    def _exact_line(self, line: bytes) -> None:
        if not self._keyword_line(line):
            self._line_records([line])


def _split_funcs(text: bytes) -> list[bytes]:
    """[text before the first FUNC line, head, body, head, body, ...]: heads are FUNC lines
    without "FUNC ", bodies the LF-led lines up to the next FUNC line."""
    return _FUNC_LINE.split(text)


def _without_prefix(region: bytes, prefix: bytes) -> list[bytes]:
    """The lines of `region` (each starting with `prefix`, each ending in LF) without it."""
    return region[len(prefix) : -1].replace(b"\n" + prefix, b"\n").split(b"\n")


@dataclass
class _Inlines:
    per_func: list[int]  # INLINE records of each FUNC of the batch
    numbers: list[int]  # nest level, call line, call file, origin of each record
    range_counts: list[int]
    ranges: list[int]  # address, size, ... of every record in turn


def _parsed_inlines(inlines: dict[int, list[bytes]], count: int) -> _Inlines | None:
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
    return _Inlines(per_func, numbers, range_counts, ranges)


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


def _wide(values: array | list[int]) -> array | list[int]:
    """`values` fit to extend an unsigned 64-bit array."""
    return array("Q", values) if isinstance(values, array) and values.typecode != "Q" else values


def _plain_decimal(token: bytes) -> bool:
    """Digits only, few enough that strtol cannot saturate."""
    return 0 < len(token) <= 18 and not token.translate(None, DEC_CHARS)


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


