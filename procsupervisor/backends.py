"""The one place that turns backend names from the config into objects.

Holds the registries of queue, source and destination backends and the metrics client.
Backends are named by "module:Class" strings and imported only when chosen, so a deployment
that never uses S3 never imports boto3, and nothing here depends on any particular backend.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from procsupervisor.metrics import Metrics, NullMetrics

if TYPE_CHECKING:
    from procsupervisor.config import Config
    from procsupervisor.queues.base import CrashQueue
    from procsupervisor.storage.base import CrashDestination, CrashSource

QUEUE_BACKENDS: dict[str, str] = {
    "fs": "procsupervisor.queues.fs:FSQueue",
    "rabbitmq": "procsupervisor.queues.rabbitmq:RabbitMQQueue",
}

SOURCE_BACKENDS: dict[str, str] = {
    "fs": "procsupervisor.storage.fs:FSCrashStorage",
    "s3": "procsupervisor.storage.s3:S3CrashStorage",
}

DESTINATION_BACKENDS: dict[str, str] = {
    **SOURCE_BACKENDS,
    "postgres": "procsupervisor.storage.postgres:PostgresCrashStorage",
    "elasticsearch": "procsupervisor.storage.elasticsearch:ESCrashStorage",
}


def load_class(spec: str) -> type:
    """Import "module:Name" and return the attribute."""
    module_name, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def make_queue(config: Config, metrics: Metrics) -> CrashQueue:
    from procsupervisor.queues.base import CrashQueue

    cls = load_class(QUEUE_BACKENDS[config.queue_backend])
    queue = cls.from_options(config.queue, data_dir=config.data_dir, metrics=metrics)
    assert isinstance(queue, CrashQueue)
    return queue


def make_source(config: Config, metrics: Metrics) -> CrashSource:
    from procsupervisor.storage.base import CrashSource

    cls = load_class(SOURCE_BACKENDS[config.source_backend])
    source = cls.from_options(config.source, data_dir=config.data_dir, metrics=metrics)
    assert isinstance(source, CrashSource)
    return source


def make_destinations(config: Config, metrics: Metrics) -> list[CrashDestination]:
    """One destination per name in [destinations] order, each given its own prefixed keys."""
    from procsupervisor.storage.base import CrashDestination

    destinations = []
    for name in config.destination_order:
        cls = load_class(DESTINATION_BACKENDS[name])
        options = config.destination_options(name)
        destination = cls.from_options(options, data_dir=config.data_dir, metrics=metrics)
        assert isinstance(destination, CrashDestination)
        destinations.append(destination)
    return destinations


def make_metrics(config: Config) -> Metrics:
    if not (config.statsd.get("host") or "").strip():
        return NullMetrics()
    from procsupervisor.metrics import metrics_from_options

    return metrics_from_options(config.statsd)
