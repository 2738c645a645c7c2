"""The symbol index's lookups over a serialized buffer (docs/architecture.md §9,
docs/formats/breakpad.md §1.6-1.7, §7).

`SymbolIndex.from_buffer` reads only the header and section table (plus a crc32 pass when
verifying); lookups bisect directly over the mapped arrays, so an mmap of a cached index is
shared by every worker through the page cache.
"""

from __future__ import annotations

import json
import sys
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from procsupervisor.workers.stackwalker.model import InlineInfo, SymbolLookup, WindowsFrameInfo
from procsupervisor.workers.stackwalker.symbols.cfi_rules import apply_rule_set
from procsupervisor.workers.stackwalker.symbols.layout import SymbolIndexError, read_layout
from procsupervisor.workers.stackwalker.symbols.tables import NO_STRING, WIN_FIELDS

U64_MAX = (1 << 64) - 1
OMITTED_INLINE_NAME = "<name omitted>"

# bytes, bytearray, memoryview, mmap.mmap: anything exporting a flat byte buffer
BufferLike = Any

F = TypeVar("F", bound=Callable[..., Any])


def _index_errors(method: F) -> F:
    """Lookups over an unverified, damaged buffer surface as SymbolIndexError, never as
    IndexError & co."""

    @wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except SymbolIndexError:
            raise
        except (IndexError, ValueError, TypeError, OverflowError, KeyError) as exc:
            raise SymbolIndexError(f"corrupt symbol index: {exc}") from exc

    return wrapper  # type: ignore[return-value]


class SymbolIndex:
    """A module's symbols over a serialized index buffer (implements SymbolIndexProtocol)."""

    def __init__(self, buffer: BufferLike, verify: bool = True) -> None:
        if sys.byteorder != "little":
            raise SymbolIndexError("symbol index arrays are little-endian only")
        try:
            view = memoryview(buffer)
        except TypeError as exc:
            raise SymbolIndexError(f"not a buffer: {exc}") from exc
        if view.ndim != 1 or view.format not in ("B", "b", "c") or not view.c_contiguous:
            raise SymbolIndexError("symbol index buffer must be a flat, contiguous byte buffer")
        if view.format != "B":
            view = view.cast("B")
        self._buffer = buffer
        self._view = view
        self._arrays = read_layout(view, verify)
        a = self._arrays
        self._str_offsets = a["str_offsets"]
        self._str_data = a["str_data"]
        self._func_base = a["func_base"]
        self._func_high = a["func_high"]
        self._public_addr = a["public_addr"]
        self._cfi_init_base = a["cfi_init_base"]
        self._cfi_delta_addr = a["cfi_delta_addr"]
        try:
            meta = json.loads(bytes(a["meta"]).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise SymbolIndexError(f"corrupt symbol index metadata: {exc}") from exc
        if not isinstance(meta, dict):
            raise SymbolIndexError("corrupt symbol index metadata")
        module = meta.get("module")
        stats = meta.get("stats")
        self._module: dict[str, str] | None = module if isinstance(module, dict) else None
        self._stats: dict[str, int | bool] = stats if isinstance(stats, dict) else {}

    # ---- loading ------------------------------------------------------------------------

    @classmethod
    def from_buffer(cls, buffer: BufferLike, verify: bool = True) -> SymbolIndex:
        """Open an index in place (bytes, bytearray, memoryview, mmap). `verify` adds a crc32
        pass over the data; the structural checks are always done."""
        return cls(buffer, verify)

    # ---- properties ---------------------------------------------------------------------

    @property
    def module(self) -> dict[str, str] | None:
        """The first MODULE line's fields (os, arch, debug_id, name), or None without one."""
        return dict(self._module) if self._module is not None else None

    @property
    def stats(self) -> dict[str, int | bool]:
        """Record counts, `errors` (counted parse errors), `inline_errors`, `corrupt`,
        `truncated` (parsing stopped after the 101st error)."""
        return dict(self._stats)

    @property
    def nbytes(self) -> int:
        return len(self._view)

    def to_bytes(self) -> bytes:
        buffer = self._buffer
        return buffer if isinstance(buffer, bytes) else self._view.tobytes()

    def release(self) -> None:
        """Drop the views so the underlying mmap can be closed; the index is unusable after."""
        for view in self._arrays.values():
            view.release()
        self._arrays = {}
        self._view.release()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SymbolIndex):
            return NotImplemented
        return self._view == other._view

    __hash__ = None  # type: ignore[assignment]

    # ---- helpers ------------------------------------------------------------------------

    def _string(self, sid: int) -> str:
        offsets = self._str_offsets
        start, end = offsets[sid], offsets[sid + 1]
        if start > end:
            raise SymbolIndexError("corrupt string table")
        return self._str_data[start:end].tobytes().decode("utf-8", "replace")

    def _optional_string(self, sid: int) -> str | None:
        return None if sid == NO_STRING else self._string(sid)

    def _function_at(self, rel: int) -> tuple[int, bool]:
        """(index of the FUNC with the greatest base <= rel or -1, whether it contains rel)."""
        i = bisect_right(self._func_base, rel) - 1
        return i, i >= 0 and rel <= self._func_high[i]

    @staticmethod
    def _innermost(
        bases: memoryview, highs: memoryview, parents: memoryview, rel: int, lo: int, hi: int
    ) -> int:
        """Innermost node of a flattened containment tree containing rel, or -1."""
        node = bisect_right(bases, rel, lo, hi) - 1
        while node >= lo:
            if highs[node] >= rel:
                return node
            parent = parents[node]
            if parent == NO_STRING:
                return -1
            if parent >= node:
                raise SymbolIndexError("corrupt containment tree")
            node = parent
        return -1

    # ---- SymbolIndexProtocol ------------------------------------------------------------

    @_index_errors
    def lookup(self, rel: int) -> SymbolLookup | None:
        """Breakpad's LookupAddress for a module-relative address (docs/formats/breakpad.md §1.6,
        §7)."""
        if rel < 0 or rel > U64_MAX:
            return None
        a = self._arrays
        i, contains = self._function_at(rel)
        if contains:
            result = SymbolLookup(
                function_name=self._string(a["func_name"][i]),
                function_base=self._func_base[i],
                param_size=a["func_param"][i],
            )
            lo, hi = a["func_line_start"][i], a["func_line_start"][i + 1]
            k = bisect_right(a["line_base"], rel, lo, hi) - 1
            if k >= lo and rel <= a["line_high"][k]:
                result.source_file = self._optional_string(a["line_file"][k])
                result.source_line = a["line_number"][k]
                result.source_line_base = a["line_base"][k]
            lo, hi = a["func_inline_start"][i], a["func_inline_start"][i + 1]
            if lo < hi:
                result.inlines = self._inlines(rel, lo, hi)
            return result
        publics = self._public_addr
        j = bisect_right(publics, rel) - 1
        if j >= 0 and (i < 0 or publics[j] > self._func_base[i]):
            return SymbolLookup(
                function_name=self._string(a["public_name"][j]),
                function_base=publics[j],
                is_public=True,
                param_size=a["public_param"][j],
            )
        return None

    def _inlines(self, rel: int, lo: int, hi: int) -> list[InlineInfo]:
        a = self._arrays
        parents = a["inline_parent"]
        node = self._innermost(a["inline_base"], a["inline_high"], parents, rel, lo, hi)
        found: list[InlineInfo] = []
        while node >= 0:
            record = a["inline_record"][node]
            name_sid = a["inlrec_name"][record]
            start, stop = a["inlrec_range_start"][record], a["inlrec_range_start"][record + 1]
            function_base = 0
            range_base, range_size = a["inlrec_range_base"], a["inlrec_range_size"]
            for r in range(start, stop):
                if range_base[r] <= rel < range_base[r] + range_size[r]:
                    function_base = range_base[r]
                    break
            found.append(
                InlineInfo(
                    function_name=OMITTED_INLINE_NAME
                    if name_sid == NO_STRING
                    else self._string(name_sid),
                    function_base=function_base,
                    call_site_file=self._optional_string(a["inlrec_file"][record]),
                    call_site_line=a["inlrec_line"][record],
                )
            )
            parent = parents[node]
            if parent == NO_STRING:
                break
            if parent >= node or parent < lo:
                raise SymbolIndexError("corrupt inline tree")
            node = parent
        return found

    @_index_errors
    def find_windows_frame_info(self, rel: int) -> WindowsFrameInfo | None:
        """Innermost STACK WIN type 4, else type 0, else the FUNC's parameter size (§1.7)."""
        if rel < 0 or rel > U64_MAX:
            return None
        a = self._arrays
        for prefix, kind in (("win4_", "frame_data"), ("win0_", "fpo")):
            bases = a[prefix + "base"]
            node = self._innermost(
                bases, a[prefix + "high"], a[prefix + "parent"], rel, 0, len(bases)
            )
            if node >= 0:
                width = len(WIN_FIELDS)
                values = a[prefix + "values"][node * width : (node + 1) * width].tolist()
                fields = dict(zip(WIN_FIELDS, values, strict=True))
                return WindowsFrameInfo(
                    kind=kind,
                    prolog_size=fields["prolog_size"],
                    epilog_size=fields["epilog_size"],
                    parameter_size=fields["parameter_size"],
                    saved_register_size=fields["saved_register_size"],
                    local_size=fields["local_size"],
                    max_stack_size=fields["max_stack_size"],
                    allocates_base_pointer=bool(fields["allocates_base_pointer"]),
                    program_string=self._optional_string(a[prefix + "program"][node]),
                )
        i, contains = self._function_at(rel)
        if contains:
            # WindowsFrameInfo.parameter_size is a uint32 in the reference
            return WindowsFrameInfo(
                kind="param_only", parameter_size=a["func_param"][i] & 0xFFFFFFFF
            )
        return None

    @_index_errors
    def find_cfi_rules(self, rel: int) -> dict[str, str] | None:
        """INIT rules of the covering STACK CFI INIT, then every delta with INIT.base <= address
        <= rel in address order (docs/formats/breakpad.md §6.4). None if no INIT covers rel or it
        fails to parse."""
        if rel < 0 or rel > U64_MAX:
            return None
        a = self._arrays
        inits = self._cfi_init_base
        k = bisect_right(inits, rel) - 1
        if k < 0 or a["cfi_init_high"][k] < rel:
            return None
        rules: dict[str, str] = {}
        if not apply_rule_set(self._string(a["cfi_init_rules"][k]), rules):
            return None
        deltas = self._cfi_delta_addr
        delta_rules = a["cfi_delta_rules"]
        d = bisect_left(deltas, inits[k])
        count = len(deltas)
        while d < count and deltas[d] <= rel:
            apply_rule_set(self._string(delta_rules[d]), rules)
            d += 1
        return rules
