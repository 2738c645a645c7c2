"""statsd metrics: the packets a UDP listener receives."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _backend_helpers import StatsdListener

from procsupervisor.metrics import NullMetrics, StatsdMetrics, metrics_from_options


@pytest.fixture
def listener() -> Iterator[StatsdListener]:
    running = StatsdListener()
    yield running
    running.close()


def test_no_host_means_null_metrics() -> None:
    assert isinstance(metrics_from_options({}), NullMetrics)
    assert isinstance(metrics_from_options({"host": " ", "prefix": "socorro"}), NullMetrics)


def test_socorro_names_under_prefix_with_dogstatsd_tags(listener: StatsdListener) -> None:
    metrics = metrics_from_options(
        {"host": "127.0.0.1", "port": str(listener.port), "prefix": "socorro"}
    )
    metrics.incr("processor.save_processed_crash")
    metrics.timing("processor.process_crash", 12.5, tags={"ruleset": "default"})
    metrics.gauge("processor.cache_manager.usage", 1024)
    metrics.histogram("processor.es.crash_document_size", 2048)
    metrics.incr("processor.minidumpstackwalk.run", tags={"outcome": "ok", "exitcode": "0"})
    lines = listener.wait_for(5)
    metrics.close()
    assert lines == [
        "socorro.processor.save_processed_crash:1|c",
        "socorro.processor.process_crash:12.500000|ms|#ruleset:default",
        "socorro.processor.cache_manager.usage:1024|g",
        "socorro.processor.es.crash_document_size:2048|h",
        "socorro.processor.minidumpstackwalk.run:1|c|#outcome:ok,exitcode:0",
    ]


def test_plain_statsd_drops_tags_and_sends_histograms_as_timers(listener: StatsdListener) -> None:
    metrics = StatsdMetrics("127.0.0.1", listener.port, prefix="", tag_format="none")
    metrics.incr("processor.es.indexerror", tags={"error": "unhandled"})
    metrics.histogram("processor.es.crash_document_size", 10)
    metrics.gauge("processor.cache_manager.delta", -3)
    lines = listener.wait_for(4)
    metrics.close()
    assert lines == [
        "processor.es.indexerror:1|c",
        "processor.es.crash_document_size:10.000000|ms",
        "processor.cache_manager.delta:0|g",
        "processor.cache_manager.delta:-3|g",
    ]


def test_protocol_characters_cannot_forge_metrics(listener: StatsdListener) -> None:
    metrics = StatsdMetrics("127.0.0.1", listener.port, prefix="p")
    metrics.incr("a:1|c\nb", tags={"rule|x": "v,1#2"})
    lines = listener.wait_for(1)
    metrics.close()
    assert lines == ["p.a_1_c_b:1|c|#rule_x:v_1_2"]


def test_unknown_tag_format_is_refused() -> None:
    with pytest.raises(ValueError, match="tag_format"):
        metrics_from_options({"host": "127.0.0.1", "tag_format": "influx"})
