"""The one place that turns backend names from the config into objects.

Builds the queue, the source, the destinations and the metrics client. Which class a name
stands for is in `registry.py`; a backend is imported only when chosen, so nothing here
depends on any particular backend. `load_class` is the registry's loader, also used for the
processor and the worker entry point.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from procsupervisor.metrics import Metrics, NullMetrics
from procsupervisor.registry import (
    DESTINATION_BACKENDS,
    QUEUE_BACKENDS,
    SOURCE_BACKENDS,
    load_class,
)

if TYPE_CHECKING:
    from procsupervisor.config import Config
    from procsupervisor.queues.base import CrashQueue
    from procsupervisor.storage.base import CrashDestination, CrashSource


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
