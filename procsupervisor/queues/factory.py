"""Builds the configured queue backend; backends are imported only when chosen."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from procsupervisor.metrics import Metrics
from procsupervisor.queues.base import CrashQueue

if TYPE_CHECKING:
    from procsupervisor.config import Config

QUEUE_BACKENDS: dict[str, str] = {
    "fs": "procsupervisor.queues.fs:FSQueue",
    "rabbitmq": "procsupervisor.queues.rabbitmq:RabbitMQQueue",
}


def load_class(spec: str) -> type:
    """Import "module:Name" and return the attribute."""
    module_name, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def make_queue(config: Config, metrics: Metrics) -> CrashQueue:
    cls = load_class(QUEUE_BACKENDS[config.queue_backend])
    queue = cls.from_options(config.queue, data_dir=config.data_dir, metrics=metrics)
    assert isinstance(queue, CrashQueue)
    return queue
