"""Fast paths of the `.sym` parser: runs of same-kind records handled a batch at a time.

A `.sym` file is long runs of one kind (FUNC with its line records, PUBLIC, STACK CFI, STACK
WIN, FILE, INLINE_ORIGIN). Each run is handed here whole. A batch of FUNCs and their line
records is checked and converted with C-level passes over all of its text (one `split`, one
`int` map per field) and committed only when nothing in it could be an error, a conflict or a
silently dropped record; otherwise the batch goes to `ExactParser._exact_feed`, which was never
touched by the attempt. Other runs go record by record with a short well-formed path and the
exact parser for the rest. Either way the records, the errors and the string order are those
of the exact parser.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import compress, islice, repeat
from operator import add, le, sub

from procsupervisor.workers.stackwalker.symbols.cparse import LONG_MAX, U64_MAX
from procsupervisor.workers.stackwalker.symbols.exact import (
    NO_FUNC,
    ExactParser,
    FuncFields,
    parse_func_fields,
)
from procsupervisor.workers.stackwalker.symbols.fields import DEC_CHARS, HEX_CHARS
from procsupervisor.workers.stackwalker.symbols.tables import NO_STRING

_LINE_TEXT_CHARS = HEX_CHARS + b" \n"
# FUNCs per batch: small enough that a batch needing the exact path costs little.
FUNC_BATCH = 128


class _Unclean(Exception):
    """A batch has something only the exact parser may decide."""


class BulkParser(ExactParser):
    # ---- FUNC, line and INLINE records ---------------------------------------------------

    def _func_region(self, region: bytes) -> None:
        """Lines that are FUNC, INLINE or line records (or start with a hex digit)."""
        body = region[:-1]
        if not body.startswith(b"FUNC "):
            first = body.find(b"\nFUNC ")
            self._exact_feed((body if first < 0 else body[:first]) + b"\n")
            if first < 0:
                return
            body = body[first + 1 :]
        pieces = body[5:].split(b"\nFUNC ")
        for start in range(0, len(pieces), FUNC_BATCH):
            batch = pieces[start : start + FUNC_BATCH]
            try:
                self._func_batch(batch)
            except _Unclean:
                self._exact_feed(b"FUNC " + b"\nFUNC ".join(batch) + b"\n")

    def _func_batch(self, pieces: list[bytes]) -> None:
        """Each piece is one FUNC line's fields and the lines after it, without "FUNC " and
        the final newline. Raises _Unclean before changing anything."""
        heads: list[FuncFields] = []
        highs_of_funcs: list[int] = []
        bodies: list[bytes] = []
        counts: list[int] = []
        inlines: dict[int, list[bytes]] = {}
        last_high = self.records.funcs.last_high()
        for k, piece in enumerate(pieces):
            head, _, body = piece.partition(b"\n")
            fields = _func_head(head)
            if fields is None:
                raise _Unclean
            base, size = fields[0], fields[1]
            high = base + size - 1
            if base <= last_high or size == 0 or high > U64_MAX:
                raise _Unclean  # an error, an overlap or a dropped FUNC
            last_high = high
            heads.append(fields)
            highs_of_funcs.append(high)
            if body and b"I" in body:
                lines = body.split(b"\n")
                inlines[k] = [line for line in lines if line.startswith(b"INLINE ")]
                body = b"\n".join(line for line in lines if not line.startswith(b"INLINE "))
            if body:
                bodies.append(body)
                counts.append(body.count(b"\n") + 1)
            else:
                counts.append(0)
        columns = _line_columns(b"\n".join(bodies), sum(counts))
        self._commit_funcs(heads, counts, inlines, columns)

    def _commit_funcs(
        self,
        heads: list[FuncFields],
        counts: list[int],
        inlines: dict[int, list[bytes]],
        columns: tuple[list[int], list[int], list[int], list[int]],
    ) -> None:
        records = self.records
        funcs = records.funcs
        first_line = len(records.line_base)
        first_record = len(records.func_param)
        names = records.add_strings(head[3] for head in heads)
        starts = []
        line = first_line
        for k, (base, size, param, _name, multiple) in enumerate(heads):
            record = first_record + k
            funcs.bases.append(base)
            funcs.highs.append(base + size - 1)
            funcs.values.append(record)
            records.func_param.append(param)
            records.func_name.append(names + k)
            records.func_flags.append(1 if multiple else 0)
            records.func_line_lo.append(line)
            records.func_inline_lo.append(len(records.inline_line))
            starts.append(line - first_line)
            line += counts[k]
            self._cur_inline_level = 0
            if k in inlines:
                self._cur = record
                for inline in inlines[k]:
                    if not self._inline(inline[7:]):
                        self.stats.inline_errors += 1
        bases, highs, numbers, file_ids = columns
        records.line_base.extend(bases)
        records.line_high.extend(highs)
        records.line_number.extend(numbers)
        records.line_file.extend(file_ids)
        # a line starting at or below the end of the one before it, in the same FUNC, makes
        # that FUNC's lines "unsorted" (resolved like Breakpad's RangeMap when laid out)
        for position in compress(range(1, len(bases)), map(le, islice(bases, 1, None), highs)):
            k = bisect_right(starts, position) - 1
            if starts[k] != position:
                records.unsorted_line_funcs.add(first_record + k)
        self._cur = first_record + len(heads) - 1
        last_count = counts[-1]
        self._cur_last_high = max(highs[len(highs) - last_count :]) if last_count else -1

    # ---- other runs ----------------------------------------------------------------------

    def _cfi_region(self, region: bytes) -> None:
        """Lines starting with "STACK CFI "."""
        records = self.records
        string_ids = records.string_ids
        intern = records.intern
        delta_addr = records.delta_addr
        delta_rules = records.delta_rules
        for line in region[:-1].split(b"\n"):
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

    def _public_region(self, region: bytes) -> None:
        """Lines starting with "PUBLIC "."""
        add_public = self.records.add_public
        for line in region[:-1].split(b"\n"):
            parts = line.split(b" ", 3)
            if len(parts) == 4 and parts[1] != b"m" and parts[3]:
                address_text, param_text = parts[1], parts[2]
                if (
                    0 < len(address_text) <= 16
                    and 0 < len(param_text) <= 15
                    and not (address_text + param_text).translate(None, HEX_CHARS)
                ):
                    address = int(address_text, 16)
                    if address < U64_MAX:
                        self._cur = NO_FUNC
                        param = int(param_text, 16)
                        if address and not add_public(address, param, parts[3], False):
                            self._error()
                        continue
            self._exact_line(line)

    def _win_region(self, region: bytes) -> None:
        """Lines starting with "STACK WIN "."""
        intern = self.records.intern
        for line in region[:-1].split(b"\n"):
            tokens = line[10:].split(b" ", 10)
            if len(tokens) == 11 and all(tokens) and not b"".join(tokens[:10]).translate(
                None, HEX_CHARS
            ):
                numbers = [int(token, 16) for token in tokens[:10]]
                win_type = numbers[0]
                if win_type <= 4 and max(numbers) <= U64_MAX and tokens[10][:1] != b" ":
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


def _plain_decimal(token: bytes) -> bool:
    """Digits only, few enough that strtol cannot saturate."""
    return 0 < len(token) <= 18 and not token.translate(None, DEC_CHARS)


def _func_head(head: bytes) -> FuncFields | None:
    parts = head.split(b" ", 3)
    if len(parts) == 4 and parts[0] != b"m" and parts[3]:
        base, size, param = parts[0], parts[1], parts[2]
        if (
            0 < len(base) <= 16
            and 0 < len(size) <= 16
            and 0 < len(param) <= 15
            and not (base + size + param).translate(None, HEX_CHARS)
        ):
            base_value = int(base, 16)
            size_value = int(size, 16)
            if base_value < U64_MAX and size_value < U64_MAX:
                return base_value, size_value, int(param, 16), parts[3], False
    return parse_func_fields(head)


def _line_columns(text: bytes, count: int) -> tuple[list[int], list[int], list[int], list[int]]:
    """(bases, inclusive highs, line numbers, file ids) of `count` plain line records, one per
    line of `text`; _Unclean unless every one is well formed, non-empty and in range."""
    if not count:
        return [], [], [], []
    if (
        text.translate(None, _LINE_TEXT_CHARS)
        or b"  " in text
        or b" \n" in text
        or b"\n " in text
        or text[:1] == b" "
        or text[-1:] == b" "
    ):
        raise _Unclean
    tokens = text.split()
    if len(tokens) != 4 * count:
        raise _Unclean
    try:
        bases = list(map(int, tokens[0::4], repeat(16)))
        sizes = list(map(int, tokens[1::4], repeat(16)))
        numbers = list(map(int, tokens[2::4]))
        file_ids = list(map(int, tokens[3::4]))
    except ValueError:
        raise _Unclean from None
    if (
        max(bases) >= U64_MAX
        or max(sizes) >= U64_MAX
        or max(numbers) >= LONG_MAX
        or max(file_ids) >= LONG_MAX
        or 0 in sizes
    ):
        raise _Unclean
    ends = list(map(add, bases, sizes))
    if max(ends) > U64_MAX + 1:
        raise _Unclean
    return bases, list(map(sub, ends, repeat(1))), numbers, file_ids
