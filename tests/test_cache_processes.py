"""Several real processes (fork start method) sharing one cache directory."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _cache_helpers import (
    assert_no_pickle,
    make_module,
    make_provider,
    running_server,
    sym_relpath,
    sym_text,
    write_symbol_tree,
)

from procsupervisor.cache.locks import KeyLocks
from procsupervisor.cache.store import SymbolStore
from procsupervisor.cache.supplier_http import HttpSymbolServer
from procsupervisor.cache.supplier_local import LocalDirectorySupplier

pytestmark = pytest.mark.slow
FORK = multiprocessing.get_context("fork")
MOD = make_module("xul.pdb", "44E4EC8C2F41492B9369D6B9A059577C2")
REL = sym_relpath(MOD)


def run_together(count: int, job: Callable[[int], Any], timeout_s: float = 60) -> list[Any]:
    """Fork `count` processes that start `job(n)` at the same instant; return their results
    (an exception in a child fails the test with its traceback)."""
    barrier = FORK.Barrier(count)
    results = FORK.Queue()

    def child(n: int) -> None:
        try:
            barrier.wait(timeout=timeout_s)
            results.put((n, "ok", job(n)))
        except BaseException:
            results.put((n, "error", traceback.format_exc()))

    processes = [FORK.Process(target=child, args=(n,)) for n in range(count)]
    for process in processes:
        process.start()
    collected = [results.get(timeout=timeout_s) for _ in processes]
    for process in processes:
        process.join(timeout_s)
        assert process.exitcode == 0
    errors = [text for _, status, text in collected if status == "error"]
    assert not errors, errors[0]
    return [value for _, _, value in sorted(collected, key=lambda item: item[0])]


def test_many_processes_open_a_new_cache_at_once(tmp_path: Path) -> None:
    for round_number in range(3):
        cache_dir = tmp_path / f"cache{round_number}"

        def job(n: int, cache_dir: Path = cache_dir) -> int:
            store = SymbolStore(cache_dir, 10 << 20)
            store.put_index(f"m{n}/1", os.urandom(2000))
            return len(store)

        run_together(8, job)
        assert len(SymbolStore(cache_dir, 10 << 20)) == 8


class AnnouncingLocks(KeyLocks):
    """KeyLocks that tell the test each time this process is about to wait for a key."""

    def __init__(self, cache_dir: Path, arrivals: Any) -> None:
        super().__init__(cache_dir)
        self.arrivals = arrivals

    def hold(self, key: str, timeout_s: float) -> Any:
        self.arrivals.release()
        return super().hold(key, timeout_s)


def test_one_download_for_many_workers_missing_the_same_module(tmp_path: Path) -> None:
    workers = 6
    arrivals = FORK.Semaphore(0)
    held_until_all_arrived: list[bool] = []

    def hold_download_until_every_worker_waits() -> None:
        # The downloader holds the key's lock until this answer is sent, so once every worker
        # has reached the lock the other five are certainly waiting on it: they must be
        # served by the download (peer fills), none can find the index on disk first.
        arrived = [arrivals.acquire(timeout=60) for _ in range(workers)]
        held_until_all_arrived.append(all(arrived))

    with running_server() as server:
        server.add_sym(REL, sym_text(MOD, 200_000), hold=hold_download_until_every_worker_waits)

        def job(n: int) -> dict:
            worker = make_provider(tmp_path / "cache", [HttpSymbolServer(server.url)])
            worker.locks = AnnouncingLocks(worker.store.directory, arrivals)
            index = worker.get_symbols(MOD)
            assert index is not None and "xul.pdb" in index.lookup(0).function_name
            return worker.stats()

        stats = run_together(workers, job)
        assert held_until_all_arrived == [True]
        assert server.count(REL) == 1
        assert sum(s["downloads"] for s in stats) == 1
        assert sum(s["peer_fills"] + s["disk_hits"] for s in stats) == workers - 1
        assert sum(s["peer_fills"] for s in stats) == workers - 1  # all really waited

        # A damaged value is refetched once, however many workers find it damaged.
        store = SymbolStore(tmp_path / "cache", None)
        with sqlite3.connect(store.directory / "cache.db") as db:
            (filename,) = db.execute("SELECT filename FROM Cache").fetchone()
        value_file = store.directory / filename
        value_file.write_bytes(value_file.read_bytes()[:1000])
        stats = run_together(workers, job)
        assert held_until_all_arrived == [True, True]
        assert server.count(REL) == 2
        assert sum(s["downloads"] for s in stats) == 1
        assert sum(s["peer_fills"] for s in stats) == workers - 1
        assert sum(s["corrupt"] for s in stats) >= 1
    assert_no_pickle(tmp_path / "cache")


def test_size_limit_holds_with_concurrent_writers(tmp_path: Path) -> None:
    modules = [make_module(f"lib{n}.so") for n in range(40)]
    write_symbol_tree(tmp_path / "syms", modules, filler_bytes=30_000)
    limit = 250_000
    entry = 31_000
    writers = 4

    def job(n: int) -> dict:
        worker = make_provider(
            tmp_path / "cache", [LocalDirectorySupplier(tmp_path / "syms")], size_limit_bytes=limit
        )
        worst = 0
        for module in modules[n::writers]:
            assert worker.get_symbols(module) is not None
            worst = max(worst, worker.store.volume())
        return {"worst": worst, **worker.stats()}

    stats = run_together(writers, job)
    # each writer culls right after its own write, so at any instant the excess is at most
    # one entry per writer still between its write and its cull
    assert max(s["worst"] for s in stats) <= limit + writers * entry
    assert SymbolStore(tmp_path / "cache", None).volume() <= limit
    assert sum(s["evictions"] for s in stats) > 0
    assert_no_pickle(tmp_path / "cache")


def test_a_killed_lock_holder_does_not_block_the_others(tmp_path: Path) -> None:
    locks = KeyLocks(tmp_path)
    ready = FORK.Event()

    def holder() -> None:
        with locks.hold("xul.pdb/1", timeout_s=5) as locked:
            assert locked
            ready.set()
            time.sleep(60)

    process = FORK.Process(target=holder)
    process.start()
    assert ready.wait(10)
    with locks.hold("xul.pdb/1", timeout_s=0.1) as locked:
        assert not locked
    os.kill(process.pid, signal.SIGKILL)
    process.join(10)
    with locks.hold("xul.pdb/1", timeout_s=5) as locked:
        assert locked
    assert locks.remove_idle() == 1
