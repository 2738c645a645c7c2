"""`procsupervisor cache stats|prune`."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from _cache_helpers import make_module, make_provider, write_symbol_tree
from click.testing import CliRunner

from procsupervisor import cli
from procsupervisor.cache.cli import cache
from procsupervisor.cache.download import temp_dir
from procsupervisor.cache.locks import KeyLocks
from procsupervisor.cache.shared_counters import SharedCounters
from procsupervisor.cache.store import SymbolStore
from procsupervisor.cache.supplier_local import LocalDirectorySupplier


def _filled(cache_dir: Path, limit: int = 10 << 20) -> SymbolStore:
    store = SymbolStore(cache_dir, limit)
    for n in range(5):
        store.put_index(f"m{n}/1", os.urandom(20_000))
    store.put_negative("absent.pdb/1", 3600)
    store.put_negative("gone.pdb/1", 0.01)
    return store


def test_stats_json(tmp_path: Path) -> None:
    _filled(tmp_path / "c").close()
    result = CliRunner().invoke(cache, ["--cache-dir", str(tmp_path / "c"), "stats", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["index_entries"] == 5 and figures["index_bytes"] == 100_000
    assert figures["size_limit_bytes"] == 10 << 20
    assert figures["size_bytes"] >= 100_000


def test_stats_reads_config(tmp_path: Path) -> None:
    config = tmp_path / "p.ini"
    config.write_text("[symbols]\ncache_dir = syms-cache\ncache_size_mb = 3\n")
    _filled(tmp_path / "data" / "syms-cache").close()
    result = CliRunner().invoke(
        cache, ["--config", str(config), "--data-dir", str(tmp_path / "data"), "stats"]
    )
    assert result.exit_code == 0, result.output
    assert "index_entries: 5" in result.output


@pytest.fixture
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PROCSUPERVISOR_"):
            monkeypatch.delenv(name)


def test_config_given_to_the_main_command_reaches_the_cache_group(
    tmp_path: Path, no_environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "p.ini"
    config.write_text("[symbols]\ncache_dir = syms-cache\ncache_size_mb = 3\n")
    _filled(tmp_path / "data" / "syms-cache").close()
    monkeypatch.chdir(tmp_path)  # the default data dir (./procsupervisor-data) holds no cache
    runner = CliRunner()
    for args in (
        ["--config", str(config), "--data-dir", str(tmp_path / "data"), "cache", "stats"],
        ["-c", str(config), "cache", "--data-dir", str(tmp_path / "data"), "stats"],
    ):
        result = runner.invoke(cli.main, [*args, "--json"])
        assert result.exit_code == 0, (args, result.output)
        figures = json.loads(result.output)
        assert figures["directory"] == str(tmp_path / "data" / "syms-cache")
        assert figures["index_entries"] == 5
    # prune keeps the config's size limit, as with `cache --config`
    result = runner.invoke(
        cli.main, ["--config", str(config), "-d", str(tmp_path / "data"), "cache", "prune"]
    )
    assert result.exit_code == 0, result.output
    stats = runner.invoke(cache, ["--cache-dir", str(tmp_path / "data" / "syms-cache"), "stats",
                                  "--json"])
    assert json.loads(stats.output)["size_limit_bytes"] == 3 << 20


def test_a_bad_config_is_one_line(tmp_path: Path, no_environment: None) -> None:
    config = tmp_path / "bad.ini"
    config.write_text("[symbols]\ncache_size_mb = huge\n")
    for args in (["cache", "--config", str(config)], ["--config", str(config), "cache"]):
        result = CliRunner().invoke(cli.main, [*args, "stats"])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
        assert result.output.count("\n") == 1 and "cache_size_mb" in result.output
        assert "Traceback" not in result.output


def test_prune(tmp_path: Path) -> None:
    store = _filled(tmp_path / "c")
    stale = temp_dir(store.directory) / "dl-old.sym.part"
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    with KeyLocks(store.directory).hold("m0/1", 1):
        pass
    store.close()
    time.sleep(0.02)
    runner = CliRunner()
    result = runner.invoke(
        cache, ["--cache-dir", str(tmp_path / "c"), "prune", "--max-size-mb", "0.09"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["expired"] == 1 and report["evicted"] >= 1
    assert report["temp_files"] == 1 and report["lock_files"] == 1
    assert report["size_bytes"] <= 0.09 * (1 << 20)
    result = runner.invoke(cache, ["--cache-dir", str(tmp_path / "c"), "prune", "--negative"])
    assert json.loads(result.output)["negative"] == 1
    result = runner.invoke(cache, ["--cache-dir", str(tmp_path / "c"), "prune", "--all"])
    assert json.loads(result.output)["cleared"] >= 1
    assert len(SymbolStore(tmp_path / "c", None)) == 0


def test_refuses_missing_or_unsafe_directory(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cache, ["--cache-dir", str(tmp_path / "none"), "stats"])
    assert result.exit_code != 0 and "no symbol cache" in result.output
    (tmp_path / "open").mkdir()
    (tmp_path / "open").chmod(0o777)
    result = runner.invoke(cache, ["--cache-dir", str(tmp_path / "open"), "stats"])
    assert result.exit_code != 0 and "world-writable" in result.output


def test_stats_show_totals_of_every_worker(tmp_path: Path) -> None:
    modules = [make_module(f"m{n}.so") for n in range(3)]
    write_symbol_tree(tmp_path / "syms", modules)
    for _ in range(2):
        worker = make_provider(tmp_path / "c", [LocalDirectorySupplier(tmp_path / "syms")])
        for module in modules + [make_module("absent.so")]:
            worker.get_symbols(module)
            worker.get_symbols(module)
        worker.close()
    result = CliRunner().invoke(cache, ["--cache-dir", str(tmp_path / "c"), "stats", "--json"])
    totals = json.loads(result.output)["totals"]
    assert totals["misses"] == 4 and totals["downloads"] == 3
    assert totals["disk_hits"] == 3 and totals["memory_hits"] == 6
    assert totals["negative_hits"] == 3
    text = CliRunner().invoke(cache, ["--cache-dir", str(tmp_path / "c"), "stats"]).output
    assert "totals.downloads: 3" in text


def test_failed_commit_does_not_stop_the_totals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counters = SharedCounters(tmp_path)
    real = counters._connect()

    class CommitFailsOnce:
        failures = 1

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def execute(self, sql: str, *args: Any) -> Any:
            if sql == "COMMIT" and self.failures:
                self.failures -= 1
                raise sqlite3.OperationalError("database is locked")
            return real.execute(sql, *args)

    connection = CommitFailsOnce()
    monkeypatch.setattr(counters, "_connect", lambda: connection)
    with pytest.raises(sqlite3.OperationalError):
        counters.add({"downloads": 1})
    counters.add({"downloads": 2})
    assert counters.read() == {"downloads": 2}
