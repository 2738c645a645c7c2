"""Symbol misses off the crash path: background indexer processes, the crash's wait budget, and
.sym files too big for the index memory budget."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from _cache_helpers import (
    CountingCodec,
    make_module,
    make_provider,
    running_server,
    sym_relpath,
    sym_text,
    write_symbol_tree,
)

from procsupervisor.cache.fill import BUILD_OVERHEAD_BYTES
from procsupervisor.cache.supplier_http import HttpSymbolServer
from procsupervisor.cache.supplier_local import LocalDirectorySupplier
from procsupervisor.workers.stackwalker.api import walk_minidump
from procsupervisor.workers.stackwalker.minidump.builder import write_demo_crash
from procsupervisor.workers.stackwalker.model import SymbolsUnavailable

MOD = make_module("libxul.so")


def test_a_miss_is_indexed_by_a_child_process_while_the_crash_waits(tmp_path: Path) -> None:
    write_symbol_tree(tmp_path / "syms", [MOD])
    codec = CountingCodec()
    worker = make_provider(
        tmp_path / "cache", [LocalDirectorySupplier(tmp_path / "syms")], codec=codec,
        background=True, index_wait_s=60,
    )  # fmt: skip
    worker.start_crash()
    index = worker.get_symbols(MOD)
    assert index is not None and index.lookup(0x104) is not None
    stats = worker.stats()
    assert stats["background_fills"] == 1 and stats["indexing"] == 0  # done and reaped
    assert codec.builds == 0  # parsed in the child, not in the worker
    assert worker.get_symbols(MOD) is index  # then from memory


def test_a_crash_waits_at_most_index_wait_s_then_goes_on_with_a_note(tmp_path: Path) -> None:
    dump, root = write_demo_crash(tmp_path / "demo")
    sym = next(root.rglob("*.sym"))
    relpath = sym.relative_to(root).as_posix()
    with running_server() as server:
        server.add_sym(relpath, sym.read_bytes(), delay_s=2.0)
        worker = make_provider(
            tmp_path / "cache", [HttpSymbolServer(server.url)], codec=CountingCodec(),
            background=True, index_wait_s=0.3,
        )  # fmt: skip
        worker.start_crash()
        started = time.monotonic()
        result = walk_minidump(dump.read_bytes(), worker)
        assert time.monotonic() - started < 1.8
        assert any("still being indexed" in note for note in result.notes), result.notes
        assert worker.stats()["wait_timeouts"] == 1
        frames = result.to_json_dump()["crashing_thread"]["frames"]
        assert not frames[0].get("function")  # walked without the module's symbols

        # the indexer went on: a later crash finds the symbols
        deadline = time.monotonic() + 30
        while worker.indexer.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        worker.start_crash()
        later = walk_minidump(dump.read_bytes(), worker)
        assert later.to_json_dump()["crashing_thread"]["frames"][0]["function"] == "crash_here"
        assert server.count(relpath) == 1  # fetched once, by the one child


def test_another_worker_waits_for_the_first_ones_indexer(tmp_path: Path) -> None:
    with running_server() as server:
        server.add_sym(sym_relpath(MOD), sym_text(MOD), delay_s=0.5)
        first, second = (
            make_provider(
                tmp_path / "cache", [HttpSymbolServer(server.url)], codec=CountingCodec(),
                background=True, index_wait_s=30,
            )  # fmt: skip
            for _ in range(2)
        )
        first.indexer.start("libxul.so/" + MOD.debug_identifier, sym_relpath(MOD))
        second.start_crash()
        assert second.get_symbols(MOD) is not None
        assert server.count(sym_relpath(MOD)) == 1  # the second one's indexer found it stored


def _too_big_budget() -> int:
    # less than the parser's own buffers: any process indexing any .sym is over it
    return BUILD_OVERHEAD_BYTES


def test_a_sym_too_big_for_the_memory_budget_is_refused_once_with_a_reason(
    tmp_path: Path,
) -> None:
    write_symbol_tree(tmp_path / "syms", [MOD])
    codec = CountingCodec()
    worker = make_provider(
        tmp_path / "cache", [LocalDirectorySupplier(tmp_path / "syms")], codec=codec,
        memory_budget_bytes=_too_big_budget(),
    )  # fmt: skip
    with pytest.raises(SymbolsUnavailable, match="over the .* limit"):
        worker.get_symbols(MOD)
    with pytest.raises(SymbolsUnavailable, match="over the .* limit"):
        worker.get_symbols(MOD)  # remembered: nothing fetched or parsed again
    assert codec.builds == 0
    stats = worker.stats()
    assert (stats["refused"], stats["downloads"], stats["negative_hits"]) == (1, 1, 1)

    other = make_provider(
        tmp_path / "cache", [LocalDirectorySupplier(tmp_path / "syms")], codec=codec
    )
    with pytest.raises(SymbolsUnavailable, match="over the .* limit"):
        other.get_symbols(MOD)  # the refusal is shared through the disk cache
    assert other.stats()["downloads"] == 0


def test_a_refused_module_is_a_note_of_the_walk(tmp_path: Path) -> None:
    dump, root = write_demo_crash(tmp_path / "demo")
    worker = make_provider(
        tmp_path / "cache", [LocalDirectorySupplier(root)], codec=CountingCodec(),
        background=True, memory_budget_bytes=_too_big_budget(),
    )  # fmt: skip
    worker.start_crash()
    result = walk_minidump(dump.read_bytes(), worker)
    assert result.ok
    refused = [note for note in result.notes if "unavailable" in note and "limit" in note]
    assert refused, result.notes
    assert result.to_json_dump()["modules"][0]["missing_symbols"] is True


def test_no_zombie_indexers_are_left(tmp_path: Path) -> None:
    modules = [make_module(f"m{n}.so") for n in range(4)]
    write_symbol_tree(tmp_path / "syms", modules)
    worker = make_provider(
        tmp_path / "cache", [LocalDirectorySupplier(tmp_path / "syms")], codec=CountingCodec(),
        background=True, index_wait_s=30,
    )  # fmt: skip
    for module in modules:
        worker.start_crash()
        assert worker.get_symbols(module) is not None
    children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
    if children.exists():
        pids = children.read_text().split()
        states = [Path(f"/proc/{pid}/stat").read_text().split()[2] for pid in pids]
        assert "Z" not in states
    assert worker.stats()["background_fills"] == 4
