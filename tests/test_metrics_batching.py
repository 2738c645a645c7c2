"""statsd the way an operator graphs it: per-crash metrics batched into few datagrams (counted
with a real UDP listener, unbatched against batched), and gauges from the supervisor loop
every few seconds, also while idle."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import pytest
from _backend_helpers import StatsdListener, tiny_minidump
from _core_helpers import SupervisorProcess, acked_total, make_raw_crash, submit, write_config

from procsupervisor import config as config_module
from procsupervisor.metrics import StatsdMetrics, batched


@pytest.fixture
def listener() -> Iterator[StatsdListener]:
    running = StatsdListener()
    yield running
    running.close()


def _settle(listener: StatsdListener, quiet_s: float = 0.3, timeout_s: float = 5.0) -> None:
    """Wait until no datagram arrived for `quiet_s`."""
    deadline = time.monotonic() + timeout_s
    seen, since = listener.datagrams, time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.02)
        if listener.datagrams != seen:
            seen, since = listener.datagrams, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return


def test_a_batch_packs_lines_up_to_the_datagram_limit(listener: StatsdListener) -> None:
    metrics = StatsdMetrics("127.0.0.1", listener.port, prefix="socorro", max_udp_bytes=512)
    with batched(metrics):
        for index in range(40):
            metrics.timing(f"processor.rule.rule_number_{index}", index, tags={"ruleset": "d"})
        with batched(metrics):  # nested: the outer batch sends
            metrics.gauge("processor.delta", -2)
        assert listener.datagrams == 0  # nothing leaves before the batch ends
    lines = listener.wait_for(42)
    _settle(listener)
    assert len(lines) == 42 and lines[-2:] == ["socorro.processor.delta:0|g",
                                                "socorro.processor.delta:-2|g"]
    size = sum(len(line) + 1 for line in lines)
    assert listener.datagrams <= math.ceil(size / 400)  # each datagram nearly full
    metrics.close()


def test_close_sends_an_open_batch(listener: StatsdListener) -> None:
    metrics = StatsdMetrics("127.0.0.1", listener.port)
    with batched(metrics):
        metrics.incr("one")
        metrics.close()  # e.g. a reload replacing the client mid-turn
    assert listener.wait_for(1) == ["one:1|c"]


def test_one_crash_sends_few_datagrams_when_batched(listener: StatsdListener,
                                                    tmp_path: Path) -> None:
    from procsupervisor.intake import submit_crash
    from procsupervisor.workers.crash_handler import CrashHandler

    config_path = tmp_path / "m.ini"
    config_path.write_text(
        f"[supervisor]\ndata_dir = {tmp_path / 'data'}\n"
        f"[statsd]\nhost = 127.0.0.1\nport = {listener.port}\nprefix = socorro\n")
    config = config_module.load(config_path, environ={})
    handler = CrashHandler(config)
    counts = {}
    try:
        # The first crash of a worker also counts its symbol cache's first miss: both measured
        # crashes come after it, so they send the same metrics.
        warm_up = submit_crash(config, make_raw_crash(), {"upload_file_minidump": tiny_minidump()})
        assert handler.handle(warm_up).outcome == "ok"
        for batch in (False, True):
            crash_id = submit_crash(config, make_raw_crash(),
                                    {"upload_file_minidump": tiny_minidump()})
            _settle(listener)
            datagrams, lines = listener.datagrams, len(listener.lines)
            with batched(handler.metrics) if batch else nullcontext():
                assert handler.handle(crash_id).outcome == "ok"
            _settle(listener)
            counts[batch] = (listener.datagrams - datagrams, len(listener.lines) - lines)
    finally:
        handler.close()
    (unbatched_datagrams, unbatched_lines), (batched_datagrams, batched_lines) = counts.values()
    print(f"per crash: {unbatched_datagrams} datagrams unbatched, {batched_datagrams} batched,"
          f" {batched_lines} metric lines")
    assert unbatched_datagrams == unbatched_lines >= 30  # one datagram per metric before
    assert batched_lines == unbatched_lines
    assert batched_datagrams * 5 <= batched_lines  # at least five lines per datagram


@pytest.mark.slow
def test_supervisor_sends_gauges_while_idle_and_few_datagrams_per_crash(
    listener: StatsdListener, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    config_path = write_config(
        tmp_path / "g.ini", data_dir, workers=2,
        extra=f"[statsd]\nhost = 127.0.0.1\nport = {listener.port}\nprefix = ps\n"
              "gauge_interval_s = 1\n")
    supervisor = SupervisorProcess(config_path, data_dir)
    try:
        supervisor.start()
        deadline = time.monotonic() + 30
        heartbeat = "ps.supervisor.heartbeat:1|c"
        while time.monotonic() < deadline and listener.lines.count(heartbeat) < 3:
            time.sleep(0.05)  # idle: nothing is queued, the gauges still come
        lines = list(listener.lines)
        assert lines.count(heartbeat) >= 3
        for expected in ("ps.supervisor.workers.total:2|g", "ps.supervisor.workers.up:2|g",
                         "ps.supervisor.workers.busy:0|g", "ps.supervisor.workers.target:2|g",
                         "ps.supervisor.queue_depth.normal:0|g",
                         "ps.supervisor.queue_depth.deadletter:0|g",
                         "ps.supervisor.workers.restarts:0|g"):
            assert expected in lines, (expected, lines)
        assert any(line.startswith("ps.supervisor.uptime_s:") for line in lines)

        submit(config_path)  # one crash through the real pool
        supervisor.wait_for(lambda s: acked_total(s) == 1, what="crash processed")
        processed = [line for line in listener.lines if ".process_crash:" in line]
        assert processed, "the worker's per-crash metrics arrived"
    finally:
        supervisor.stop()


def test_metrics_listen_must_be_loopback() -> None:
    from procsupervisor.supervisor.prometheus import MetricsEndpointError, parse_listen

    assert parse_listen("127.0.0.1:9187") == ("127.0.0.1", 9187)
    assert parse_listen("[::1]:9187") == ("::1", 9187)
    for bad in ("0.0.0.0:9187", "10.1.2.3:80", "127.0.0.1", "localhost:99999"):
        with pytest.raises(MetricsEndpointError):
            parse_listen(bad)


@pytest.mark.slow
def test_prometheus_endpoint_served_from_the_loop(tmp_path: Path) -> None:
    import urllib.error
    import urllib.request

    from _backend_helpers import free_port

    port = free_port()
    data_dir = tmp_path / "data"
    config_path = write_config(tmp_path / "p.ini", data_dir, workers=2)
    config_path.write_text(config_path.read_text().replace(
        "[supervisor]\n", f"[supervisor]\nmetrics_listen = 127.0.0.1:{port}\n", 1))
    supervisor = SupervisorProcess(config_path, data_dir)
    try:
        supervisor.start()
        submit(config_path)
        supervisor.wait_for(lambda s: acked_total(s) == 1, what="crash processed")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
            assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = reply.read().decode()
        lines = text.splitlines()
        for expected in ("# TYPE procsupervisor_workers_busy gauge",
                         "procsupervisor_workers_up 2",
                         'procsupervisor_queue_depth{queue="normal"} 0',
                         'procsupervisor_queue_depth{queue="deadletter"} 0',
                         "# TYPE procsupervisor_crashes_processed_total counter",
                         "procsupervisor_crashes_processed_total 1"):
            assert expected in lines, (expected, text)
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=10)
        assert missing.value.code == 404
        assert supervisor.status()["pid"] == supervisor.pid  # the loop is still serving
    finally:
        supervisor.stop()
