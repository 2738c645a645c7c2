"""Shared test fixtures: where the test data is, and whether the real services are up.

Test data is read from ../shared/testdata (or $PROCSUPERVISOR_TESTDATA) and never copied into
the project. Without it, tests that need it skip, unless PROCSUPERVISOR_REQUIRE_TESTDATA=1
(set by .ci/run), in which case they fail. Services work the same way with
PROCSUPERVISOR_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def testdata_dir() -> Path | None:
    env = os.environ.get("PROCSUPERVISOR_TESTDATA")
    candidate = Path(env) if env else ROOT.parent / "shared" / "testdata"
    return candidate if (candidate / "RUNS.tsv").is_file() else None


def _missing(what: str, env_flag: str) -> None:
    if os.environ.get(env_flag) == "1":
        pytest.fail(f"{what} is required ({env_flag}=1) but is not available")
    pytest.skip(f"{what} not available")


@pytest.fixture(scope="session")
def testdata() -> Path:
    """Root of the shared test data (RUNS.tsv, dumps, symbols, raw crashes)."""
    found = testdata_dir()
    if found is None:
        _missing(
            "test data (../shared/testdata or $PROCSUPERVISOR_TESTDATA)",
            "PROCSUPERVISOR_REQUIRE_TESTDATA",
        )
    assert found is not None
    return found


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str, port: int) -> None:
    if not port_open("127.0.0.1", port):
        _missing(f"{name} on 127.0.0.1:{port}", "PROCSUPERVISOR_REQUIRE_SERVICES")


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    require_service("PostgreSQL", 5432)
    return os.environ.get(
        "PROCSUPERVISOR_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=test"
    )


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    require_service("RabbitMQ", 5672)
    return os.environ.get(
        "PROCSUPERVISOR_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
