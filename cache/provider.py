"""The symbol provider every worker uses: memory LRU -> shared disk cache -> shared index store
-> suppliers.

`provider_from_config` builds one from the `[symbols]` section (keys documented in
`procsupervisor.cache.settings`); call it in each worker after fork. `build_provider` serves
the `stackwalk` command (procsupervisor/stackwalk_command.py). The index format, the symbol
path rule and its safety check come from the stackwalker's `symbols` package, which knows
nothing of this cache.

Lookup order for a module, keyed `<debug_file basename>/<debug_id>`:
1. the worker's LRU of loaded indexes (and of recent "no symbols" or "refused" answers);
2. the disk cache: an index is mmapped read-only and opened in place; a negative entry
   answers None (or, with a reason, SymbolsUnavailable) until it expires; a damaged value is
   deleted and treated as a miss;
3. on a miss, fill.py makes the index (the shared index store, else the first supplier's
   `.sym`, within the memory budget) and stores it: in this process under the key's lock
   (single flight across processes), or, in the service (`background=True`), in an indexer
   process that the crash waits for at most `index_wait_s` (background.py).
Nothing here raises into the stackwalker but SymbolsUnavailable (symbols refused or still
being indexed: the walk notes it): any other failure means "no symbols" for this module.
"""

from __future__ import annotations

import functools
import logging
import mmap
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from procsupervisor.cache.counters import CounterSink
from procsupervisor.cache.download import temp_dir
from procsupervisor.cache.locks import KeyLocks
from procsupervisor.cache.memory_lru import MemoryLRU
from procsupervisor.cache.settings import MIB, SymbolCacheSettings
from procsupervisor.cache.shared_counters import SharedCounters
from procsupervisor.cache.store import STORE_ERRORS, EntryKind, StoredEntry, SymbolStore
from procsupervisor.cache.supplier_base import SymbolSupplier
from procsupervisor.cache.supplier_local import LocalDirectorySupplier
from procsupervisor.metrics import Metrics
from procsupervisor.workers.stackwalker.model import (
    CodeModule,
    SymbolIndexProtocol,
    SymbolProvider,
    SymbolsUnavailable,
)
from procsupervisor.workers.stackwalker.symbols import (
    BreakpadIndexCodec,
    IndexCodec,
    IndexCorruptError,
    is_safe_relpath,
    symbol_file_relpath,
)

if TYPE_CHECKING:
    from procsupervisor.cache.background import FillJob
    from procsupervisor.cache.fill import FillResult, IndexFiller
    from procsupervisor.cache.shared_index import SharedIndexStore

log = logging.getLogger(__name__)

NEGATIVE_MEMORY_ENTRIES = 4096


def cache_key(module: CodeModule) -> str | None:
    """`<debug_file basename>/<debug_id>`, or None when the module cannot have symbols.

    The symbol file's path is a function of those two (docs/formats/breakpad.md §2.1): modules whose
    debug_file differs only in its directory (ELF modules carry their full path) share the
    entry, and `symbols warm` can name it from a symbol store's layout."""
    if not module.debug_file or not module.debug_identifier:
        return None
    debug_file = module.debug_file
    name = debug_file[max(debug_file.rfind("/"), debug_file.rfind("\\")) + 1 :]
    return f"{name}/{module.debug_identifier}"


class CachingSymbolProvider:
    """A `SymbolProvider` over the shared disk cache; one per worker process.

    Misses are indexed in the calling process (`background=False`: commands, tests) or, in the
    service, by a child process per miss (background.py) that each crash waits for at most
    `index_wait_s` in all (`start_crash` starts that budget)."""

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
        shared: SharedIndexStore | None = None,
        memory_budget_bytes: int | None = None,
        background: bool = False,
        index_wait_s: float = 30.0,
        supplier_factory: Callable[[], list[SymbolSupplier]] | None = None,
        shared_factory: Callable[[], SharedIndexStore | None] | None = None,
    ) -> None:
        self.store = store
        self.codec: IndexCodec = codec or BreakpadIndexCodec()
        self.sink = CounterSink(metrics, SharedCounters(store.directory))
        self.negative_ttl_s = negative_ttl_s
        self.error_retry_s = error_retry_s
        self.lock_timeout_s = lock_timeout_s
        self.relpath_for = relpath_for
        self.locks = KeyLocks(store.directory)
        self.workdir = temp_dir(store.directory)
        self.suppliers = list(suppliers)
        self.shared = shared
        self.memory_budget_bytes = memory_budget_bytes
        self._filler: IndexFiller | None = None
        self.loaded: MemoryLRU[SymbolIndexProtocol] = MemoryLRU(
            memory_lru_entries, memory_lru_bytes
        )
        # key -> (time.time() until which no symbols are answered without asking the disk,
        # why they were refused or "")
        self.absent: MemoryLRU[tuple[float, str]] = MemoryLRU(NEGATIVE_MEMORY_ENTRIES, 0)
        self.index_wait_s = index_wait_s
        self._wait_until: float | None = None
        self._supplier_factory = supplier_factory
        self._shared_factory = shared_factory
        self.indexer = None
        if background:
            from procsupervisor.cache.background import BackgroundIndexer

            self.indexer = BackgroundIndexer(self._fill_job)

    @property
    def filler(self) -> IndexFiller:
        """What fills a miss in this process; made (and the parser loaded) on the first one."""
        if self._filler is None:
            from procsupervisor.cache.fill import IndexFiller

            self._filler = IndexFiller(
                self.store,
                self.suppliers,
                self.codec,
                self.sink,
                self.workdir,
                negative_ttl_s=self.negative_ttl_s,
                shared=self.shared,
                memory_budget_bytes=self.memory_budget_bytes,
            )
        return self._filler

    def start_crash(self) -> None:
        """A new crash: the time it may wait for background indexing starts now."""
        self._wait_until = time.monotonic() + self.index_wait_s
        if self.indexer is not None:
            self.indexer.reap()

    def get_symbols(self, module: CodeModule) -> SymbolIndexProtocol | None:
        key = cache_key(module)
        if key is None:
            return None
        try:
            return self._get(key, module)
        except SymbolsUnavailable:
            raise
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
        absent = self.absent.get(key)
        if absent is not None:
            until, reason = absent
            if until > time.time():
                self.sink.event("negative_hits")
                if reason:
                    raise SymbolsUnavailable(reason)
                return None
            self.absent.discard(key)

        found, index = self._from_store(key, tier="disk")
        if found:
            return index
        self.sink.event("misses")
        try:
            relpath = self.relpath_for(module)
            if relpath is None or not is_safe_relpath(relpath):
                self.sink.event("unsafe_names")
                self._remember_absent(key, time.time() + self.negative_ttl_s)
                return None
            if self.indexer is not None:
                return self._fill_in_background(key, relpath)
            return self._fill(key, relpath)
        finally:
            self.sink.flush(force=True)

    def _fill(self, key: str, relpath: str) -> SymbolIndexProtocol | None:
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
            result = self.filler.fill(key, relpath)
            if result.outcome in ("built", "shared") and result.loose_index is None:
                found, index = self._from_store(key, tier="filled")
                if found:
                    return index
                # Another writer's cull took the entry between storing and reading it (a cache
                # near its size limit): fill once more rather than walk without symbols.
                result = self.filler.fill(key, relpath)
            return self._filled(key, result)

    def _filled(self, key: str, result: FillResult) -> SymbolIndexProtocol | None:
        if result.outcome in ("built", "shared"):
            if result.loose_index is not None:
                return self._open_loose(key, result.loose_index)
            found, index = self._from_store(key, tier="filled")
            return index
        if result.outcome == "unknown":
            # Unknown, not absent: ask again soon, and record nothing on disk.
            self._remember_absent(key, time.time() + self.error_retry_s)
            return None
        refused = result.outcome == "refused"
        reason = result.reason if refused else ""
        self._remember_absent(key, time.time() + self.negative_ttl_s, reason)
        if refused:
            raise SymbolsUnavailable(result.reason)
        return None

    def _fill_in_background(self, key: str, relpath: str) -> SymbolIndexProtocol | None:
        from procsupervisor.cache.background import LOOSE, UNKNOWN

        assert self.indexer is not None
        if self.indexer.start(key, relpath):
            self.sink.event("background_fills")
        left = self.index_wait_s
        if self._wait_until is not None:
            left = self._wait_until - time.monotonic()
        code = self.indexer.wait(key, left)
        found, index = self._from_store(key, tier="filled")
        if found:
            return index
        if code is None:
            self.sink.event("wait_timeouts")
            raise SymbolsUnavailable(
                f"still being indexed in the background; this crash waited"
                f" {self.index_wait_s:g} s for its symbols (index_wait_s)"
            )
        self._remember_absent(key, time.time() + self.error_retry_s)
        if code == LOOSE:
            raise SymbolsUnavailable("the index is bigger than the whole symbol cache")
        if code != UNKNOWN:
            raise SymbolsUnavailable(
                f"the background indexer failed (exit status {code}); tried again after"
                f" {self.error_retry_s:g} s"
            )
        return None  # a supplier failed: nothing known, ask again after error_retry_s

    def _fill_job(self, key: str, relpath: str) -> FillJob:
        from procsupervisor.cache.background import FillJob

        return FillJob(
            key=key,
            relpath=relpath,
            cache_dir=self.store.directory,
            codec=self.codec,
            suppliers=self._supplier_factory or functools.partial(list, self.suppliers),
            shared=self._shared_factory or functools.partial(_same, self.shared),
            negative_ttl_s=self.negative_ttl_s,
            lock_timeout_s=self.lock_timeout_s,
            memory_budget_bytes=self.memory_budget_bytes,
        )

    def _from_store(self, key: str, tier: str) -> tuple[bool, SymbolIndexProtocol | None]:
        """(True, index or None) when the disk cache answers, (False, None) otherwise;
        SymbolsUnavailable for symbols refused."""
        try:
            entry = self.store.lookup(key)
        except STORE_ERRORS as exc:
            log.warning("symbol cache read failed for %s: %s", key, exc)
            self.sink.event("store_errors")
            return False, None
        if entry.kind is EntryKind.NEGATIVE:
            until = entry.expires_at or time.time() + self.negative_ttl_s
            self._remember_absent(key, until, entry.reason)
            self.sink.event("negative_hits")
            if entry.reason:
                raise SymbolsUnavailable(entry.reason)
            return True, None
        if entry.kind is EntryKind.INDEX:
            index = self._open_index(key, entry)
            if index is not None:
                if tier == "peer":
                    self.sink.event("peer_fills")
                elif tier != "filled":
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

    def _open_loose(self, key: str, path: Path) -> SymbolIndexProtocol:
        """Serve an index the cache could not keep (bigger than all of it, store failing)
        from its file, mapped and then unlinked."""
        try:
            with path.open("rb") as handle:
                buffer = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        finally:
            path.unlink(missing_ok=True)
        index = self.codec.load(buffer)
        self.loaded.put(key, index, len(buffer))
        return index

    def _remember_absent(self, key: str, until: float, reason: str = "") -> None:
        self.absent.put(key, (until, reason), 0)

    def stats(self) -> dict[str, Any]:
        """Counters of this process plus the shared cache's size (for `status` and tests)."""
        result: dict[str, Any] = dict(self.sink.counters.as_dict())
        result.update(
            directory=str(self.store.directory),
            memory_entries=len(self.loaded),
            memory_bytes=self.loaded.total_bytes,
            memory_evictions=self.loaded.evictions,
        )
        if self.indexer is not None:
            result["indexing"] = self.indexer.running()
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


def _same(value: Any) -> Any:
    return value


def suppliers_from_settings(settings: SymbolCacheSettings) -> list[SymbolSupplier]:
    # HTTP (requests) and S3 (boto3) are imported only when configured: a `stackwalk` over a
    # local symbol directory loads neither.
    suppliers: list[SymbolSupplier] = [LocalDirectorySupplier(path) for path in settings.paths]
    if settings.urls:
        from procsupervisor.cache.supplier_http import HttpSymbolServer

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
        from procsupervisor.cache.supplier_s3 import S3SymbolSupplier, make_s3_client

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


def shared_from_settings(
    settings: SymbolCacheSettings, codec: IndexCodec
) -> SharedIndexStore | None:
    """The shared second level of indexes, when `index_s3_bucket` is set."""
    if not settings.index_s3_bucket:
        return None
    from procsupervisor.cache.shared_index_s3 import S3SharedIndexStore
    from procsupervisor.cache.supplier_s3 import make_s3_client

    client = make_s3_client(
        endpoint_url=settings.index_s3_endpoint_url or settings.s3_endpoint_url,
        region=settings.index_s3_region or settings.s3_region,
        timeout_s=settings.http_timeout_s,
        retries=settings.http_retries,
    )
    return S3SharedIndexStore(
        client, settings.index_s3_bucket, settings.index_s3_prefix, codec.format_tag
    )


def provider_from_settings(
    settings: SymbolCacheSettings,
    metrics: Metrics | None = None,
    codec: IndexCodec | None = None,
    *,
    background: bool = False,
) -> CachingSymbolProvider:
    store = SymbolStore(settings.cache_dir, settings.cache_size_bytes)
    codec = codec or BreakpadIndexCodec()
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
        shared=shared_from_settings(settings, codec),
        memory_budget_bytes=settings.index_memory_bytes,
        background=background,
        index_wait_s=settings.index_wait_s,
        # a background indexer process opens clients of its own
        supplier_factory=functools.partial(suppliers_from_settings, settings),
        shared_factory=functools.partial(shared_from_settings, settings, codec),
    )


def provider_from_config(
    symbols_section: Mapping[str, str],
    data_dir: Path,
    metrics: Metrics,
    *,
    default_index_memory_mb: float | None = None,
    background: bool = False,
) -> CachingSymbolProvider:
    """The worker's provider from the `[symbols]` section (see procsupervisor.cache.settings);
    `background`: misses are indexed by child processes (the service). Raises
    SymbolSettingsError or CacheDirectoryError with a message naming the problem."""
    settings = SymbolCacheSettings.from_section(
        symbols_section, data_dir, default_index_memory_mb
    )
    return provider_from_settings(settings, metrics, background=background)


def build_provider(symbol_paths: list[Path], cache_dir: Path | None) -> SymbolProvider:
    """For `stackwalk`: plain symbol directories, or the same behind a cache in `cache_dir`.

    Entries are keyed by module only (`debug_file/debug_id`), as symbol stores are: a cache
    directory must not be shared between symbol roots holding different files for the same
    module, or the first one parsed wins."""
    if cache_dir is None:
        from procsupervisor.workers.stackwalker.symbols import DirectorySymbolProvider

        return DirectorySymbolProvider(list(symbol_paths))
    settings = SymbolCacheSettings(cache_dir=Path(cache_dir), paths=tuple(symbol_paths))
    return provider_from_settings(settings)
