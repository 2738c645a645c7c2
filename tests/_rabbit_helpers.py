"""RabbitMQ helpers for the supervisor tests: unique queue names, and closing one supervisor's
own broker connection with `rabbitmqctl` (never any other connection, never a server restart)."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from dataclasses import dataclass

import pytest

LOGICAL_QUEUES = ("priority", "normal", "reprocessing")


@dataclass
class RabbitQueues:
    """Queue names no other test uses, and the [queue] lines that select them."""

    url: str
    prefix: str

    @classmethod
    def unique(cls, url: str, stem: str = "pstest") -> RabbitQueues:
        return cls(url, f"{stem}-{uuid.uuid4().hex[:8]}")

    @property
    def names(self) -> list[str]:
        return [*(f"{self.prefix}.{q}" for q in LOGICAL_QUEUES), f"{self.prefix}.deadletter"]

    def config_lines(self) -> str:
        return (
            "backend = rabbitmq\n"
            f"url = {self.url}\n"
            + "".join(f"{q}_queue = {self.prefix}.{q}\n" for q in LOGICAL_QUEUES)
            + f"deadletter_queue = {self.prefix}.deadletter\n"
            f"retry_queue = {self.prefix}.retry\n"
            # Reconnect at once after a forced close: the tests wait for the redelivery.
            "reconnect_backoff_s = 0.1, 0.2, 0.5\n"
        )

    def dead_letters(self) -> list[tuple[str, dict]]:
        """(body, headers) of every dead letter, read without taking them."""
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            channel = connection.channel()
            letters = []
            while True:
                method, properties, body = channel.basic_get(f"{self.prefix}.deadletter")
                if method is None:
                    break
                letters.append((body.decode(), dict(properties.headers or {})))
            channel.close()  # unacked: the broker keeps them
        finally:
            connection.close()
        return letters

    def delete(self) -> None:
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            channel = connection.channel()
            for name in self.names:
                channel.queue_delete(name)
        finally:
            connection.close()


def require_rabbitmqctl() -> None:
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl not available to close a broker connection")


def close_supervisor_connection(supervisor_pid: int) -> bool:
    """Close the broker connection a supervisor named `procsupervisor pid <pid>`; False if
    the broker lists none (it is reconnecting)."""
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "pid", "client_properties"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout
    wanted = f'{{"connection_name","procsupervisor pid {supervisor_pid}"}}'
    for line in listed.splitlines():
        if wanted in line:
            connection = line.split("\t", 1)[0]
            subprocess.run(
                ["rabbitmqctl", "-q", "close_connection", connection, "test: forced close"],
                capture_output=True, text=True, timeout=30, check=True,
            )
            return True
    return False
