"""Making one module's index and storing it (docs/architecture.md §9): from the shared index store
when it has it, else from the first supplier's `.sym` file, checked against the memory budget,
indexed into a file, stored in the local cache and shared.

Used with the module's lock held by the provider (inline), by a background indexer process
(background.py) and by `symbols warm` (warm.py), so every way in behaves the same.
"""

from __future__ import annotations

import logging
import mmap
import os
import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from procsupervisor.cache.counters import CounterSink
from procsupervisor.cache.download import TEMP_SUFFIX
from procsupervisor.cache.errors import SupplierError
from procsupervisor.cache.settings import MIB
from procsupervisor.cache.shared_index import SharedIndexMeta, SharedIndexStore, file_digest
from procsupervisor.cache.store import STORE_ERRORS, SymbolStore
from procsupervisor.cache.supplier_base import FetchedSymbols, SymbolSupplier
from procsupervisor.workers.stackwalker.symbols import IndexCodec, IndexCorruptError

log = logging.getLogger(__name__)

# What an index build needs beyond its process's memory before it starts: at most the `.sym`
# file's size (the parser's bound) plus the parser's buffers and tables.
BUILD_OVERHEAD_BYTES = 48 * MIB


@dataclass(frozen=True)
class FillResult:
    """How a fill ended: "built" (from a `.sym`), "shared" (from the shared store), "absent"
    (no supplier has it), "unknown" (a supplier failed), "refused" (too big for the memory
    budget), "unparsable". `loose_index` is an index the local cache could not keep (bigger
    than all of it, or the store failing), left for the caller to serve from and delete."""

    outcome: str
    reason: str = ""
    sym_bytes: int = 0
    loose_index: Path | None = None


def resident_bytes() -> int:
    """This process's resident memory now (Linux), else its peak so far."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class IndexFiller:
    def __init__(
        self,
        store: SymbolStore,
        suppliers: list[SymbolSupplier],
        codec: IndexCodec,
        sink: CounterSink,
        workdir: Path,
        *,
        negative_ttl_s: float,
        shared: SharedIndexStore | None = None,
        memory_budget_bytes: int | None = None,
    ) -> None:
        self.store = store
        self.suppliers = suppliers
        self.codec = codec
        self.sink = sink
        self.workdir = workdir
        self.negative_ttl_s = negative_ttl_s
        self.shared = shared
        self.memory_budget_bytes = memory_budget_bytes

    def fill(self, key: str, relpath: str) -> FillResult:
        """Store the index of `relpath` (already checked safe) under `key`, or a negative
        entry saying why there is none; supplier failures store nothing."""
        if self.shared is not None and self._from_shared(key, relpath):
            return FillResult("shared")
        supplier_failed = False
        for supplier in self.suppliers:
            started = time.monotonic()
            try:
                fetched = supplier.fetch(relpath, self.workdir)
            except SupplierError as exc:
                log.warning("symbol supplier %r failed for %s: %s", supplier, relpath, exc)
                self.sink.event("supplier_errors", tags={"supplier": supplier.kind})
                supplier_failed = True
                continue
            if fetched is not None:
                self.sink.download(
                    supplier.kind, fetched.transferred_bytes, time.monotonic() - started
                )
                try:
                    return self._index(key, relpath, fetched)
                finally:
                    if fetched.temporary:
                        fetched.path.unlink(missing_ok=True)
        if supplier_failed:
            return FillResult("unknown")
        self.store_negative(key)
        return FillResult("absent")

    def _from_shared(self, key: str, relpath: str) -> bool:
        assert self.shared is not None
        try:
            found = self.shared.fetch(relpath, self.workdir)
        except SupplierError as exc:
            log.warning("shared index store %r failed for %s: %s", self.shared, relpath, exc)
            self.sink.event("shared_errors")
            return False
        if found.path is None:
            if found.rejected:
                log.warning(
                    "shared index for %s rejected (%s); building it", relpath, found.rejected
                )
                self.sink.event("shared_rejected")
            return False
        try:
            self._check_loadable(found.path)
            self.sink.event("evictions", self.store.put_index_file(key, found.path))
        except IndexCorruptError as exc:
            log.warning("shared index for %s rejected (%s); building it", relpath, exc)
            self.sink.event("shared_rejected")
            return False
        except STORE_ERRORS as exc:
            log.warning("cannot store the shared index of %s: %s", key, exc)
            self.sink.event("store_errors")
            return False
        finally:
            found.path.unlink(missing_ok=True)
        self.sink.event("shared_hits")
        return True

    def _check_loadable(self, path: Path) -> None:
        """IndexCorruptError unless the codec accepts the index in `path` (its structure: the
        bytes were checked against the published checksum)."""
        if path.stat().st_size == 0:
            raise IndexCorruptError("empty index")
        problem = ""
        with (
            path.open("rb") as handle,
            mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped,
        ):
            try:
                index = self.codec.load(mapped)
            except IndexCorruptError as exc:
                problem = str(exc)  # the error's frames (and their views of the map) go here
            else:
                release = getattr(index, "release", None)
                if release is not None:
                    release()  # the map closes next, which needs no view of it left
                del index
        if problem:
            raise IndexCorruptError(problem)

    def _index(self, key: str, relpath: str, fetched: FetchedSymbols) -> FillResult:
        sym_bytes = fetched.path.stat().st_size
        refusal = self.over_budget(sym_bytes)
        if refusal:
            log.warning("symbols %s refused: %s", fetched.origin, refusal)
            self.sink.event("refused")
            self.store_negative(key, refusal)
            return FillResult("refused", refusal, sym_bytes)
        fd, name = tempfile.mkstemp(dir=self.workdir, prefix="ix-", suffix=TEMP_SUFFIX)
        os.close(fd)
        out = Path(name)
        started = time.monotonic()
        try:
            self.codec.build_file(fetched.path, out)
        except MemoryError:
            out.unlink(missing_ok=True)
            reason = f"indexing {_mib(sym_bytes)} of .sym ran out of memory"
            self.sink.event("refused")
            self.store_negative(key, reason)
            return FillResult("refused", reason, sym_bytes)
        except Exception as exc:
            # The file will not get better: "no symbols" for the negative TTL.
            out.unlink(missing_ok=True)
            log.warning("cannot parse symbols %s: %s", fetched.origin, exc)
            self.sink.event("parse_errors")
            self.store_negative(key)
            return FillResult("unparsable", str(exc)[:200], sym_bytes)
        self.sink.parsed(time.monotonic() - started)
        if self.shared is not None:
            self._publish(relpath, out, sym_bytes, fetched.etag)
        try:
            self.sink.event("evictions", self.store.put_index_file(key, out))
            self.sink.size(self.store.volume(), len(self.store))
        except STORE_ERRORS as exc:
            log.warning("cannot store symbols for %s: %s", key, exc)
            self.sink.event("store_errors")
            return FillResult("built", sym_bytes=sym_bytes, loose_index=out)
        if not self.store.has_index(key):  # bigger than the whole cache: evicted at once
            return FillResult("built", sym_bytes=sym_bytes, loose_index=out)
        out.unlink(missing_ok=True)
        return FillResult("built", sym_bytes=sym_bytes)

    def _publish(self, relpath: str, index_path: Path, sym_bytes: int, sym_etag: str) -> None:
        assert self.shared is not None
        sha256, size = file_digest(index_path)
        meta = SharedIndexMeta(self.codec.format_tag, sha256, size, sym_bytes, sym_etag)
        try:
            self.shared.publish(relpath, index_path, meta)
        except SupplierError as exc:
            log.warning("cannot share the index of %s: %s", relpath, exc)
            self.sink.event("shared_errors")
            return
        self.sink.event("shared_uploads")

    def over_budget(self, sym_bytes: int) -> str:
        """Why indexing a `.sym` of this size would break the memory budget, or ""."""
        budget = self.memory_budget_bytes
        if budget is None:
            return ""
        needed = resident_bytes() + sym_bytes + BUILD_OVERHEAD_BYTES
        if needed <= budget:
            return ""
        return (
            f"the .sym is {_mib(sym_bytes)}; indexing it takes about {_mib(needed)}, over the "
            f"{_mib(budget)} limit (index_memory_mb, default worker_max_rss_mb)"
        )

    def store_negative(self, key: str, reason: str = "") -> None:
        try:
            self.sink.event(
                "evictions", self.store.put_negative(key, self.negative_ttl_s, reason)
            )
        except STORE_ERRORS as exc:
            log.warning("cannot store negative entry for %s: %s", key, exc)
            self.sink.event("store_errors")


def _mib(size: int) -> str:
    return f"{size / MIB:.0f} MiB"
