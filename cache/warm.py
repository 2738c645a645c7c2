"""Indexing a whole symbol store into the shared cache ahead of time (`symbols warm`).

A source is a local symbol directory in Breakpad's layout, an HTTP(S) listing file (one
`<debug_file>/<debug_id>/<name>.sym` path per line, the files next to it on the same server)
or an S3 prefix. Every listed file not yet indexed in the cache is fetched and indexed exactly
as a worker's miss would be (fill.py: shared store first, memory budget, negative entries),
by N processes at once; what is already indexed is skipped, so a second run does nothing.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from procsupervisor.cache.counters import CounterSink
from procsupervisor.cache.download import temp_dir
from procsupervisor.cache.errors import SupplierError
from procsupervisor.cache.fill import IndexFiller
from procsupervisor.cache.locks import KeyLocks
from procsupervisor.cache.settings import SymbolCacheSettings
from procsupervisor.cache.shared_counters import SharedCounters
from procsupervisor.cache.store import SymbolStore
from procsupervisor.cache.supplier_base import SymbolSupplier
from procsupervisor.cache.supplier_local import LocalDirectorySupplier
from procsupervisor.workers.stackwalker.model import CodeModule
from procsupervisor.workers.stackwalker.symbols import (
    BreakpadIndexCodec,
    is_safe_relpath,
    symbol_file_relpath,
)

# outcomes of one file; the last ones are failures
DONE = ("built", "shared", "cached")


class SourceError(Exception):
    """A source cannot be listed (missing directory, unreachable listing or bucket)."""


@dataclass(frozen=True)
class WarmSource:
    """Where the symbol files are: their layout paths, and how to open one process's
    supplier for them (called in each warming process: clients are never shared)."""

    name: str
    relpaths: list[str]
    make_supplier: Callable[[], SymbolSupplier]


@dataclass
class WarmReport:
    outcomes: Counter[str] = field(default_factory=Counter)
    sym_bytes: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)  # relpath, reason

    @property
    def files(self) -> int:
        return sum(self.outcomes.values())

    @property
    def errors(self) -> int:
        return sum(n for outcome, n in self.outcomes.items() if outcome not in DONE)


def key_of(relpath: str) -> str:
    """The cache key (provider.cache_key) of the module whose symbol file is `relpath`."""
    debug_file, debug_id, _name = relpath.split("/")
    return f"{debug_file}/{debug_id}"


def layout_path(relpath: str) -> bool:
    """A safe `<debug_file>/<debug_id>/<name>.sym` that Breakpad's rule gives for its module
    (variants like `x.old.sym` next to it are not)."""
    if not is_safe_relpath(relpath) or not relpath.endswith(".sym"):
        return False
    debug_file, debug_id, _name = relpath.split("/")
    module = CodeModule(0, 0, debug_file, "", debug_file, debug_id)
    return symbol_file_relpath(module) == relpath


def open_source(text: str, settings: SymbolCacheSettings) -> WarmSource:
    if text.startswith(("http://", "https://")):
        return _http_listing(text, settings)
    if text.startswith("s3://"):
        return _s3_prefix(text, settings)
    root = Path(text)
    if not root.is_dir():
        raise SourceError(f"{text}: not a directory, an http(s):// listing or an s3:// prefix")
    relpaths = sorted(
        path.relative_to(root).as_posix()
        for path in root.glob("*/*/*.sym")
        if path.is_file()
    )
    return WarmSource(
        text,
        [relpath for relpath in relpaths if layout_path(relpath)],
        lambda: LocalDirectorySupplier(root),
    )


def _http_listing(url: str, settings: SymbolCacheSettings) -> WarmSource:
    import requests

    from procsupervisor.cache.supplier_http import HttpSymbolServer

    try:
        response = requests.get(url, timeout=settings.http_timeout_s)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise SourceError(f"{url}: cannot read the listing: {exc}") from exc
    base = url.rsplit("/", 1)[0]
    lines = (line.strip() for line in response.text.splitlines())
    relpaths = [line for line in lines if line and not line.startswith("#")]

    def supplier() -> SymbolSupplier:
        return HttpSymbolServer(
            base,
            timeout_s=settings.http_timeout_s,
            retries=settings.http_retries,
            max_bytes=settings.max_download_bytes,
        )

    return WarmSource(url, [r for r in relpaths if layout_path(r)], supplier)


def _s3_prefix(url: str, settings: SymbolCacheSettings) -> WarmSource:
    import botocore.exceptions

    from procsupervisor.cache.supplier_s3 import S3SymbolSupplier, make_s3_client

    parsed = urllib.parse.urlsplit(url)
    bucket, prefix = parsed.netloc, parsed.path.strip("/")

    def client() -> Any:
        return make_s3_client(
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            timeout_s=settings.http_timeout_s,
            retries=settings.http_retries,
        )

    relpaths = set()
    try:
        pages = client().get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{prefix}/" if prefix else ""
        )
        for page in pages:
            for item in page.get("Contents", []):
                key = item["Key"][len(prefix) + 1 if prefix else 0 :]
                relpaths.add(key[:-3] if key.endswith(".sym.gz") else key)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise SourceError(f"{url}: cannot list the bucket: {exc}") from exc

    def supplier() -> SymbolSupplier:
        return S3SymbolSupplier(
            client(), bucket, prefix, max_bytes=settings.max_download_bytes
        )

    return WarmSource(url, sorted(r for r in relpaths if layout_path(r)), supplier)


# ---- the warming processes -------------------------------------------------------------------

_filler: IndexFiller | None = None
_locks: KeyLocks | None = None
_lock_timeout_s = 300.0


def _start(
    settings: SymbolCacheSettings, make_supplier: Callable[[], SymbolSupplier]
) -> None:
    """Open this process's own store, supplier, shared store and counters."""
    global _filler, _locks, _lock_timeout_s
    from procsupervisor.cache.provider import shared_from_settings

    store = SymbolStore(settings.cache_dir, settings.cache_size_bytes)
    codec = BreakpadIndexCodec()
    _filler = IndexFiller(
        store,
        [make_supplier()],
        codec,
        CounterSink(None, SharedCounters(store.directory)),
        temp_dir(store.directory),
        negative_ttl_s=settings.negative_ttl_s,
        shared=shared_from_settings(settings, codec),
        memory_budget_bytes=settings.index_memory_bytes,
    )
    _locks = KeyLocks(store.directory)
    _lock_timeout_s = settings.lock_timeout_s


def _warm_one(relpath: str) -> tuple[str, str, int, str]:
    """(relpath, outcome, .sym bytes, reason) for one file."""
    assert _filler is not None and _locks is not None
    key = key_of(relpath)
    try:
        if _filler.store.has_index(key):
            return relpath, "cached", 0, ""
        with _locks.hold(key, _lock_timeout_s):
            if _filler.store.has_index(key):
                return relpath, "cached", 0, ""
            result = _filler.fill(key, relpath)
    except (SupplierError, OSError) as exc:
        return relpath, "error", 0, str(exc)[:300]
    finally:
        _filler.sink.flush(force=True)
    if result.loose_index is not None:
        result.loose_index.unlink(missing_ok=True)
        return relpath, "error", result.sym_bytes, "bigger than the whole cache"
    reasons = {
        "absent": "the source does not have it",
        "unknown": "the source failed (see the log)",
        "unparsable": f"not a symbol file: {result.reason}",
    }
    return relpath, result.outcome, result.sym_bytes, result.reason or reasons.get(
        result.outcome, ""
    )


def warm(
    source: WarmSource,
    settings: SymbolCacheSettings,
    jobs: int,
    progress: Callable[[str], None] = lambda relpath: None,
) -> WarmReport:
    """Index every file of `source` not yet in the cache, with `jobs` processes."""
    report = WarmReport()
    started = time.monotonic()
    results: Iterator[tuple[str, str, int, str]]
    if jobs <= 1 or len(source.relpaths) <= 1:
        _start(settings, source.make_supplier)
        results = map(_warm_one, source.relpaths)
        _collect(report, results, progress)
    else:
        context = multiprocessing.get_context("fork")
        with context.Pool(
            min(jobs, len(source.relpaths)),
            initializer=_start,
            initargs=(settings, source.make_supplier),
        ) as pool:
            _collect(report, pool.imap_unordered(_warm_one, source.relpaths), progress)
    report.seconds = time.monotonic() - started
    return report


def _collect(
    report: WarmReport,
    results: Iterator[tuple[str, str, int, str]],
    progress: Callable[[str], None],
) -> None:
    for relpath, outcome, sym_bytes, reason in results:
        report.outcomes[outcome] += 1
        report.sym_bytes += sym_bytes
        if outcome not in DONE:
            report.failures.append((relpath, reason or outcome))
        progress(relpath)


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
