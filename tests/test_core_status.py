"""Status counters and the plain-text rendering of a status reply."""

from __future__ import annotations

from procsupervisor.supervisor.status import Counters, aggregate_cache_stats, render


def test_counters_snapshot() -> None:
    counters = Counters(["priority", "normal"])
    counters.queue("normal").pulled += 2
    counters.queue("normal").acked += 1
    counters.queue("normal").retried += 1
    counters.completed(ok=True)
    counters.completed(ok=False)
    queues, totals = counters.snapshot(uptime_s=0.5)
    assert queues["normal"] == {"pulled": 2, "acked": 1, "retried": 1, "dead_lettered": 0}
    assert totals["processed"] == 1 and totals["failed"] == 1 and totals["retried"] == 1
    assert totals["per_s"] == 2.0  # one crash in the half second the supervisor has been up


def test_the_rate_window_stays_bounded_without_status_requests(monkeypatch) -> None:
    from types import SimpleNamespace

    from procsupervisor.supervisor import status as status_module

    clock = [1000.0]
    monkeypatch.setattr(status_module, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    counters = Counters(["normal"])
    for _ in range(1000):  # 50 crashes/s for 20 s, twice the rate window
        counters.completed(ok=True)
        clock[0] += 0.02
    assert len(counters._completions) <= 501  # only the last RATE_WINDOW_S of completions
    assert counters.per_s(uptime_s=20.0) == 50.0
    assert counters.processed == 1000


def test_cache_stats_are_summed_over_workers() -> None:
    total = aggregate_cache_stats([{"hits": 2, "name": "x", "ok": True}, {"hits": 3, "bytes": 1.5}])
    assert total == {"hits": 5, "bytes": 1.5}


def test_shared_disk_cache_figures_are_not_multiplied_by_workers() -> None:
    per_worker = {"memory_hits": 4, "size_bytes": 1000, "entries": 3, "size_limit_bytes": 4096}
    later = {"memory_hits": 1, "size_bytes": 1200, "entries": 4, "size_limit_bytes": 4096}
    total = aggregate_cache_stats([per_worker, later])
    assert total == {"memory_hits": 5, "size_bytes": 1200, "entries": 4, "size_limit_bytes": 4096}


def test_render_shows_workers_queues_and_totals() -> None:
    status = {
        "pid": 42, "uptime_s": 12.0, "config": None, "reloads": 1, "target_workers": 1,
        "last_reload_error": "bad.ini: section [supervisor], key 'workers': ...",
        "workers": [{"index": 0, "pid": 43, "state": "busy", "busy_s": 1.25, "processed": 7,
                     "failed": 1, "restarts": 2, "rss_bytes": 50 * 1048576,
                     "crash_id": "de1bb258-cbbf-4589-a673-34f802160918"}],
        "queues": {"normal": {"pulled": 9, "acked": 7, "retried": 1, "dead_lettered": 1}},
        "queue_depths": {"normal": 3},
        "totals": {"processed": 7, "failed": 1, "retried": 1, "dead_lettered": 1, "per_s": 0.5},
        "symbol_cache": {"misses": 2, "memory_hits": 5, "disk_hits": 1, "corrupt": 1,
                         "supplier_errors": 2, "size_bytes": 3 * 2**20, "entries": 4},
    }
    text = render(status)
    assert "supervisor pid 42" in text and "(embedded defaults)" in text
    assert "last reload failed: bad.ini" in text
    assert "de1bb258-cbbf-4589-a673-34f802160918" in text and "50.0" in text
    normal_row = next(line for line in text.splitlines() if line.startswith("normal"))
    assert normal_row.split() == ["normal", "3", "9", "7", "1", "1"]
    assert "processed 7" in text
    assert "symbol cache: hits 6 (memory 5, disk 1)  misses 2" in text
    assert "size 3.0 of 0.0 MiB, 4 entries" in text and "errors 3" in text
