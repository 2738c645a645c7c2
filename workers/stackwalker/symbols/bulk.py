"""Fast paths of the `.sym` parser: runs of same-kind records handled a batch at a time.

A `.sym` file is long runs of one kind (FUNCs with their line records, PUBLIC, STACK CFI, STACK
WIN, FILE, INLINE_ORIGIN). A batch of FUNCs with their line and INLINE records is prepared by
funcs.py (in this process, or for a large file also in a helper process, converter.py) and
committed here in file order; a batch of PUBLICs or STACK CFI records is checked and converted
here. Each is committed only when nothing in it could be an error, a conflict or a silently
dropped record; otherwise the batch goes to the exact parser (exact.py), which the attempt has
not touched. Other runs go record by record with a short well-formed path and the exact parser
for the rest. Either way the records, the errors and the order of the strings are the exact
parser's.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections import deque
from itertools import accumulate, compress, islice, repeat
from operator import add, gt, is_, ne, not_, sub
from typing import Any

from procsupervisor.workers.stackwalker.symbols.converter import DEPTH, BatchHelper
from procsupervisor.workers.stackwalker.symbols.cparse import LONG_MAX, U64_MAX
from procsupervisor.workers.stackwalker.symbols.exact import (
    NO_FUNC,
    ExactParser,
)
from procsupervisor.workers.stackwalker.symbols.fields import DEC_CHARS, HEX_CHARS
from procsupervisor.workers.stackwalker.symbols.funcs import (
    ParsedInlines,
    PreparedFuncs,
    prepared_funcs,
    split_funcs,
)
from procsupervisor.workers.stackwalker.symbols.numbers import (
    Unclean,
    hex_column,
    record_columns,
)
from procsupervisor.workers.stackwalker.symbols.tables import NO_STRING

# FUNCs per batch: small enough that a batch needing the exact path costs little.
FUNC_BATCH = 256
RECORD_BATCH = 4096  # PUBLIC and STACK CFI lines per batch
_INLINE_CHARS = HEX_CHARS + b" "
AT_HELPER = object()  # a pending batch's columns are being converted by the helper
# Batches converted here may queue up behind one still at the helper before the parser waits:
# a busy machine can make the helper the slower of the two.
MAX_PENDING = 32


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
        parts = split_funcs(b"\n" + region[:-1])
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
        self, heads: list[bytes], bodies: list[bytes], prepared: PreparedFuncs | None
    ) -> None:
        if prepared is None or prepared.bases[0] <= self.records.funcs.last_high():
            # an error, a conflict or an overlap with the FUNCs before: only the exact parser
            # may decide
            self._exact_funcs(heads, bodies)
        else:
            self._commit_funcs(prepared)

    def _commit_funcs(self, prepared: PreparedFuncs) -> None:
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

    def _store_inlines(self, parsed: ParsedInlines) -> None:
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


def _without_prefix(region: bytes, prefix: bytes) -> list[bytes]:
    """The lines of `region` (each starting with `prefix`, each ending in LF) without it."""
    return region[len(prefix) : -1].replace(b"\n" + prefix, b"\n").split(b"\n")


def _wide(values: array | list[int]) -> array | list[int]:
    """`values` fit to extend an unsigned 64-bit array."""
    return array("Q", values) if isinstance(values, array) and values.typecode != "Q" else values


def _plain_decimal(token: bytes) -> bool:
    """Digits only, few enough that strtol cannot saturate."""
    return 0 < len(token) <= 18 and not token.translate(None, DEC_CHARS)


