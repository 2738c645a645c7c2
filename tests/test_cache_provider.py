"""CachingSymbolProvider in one process: tiers, negative entries, damage, limits, config."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from _cache_helpers import (
    ToyCodec,
    make_module,
    make_provider,
    sym_relpath,
    write_symbol_tree,
)

from procsupervisor.cache.errors import CacheDirectoryError
from procsupervisor.cache.provider import CachingSymbolProvider, cache_key, provider_from_config
from procsupervisor.cache.settings import SymbolCacheSettings, SymbolSettingsError
from procsupervisor.cache.supplier_local import LocalDirectorySupplier
from procsupervisor.metrics import NullMetrics


class RecordingMetrics(NullMetrics):
    def __init__(self) -> None:
        self.events: list[tuple[str, float]] = []

    def incr(self, name: str, value: int = 1, tags=None) -> None:
        self.events.append((name, value))

    def timing(self, name: str, ms: float, tags=None) -> None:
        self.events.append((name, ms))


def test_memory_then_disk_then_supplier(tmp_path: Path) -> None:
    libc = make_module("libc.so.6")
    write_symbol_tree(tmp_path / "syms", [libc])
    metrics = RecordingMetrics()
    supplier = LocalDirectorySupplier(tmp_path / "syms")
    first = make_provider(tmp_path / "cache", [supplier], metrics=metrics)

    index = first.get_symbols(libc)
    assert index is not None and index.lookup(0x10).function_name.startswith("MODULE Linux")
    assert first.get_symbols(libc) is index
    stats = first.stats()
    assert (stats["misses"], stats["downloads"], stats["memory_hits"]) == (1, 1, 1)
    assert stats["entries"] == 1 and stats["size_bytes"] > 0
    assert ("processor.symbolcache.miss", 1) in metrics.events
    assert any(name == "processor.symbolcache.parse_time" for name, _ in metrics.events)

    second_codec = ToyCodec()
    second = make_provider(tmp_path / "cache", [supplier], codec=second_codec)
    assert second.get_symbols(libc) is not None
    assert second.stats()["disk_hits"] == 1 and second.stats()["misses"] == 0
    assert second_codec.builds == 0  # a warm load parses nothing


def test_missing_symbols_are_cached_negatively(tmp_path: Path) -> None:
    absent = make_module("nothing.pdb")
    provider = make_provider(tmp_path / "cache", [LocalDirectorySupplier(tmp_path)])
    assert provider.get_symbols(absent) is None
    assert provider.get_symbols(absent) is None
    stats = provider.stats()
    assert (stats["misses"], stats["negative_hits"]) == (1, 1)
    other_worker = make_provider(tmp_path / "cache", [LocalDirectorySupplier(tmp_path)])
    assert other_worker.get_symbols(absent) is None
    assert other_worker.stats()["negative_hits"] == 1 and other_worker.stats()["misses"] == 0


def test_negative_entry_expires_and_symbols_appear(tmp_path: Path) -> None:
    late = make_module("late.so")
    provider = make_provider(
        tmp_path / "cache", [LocalDirectorySupplier(tmp_path / "syms")], negative_ttl_s=0.05
    )
    assert provider.get_symbols(late) is None
    write_symbol_tree(tmp_path / "syms", [late])
    time.sleep(0.1)
    assert provider.get_symbols(late) is not None


def test_module_without_debug_id_is_skipped(tmp_path: Path) -> None:
    provider = make_provider(tmp_path / "cache", [])
    assert provider.get_symbols(make_module("a.so", debug_id="")) is None
    assert cache_key(make_module("a.so", debug_id="")) is None
    assert provider.stats()["misses"] == 0


def test_hostile_names_never_reach_a_supplier(tmp_path: Path) -> None:
    asked: list[str] = []

    class Spy:
        kind = "dir"

        def fetch(self, relpath: str, workdir: Path) -> None:
            asked.append(relpath)

    # the naive layout function, so that the provider's own check is what stops them
    provider = make_provider(tmp_path / "cache", [Spy()], relpath_for=sym_relpath)
    for name in ("..", "../../etc/passwd", "a\\..\\b"):
        assert provider.get_symbols(make_module(name)) is None
    assert asked == []
    assert provider.stats()["unsafe_names"] == 3


def _value_files(cache_dir: Path) -> list[Path]:
    with sqlite3.connect(cache_dir / "cache.db") as db:
        rows = db.execute("SELECT filename FROM Cache WHERE filename IS NOT NULL").fetchall()
    return [cache_dir / name for (name,) in rows]


@pytest.mark.parametrize("damage", ["truncate", "garbage_same_size"])
def test_damaged_cache_value_is_refetched(tmp_path: Path, damage: str) -> None:
    mod = make_module("xul.pdb")
    write_symbol_tree(tmp_path / "syms", [mod])
    supplier = LocalDirectorySupplier(tmp_path / "syms")
    make_provider(tmp_path / "cache", [supplier]).get_symbols(mod)
    (value_file,) = _value_files(tmp_path / "cache")
    data = value_file.read_bytes()
    value_file.write_bytes(data[:50] if damage == "truncate" else bytes(len(data)))

    worker = make_provider(tmp_path / "cache", [supplier])
    assert worker.get_symbols(mod) is not None
    stats = worker.stats()
    assert (stats["corrupt"], stats["downloads"]) == (1, 1)
    assert make_provider(tmp_path / "cache", [supplier]).get_symbols(mod) is not None


def test_index_failing_codec_verification_is_refetched(tmp_path: Path) -> None:
    mod = make_module("xul.pdb")
    write_symbol_tree(tmp_path / "syms", [mod])
    worker = make_provider(tmp_path / "cache", [LocalDirectorySupplier(tmp_path / "syms")])
    # consistent size and CRC, but not an index the codec accepts
    worker.store.put_index(cache_key(mod), b"NOTANIDX" * 500)
    assert worker.get_symbols(mod) is not None
    assert worker.stats()["corrupt"] == 1 and worker.stats()["downloads"] == 1


def test_index_rejected_after_a_peer_refilled_keeps_the_fresh_value(tmp_path: Path) -> None:
    mod = make_module("xul.pdb")
    write_symbol_tree(tmp_path / "syms", [mod])
    key = cache_key(mod)
    peer = make_provider(tmp_path / "cache", [LocalDirectorySupplier(tmp_path / "syms")])
    fresh = peer.codec.build(tmp_path / "syms" / sym_relpath(mod))
    worker = make_provider(tmp_path / "cache", [LocalDirectorySupplier(tmp_path / "syms")])
    worker.store.put_index(key, b"NOTANIDX" * 500)

    class PeerRefillsWhileRejecting(ToyCodec):
        def load(self, buffer):  # type: ignore[no-untyped-def]
            if bytes(buffer[:8]) == b"NOTANIDX":
                peer.store.put_index(key, fresh)
            return super().load(buffer)

    worker.codec = PeerRefillsWhileRejecting()
    assert worker.get_symbols(mod) is not None
    stats = worker.stats()
    assert (stats["corrupt"], stats["peer_fills"], stats["downloads"]) == (1, 1, 0)


def test_unparsable_symbol_file_is_cached_negatively(tmp_path: Path) -> None:
    mod = make_module("bad.so")
    path = tmp_path / "syms" / sym_relpath(mod)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage, not a sym file")
    worker = make_provider(tmp_path / "cache", [LocalDirectorySupplier(tmp_path / "syms")])
    assert worker.get_symbols(mod) is None
    assert worker.get_symbols(mod) is None
    assert worker.stats()["parse_errors"] == 1 and worker.stats()["negative_hits"] == 1


def test_disk_limit_and_memory_lru_bounds(tmp_path: Path) -> None:
    modules = [make_module(f"m{n}.so") for n in range(12)]
    write_symbol_tree(tmp_path / "syms", modules, filler_bytes=30_000)
    limit = 200_000
    worker = make_provider(
        tmp_path / "cache",
        [LocalDirectorySupplier(tmp_path / "syms")],
        size_limit_bytes=limit,
        memory_lru_entries=3,
        memory_lru_bytes=10 << 20,
    )
    for module in modules:
        assert worker.get_symbols(module) is not None
        assert worker.store.volume() <= limit
        assert len(worker.loaded) <= 3
    stats = worker.stats()
    assert stats["evictions"] > 0 and stats["memory_evictions"] == 9
    byte_bound = make_provider(
        tmp_path / "cache2",
        [LocalDirectorySupplier(tmp_path / "syms")],
        memory_lru_bytes=70_000,
    )
    for module in modules:
        byte_bound.get_symbols(module)
        assert byte_bound.loaded.total_bytes <= 70_000
    assert len(byte_bound.loaded) == 2


def test_entry_bigger_than_the_whole_cache_is_still_served(tmp_path: Path) -> None:
    mod = make_module("huge.so")
    write_symbol_tree(tmp_path / "syms", [mod], filler_bytes=120_000)
    worker = make_provider(
        tmp_path / "cache", [LocalDirectorySupplier(tmp_path / "syms")], size_limit_bytes=60_000
    )
    assert worker.get_symbols(mod) is not None
    assert worker.store.volume() <= 60_000


def test_settings_from_section(tmp_path: Path) -> None:
    settings = SymbolCacheSettings.from_section(
        {
            "cache_size_mb": "10",
            "paths": f"{tmp_path}/a, {tmp_path}/b\n{tmp_path}/c",
            "urls": "https://symbols.example.org/try\nhttp://127.0.0.1:1",
            "negative_ttl_s": "5",
            "s3_bucket": "syms",
        },
        tmp_path,
    )
    assert settings.cache_dir == tmp_path / "symcache"
    assert settings.cache_size_bytes == 10 << 20
    assert [p.name for p in settings.paths] == ["a", "b", "c"]
    assert len(settings.urls) == 2 and settings.negative_ttl_s == 5.0
    for bad in ({"cache_size_mb": "lots"}, {"urls": "ftp://x"}, {"negative_ttl_s": "0"}):
        with pytest.raises(SymbolSettingsError, match=r"\[symbols\]"):
            SymbolCacheSettings.from_section(bad, tmp_path)


def test_provider_from_config_refuses_unsafe_directory(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    with pytest.raises(CacheDirectoryError):
        provider_from_config({"cache_dir": str(shared)}, tmp_path, NullMetrics())
    provider = provider_from_config(
        {"paths": str(tmp_path / "syms"), "cache_size_mb": "5"}, tmp_path, NullMetrics()
    )
    assert isinstance(provider, CachingSymbolProvider)
    assert provider.store.size_limit == 5 << 20
    assert provider.stats()["directory"] == str(tmp_path / "symcache")


def test_unexpected_supplier_failure_costs_only_the_symbols(tmp_path: Path) -> None:
    class Broken:
        kind = "http"

        def fetch(self, relpath: str, workdir: Path) -> None:
            raise RuntimeError("bug in a supplier")

    worker = make_provider(tmp_path / "cache", [Broken()])
    assert worker.get_symbols(make_module("a.so")) is None
    assert worker.stats()["errors"] == 1


def test_stuck_lock_holder_delays_but_does_not_block(tmp_path: Path) -> None:
    mod = make_module("a.so")
    write_symbol_tree(tmp_path / "syms", [mod])
    worker = make_provider(
        tmp_path / "cache", [LocalDirectorySupplier(tmp_path / "syms")], lock_timeout_s=0.1
    )
    with worker.locks.hold(cache_key(mod), timeout_s=1) as locked:
        assert locked
        assert worker.get_symbols(mod) is not None
    assert worker.stats()["lock_timeouts"] == 1 and worker.stats()["downloads"] == 1
