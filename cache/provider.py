"""The symbol provider every worker uses: memory LRU -> shared disk cache -> suppliers.

`provider_from_config` builds one from the `[symbols]` section (keys documented in
`procsupervisor.cache.settings`); call it in each worker after fork. `build_provider` serves
the `stackwalk` command (procsupervisor/stackwalk_command.py). The index format, the symbol
path rule and its safety check come from the stackwalker's `symbols` package, which knows
nothing of this cache.

Lookup order for a module, keyed `debug_file/debug_id`:
1. the worker's LRU of loaded indexes (and of recent "no symbols" answers);
2. the disk cache: an index is mmapped read-only and opened in place; a negative entry
   answers None until it expires; a damaged value is deleted and treated as a miss;
3. on a miss, the key's lock is taken (single-flight across processes), the disk cache is
   checked again (another worker may have just filled it), then suppliers are asked in order;
   the first complete `.sym` file is parsed, stored, and mapped back from the cache.
Nothing here raises into the stackwalker: any failure means "no symbols" for this module.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from procsupervisor.cache.counters import CounterSink
from procsupervisor.cache.download import temp_dir
from procsupervisor.cache.errors import SupplierError
from procsupervisor.cache.locks import KeyLocks
from procsupervisor.cache.memory_lru import MemoryLRU
from procsupervisor.cache.settings import MIB, SymbolCacheSettings
from procsupervisor.cache.shared_counters import SharedCounters
from procsupervisor.cache.store import STORE_ERRORS, EntryKind, StoredEntry, SymbolStore
from procsupervisor.cache.supplier_base import FetchedSymbols, SymbolSupplier
from procsupervisor.cache.supplier_http import HttpSymbolServer
from procsupervisor.cache.supplier_local import LocalDirectorySupplier
from procsupervisor.cache.supplier_s3 import S3SymbolSupplier, make_s3_client
from procsupervisor.metrics import Metrics
from procsupervisor.workers.stackwalker.model import (
    CodeModule,
    SymbolIndexProtocol,
    SymbolProvider,
)
from procsupervisor.workers.stackwalker.symbols import (
    BreakpadIndexCodec,
    DirectorySymbolProvider,
    IndexCodec,
    IndexCorruptError,
    is_safe_relpath,
    symbol_file_relpath,
)

log = logging.getLogger(__name__)

NEGATIVE_MEMORY_ENTRIES = 4096


def cache_key(module: CodeModule) -> str | None:
    """`debug_file/debug_id`, or None when the module cannot have symbols."""
    if not module.debug_file or not module.debug_identifier:
        return None
    return f"{module.debug_file}/{module.debug_identifier}"


class CachingSymbolProvider:
    """A `SymbolProvider` over the shared disk cache; one per worker process."""

    def __init__(
        self,
        store: SymbolStore,
        suppliers: Sequence[SymbolSupplier],
        *,
        codec: IndexCodec | None = None,
        metrics: Metrics | None = None,
        negative_ttl_s: float = 3600.0,
        error_retry_s: float = 60.0,
        memory_lru_entries: int = 64,
        memory_lru_bytes: int = 2048 * MIB,
        lock_timeout_s: float = 300.0,
        relpath_for: Callable[[CodeModule], str | None] = symbol_file_relpath,
    ) -> None:
        self.store = store
        self.suppliers = list(suppliers)
        self.codec: IndexCodec = codec or BreakpadIndexCodec()
        self.sink = CounterSink(metrics, SharedCounters(store.directory))
        self.negative_ttl_s = negative_ttl_s
        self.error_retry_s = error_retry_s
        self.lock_timeout_s = lock_timeout_s
        self.relpath_for = relpath_for
        self.locks = KeyLocks(store.directory)
        self.workdir = temp_dir(store.directory)
        self.loaded: MemoryLRU[SymbolIndexProtocol] = MemoryLRU(
            memory_lru_entries, memory_lru_bytes
        )
        # key -> time.time() until which "no symbols" is answered without asking the disk
        self.absent: MemoryLRU[float] = MemoryLRU(NEGATIVE_MEMORY_ENTRIES, 0)

    def get_symbols(self, module: CodeModule) -> SymbolIndexProtocol | None:
        key = cache_key(module)
        if key is None:
            return None
        try:
            return self._get(key, module)
        except Exception:
            # A symbol problem must cost this module its symbols, never the worker its crash.
            log.exception("symbol cache failure for %s", key)
            self.sink.event("errors")
            return None
        finally:
            self.sink.flush()

    def _get(self, key: str, module: CodeModule) -> SymbolIndexProtocol | None:
        index = self.loaded.get(key)
        if index is not None:
            self.sink.hit("memory")
            return index
        absent_until = self.absent.get(key)
        if absent_until is not None:
            if absent_until > time.time():
                self.sink.event("negative_hits")
                return None
            self.absent.discard(key)

        found, index = self._from_store(key, tier="disk")
        if found:
            return index
        self.sink.event("misses")
        try:
            return self._fill(key, module)
        finally:
            self.sink.flush(force=True)

    def _fill(self, key: str, module: CodeModule) -> SymbolIndexProtocol | None:
        """Single-flight: one process per key asks the suppliers; the others wait, then read."""
        with self.locks.hold(key, self.lock_timeout_s) as locked:
            if locked:
                found, index = self._from_store(key, tier="peer")
                if found:
                    return index
            else:
                log.warning(
                    "waited %.0fs for the download of %s; fetching it too", self.lock_timeout_s, key
                )
                self.sink.event("lock_timeouts")
            return self._fetch_and_store(key, module)

    def _from_store(self, key: str, tier: str) -> tuple[bool, SymbolIndexProtocol | None]:
        """(True, index or None) when the disk cache answers, (False, None) otherwise."""
        try:
            entry = self.store.lookup(key)
        except STORE_ERRORS as exc:
            log.warning("symbol cache read failed for %s: %s", key, exc)
            self.sink.event("store_errors")
            return False, None
        if entry.kind is EntryKind.NEGATIVE:
            self._remember_absent(key, entry.expires_at or time.time() + self.negative_ttl_s)
            self.sink.event("negative_hits")
            return True, None
        if entry.kind is EntryKind.INDEX:
            index = self._open_index(key, entry)
            if index is not None:
                if tier == "peer":
                    self.sink.event("peer_fills")
                else:
                    self.sink.hit(tier)
                return True, index
        if entry.kind is EntryKind.CORRUPT:
            log.warning("symbol cache entry %s is damaged (%s); fetching again", key, entry.reason)
            self.sink.event("corrupt")
        return False, None

    def _open_index(self, key: str, entry: StoredEntry) -> SymbolIndexProtocol | None:
        assert entry.buffer is not None
        try:
            index = self.codec.load(entry.buffer)
        except IndexCorruptError as exc:
            log.warning("symbol cache entry %s fails verification (%s); fetching again", key, exc)
            self.store.discard(key, entry.version)
            self.sink.event("corrupt")
            return None
        self.loaded.put(key, index, entry.nbytes)
        return index

    def _remember_absent(self, key: str, until: float) -> None:
        self.absent.put(key, until, 0)

    def _fetch_and_store(self, key: str, module: CodeModule) -> SymbolIndexProtocol | None:
        relpath = self.relpath_for(module)
        if relpath is None or not is_safe_relpath(relpath):
            self.sink.event("unsafe_names")
            self._remember_absent(key, time.time() + self.negative_ttl_s)
            return None
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
                return self._parse_and_store(key, fetched)
        if supplier_failed:
            # Unknown, not absent: ask again soon, and record nothing on disk.
            self._remember_absent(key, time.time() + self.error_retry_s)
        else:
            self._store_negative(key)
        return None

    def _parse_and_store(self, key: str, fetched: FetchedSymbols) -> SymbolIndexProtocol | None:
        started = time.monotonic()
        try:
            data = self.codec.build(fetched.path)
        except Exception as exc:
            # Any parser failure on a supplier's file: the file will not get better, so it
            # is remembered as "no symbols" for the negative TTL.
            log.warning("cannot parse symbols %s: %s", fetched.origin, exc)
            self.sink.event("parse_errors")
            self._store_negative(key)
            return None
        finally:
            if fetched.temporary:
                fetched.path.unlink(missing_ok=True)
        self.sink.parsed(time.monotonic() - started)
        try:
            self.sink.event("evictions", self.store.put_index(key, data))
            entry = self.store.lookup(key)
            self.sink.size(self.store.volume(), len(self.store))
        except STORE_ERRORS as exc:
            log.warning("cannot store symbols for %s: %s", key, exc)
            self.sink.event("store_errors")
            entry = StoredEntry(EntryKind.ABSENT)
        if entry.kind is EntryKind.INDEX:
            index = self._open_index(key, entry)
            if index is not None:
                return index
        # Not in the cache (bigger than the whole limit, evicted at once, store failing):
        # serve this worker from the bytes in hand.
        index = self.codec.load(data)
        self.loaded.put(key, index, len(data))
        return index

    def _store_negative(self, key: str) -> None:
        self._remember_absent(key, time.time() + self.negative_ttl_s)
        try:
            self.sink.event("evictions", self.store.put_negative(key, self.negative_ttl_s))
        except STORE_ERRORS as exc:
            log.warning("cannot store negative entry for %s: %s", key, exc)
            self.sink.event("store_errors")

    def stats(self) -> dict[str, Any]:
        """Counters of this process plus the shared cache's size (for `status` and tests)."""
        result: dict[str, Any] = dict(self.sink.counters.as_dict())
        result.update(
            directory=str(self.store.directory),
            memory_entries=len(self.loaded),
            memory_bytes=self.loaded.total_bytes,
            memory_evictions=self.loaded.evictions,
        )
        try:
            result.update(
                size_bytes=self.store.volume(),
                entries=len(self.store),
                size_limit_bytes=self.store.size_limit,
            )
        except STORE_ERRORS as exc:
            result["store_error"] = str(exc)
        return result

    def close(self) -> None:
        self.sink.flush(force=True)
        if self.sink.shared is not None:
            self.sink.shared.close()
        self.loaded.clear()
        self.store.close()


def suppliers_from_settings(settings: SymbolCacheSettings) -> list[SymbolSupplier]:
    suppliers: list[SymbolSupplier] = [LocalDirectorySupplier(path) for path in settings.paths]
    suppliers.extend(
        HttpSymbolServer(
            url,
            timeout_s=settings.http_timeout_s,
            retries=settings.http_retries,
            max_bytes=settings.max_download_bytes,
        )
        for url in settings.urls
    )
    if settings.s3_bucket:
        client = make_s3_client(
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            timeout_s=settings.http_timeout_s,
            retries=settings.http_retries,
        )
        suppliers.append(
            S3SymbolSupplier(
                client,
                settings.s3_bucket,
                settings.s3_prefix,
                max_bytes=settings.max_download_bytes,
            )
        )
    return suppliers


def provider_from_settings(
    settings: SymbolCacheSettings,
    metrics: Metrics | None = None,
    codec: IndexCodec | None = None,
) -> CachingSymbolProvider:
    store = SymbolStore(settings.cache_dir, settings.cache_size_bytes)
    return CachingSymbolProvider(
        store,
        suppliers_from_settings(settings),
        codec=codec,
        metrics=metrics,
        negative_ttl_s=settings.negative_ttl_s,
        error_retry_s=settings.error_retry_s,
        memory_lru_entries=settings.memory_lru_entries,
        memory_lru_bytes=settings.memory_lru_bytes,
        lock_timeout_s=settings.lock_timeout_s,
    )


def provider_from_config(
    symbols_section: Mapping[str, str], data_dir: Path, metrics: Metrics
) -> CachingSymbolProvider:
    """The worker's provider from the `[symbols]` section (see procsupervisor.cache.settings).
    Raises SymbolSettingsError or CacheDirectoryError with a message naming the problem."""
    settings = SymbolCacheSettings.from_section(symbols_section, data_dir)
    return provider_from_settings(settings, metrics)


def build_provider(symbol_paths: list[Path], cache_dir: Path | None) -> SymbolProvider:
    """For `stackwalk`: plain symbol directories, or the same behind a cache in `cache_dir`.

    Entries are keyed by module only (`debug_file/debug_id`), as symbol stores are: a cache
    directory must not be shared between symbol roots holding different files for the same
    module, or the first one parsed wins."""
    if cache_dir is None:
        return DirectorySymbolProvider(list(symbol_paths))
    settings = SymbolCacheSettings(cache_dir=Path(cache_dir), paths=tuple(symbol_paths))
    return provider_from_settings(settings)
