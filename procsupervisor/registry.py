"""Which class each name in the config stands for, as "module:Name" specs, and their loader.

Only strings live here, so the configuration can check the names it is given and
`backends.py` can build them, without either importing a backend: a deployment that never
uses S3 never imports boto3, and no import loop can run through a backend.
"""

from __future__ import annotations

import importlib

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
