"""scripts/example-production.ini stays loadable, and every backend it names accepts its keys."""

from __future__ import annotations

from pathlib import Path

from procsupervisor import config
from procsupervisor.backends import make_destinations, make_source
from procsupervisor.cache.settings import SymbolCacheSettings
from procsupervisor.metrics import StatsdMetrics, metrics_from_options
from procsupervisor.queues.rabbitmq import RabbitMQQueue
from procsupervisor.storage.elasticsearch import ESCrashStorage
from procsupervisor.storage.postgres import PostgresCrashStorage
from procsupervisor.storage.s3 import S3CrashStorage

EXAMPLE = Path(__file__).resolve().parent.parent / "scripts" / "example-production.ini"


def test_example_config_builds_every_backend() -> None:
    loaded = config.load(EXAMPLE, environ={})
    metrics = metrics_from_options(loaded.statsd)
    assert isinstance(metrics, StatsdMetrics)
    queue = RabbitMQQueue.from_options(loaded.queue, data_dir=loaded.data_dir, metrics=metrics)
    assert queue.names["normal"] == "socorro.normal" and not queue.quorum
    assert isinstance(make_source(loaded, metrics), S3CrashStorage)
    kinds = [type(d) for d in make_destinations(loaded, metrics)]
    assert kinds == [PostgresCrashStorage, S3CrashStorage, ESCrashStorage]
    es = make_destinations(loaded, metrics)[2]
    assert isinstance(es, ESCrashStorage) and len(es.urls) == 2
    SymbolCacheSettings.from_section(loaded.symbols, loaded.data_dir)
    metrics.close()


def test_every_key_is_commented() -> None:
    lines = EXAMPLE.read_text().splitlines()
    for number, line in enumerate(lines):
        if not line or line.startswith(("#", "[")):
            continue
        # a key is explained by the comment block above it, or shares the block of the key above
        above = number - 1
        while above >= 0 and lines[above] and not lines[above].startswith("#"):
            above -= 1
        assert above >= 0 and lines[above].startswith("#"), f"uncommented key: {line}"
