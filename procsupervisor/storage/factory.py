"""Builds the configured source, destinations and metrics; backends are imported lazily."""

from __future__ import annotations

from typing import TYPE_CHECKING

from procsupervisor.metrics import Metrics, NullMetrics
from procsupervisor.queues.factory import load_class
from procsupervisor.storage.base import CrashDestination, CrashSource

if TYPE_CHECKING:
    from procsupervisor.config import Config

SOURCE_BACKENDS: dict[str, str] = {
    "fs": "procsupervisor.storage.fs:FSCrashStorage",
    "s3": "procsupervisor.storage.s3:S3CrashStorage",
}

DESTINATION_BACKENDS: dict[str, str] = {
    **SOURCE_BACKENDS,
    "postgres": "procsupervisor.storage.postgres:PostgresCrashStorage",
    "elasticsearch": "procsupervisor.storage.elasticsearch:ESCrashStorage",
}


def make_source(config: Config, metrics: Metrics) -> CrashSource:
    cls = load_class(SOURCE_BACKENDS[config.source_backend])
    source = cls.from_options(config.source, data_dir=config.data_dir, metrics=metrics)
    assert isinstance(source, CrashSource)
    return source


def make_destinations(config: Config, metrics: Metrics) -> list[CrashDestination]:
    """One destination per name in [destinations] order, each given its own prefixed keys."""
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
