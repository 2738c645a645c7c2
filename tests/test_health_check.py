"""`procsupervisor check` and `start` against a good configuration and against each bad one
(issue 10): closed RabbitMQ port, wrong RabbitMQ password and vhost, wrong PostgreSQL
database, role and port, missing bucket, closed S3 endpoint. `check` prints one line per
backend and exits 0 / 1 (misconfigured) / 3 (unreachable); `start` refuses a misconfigured
backend with one line and exit 1, and starts *degraded* (status exit 3) on an unreachable one.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from _backend_helpers import MotoProcess, Stack, free_port
from _core_helpers import PYTHON, ROOT, SupervisorProcess, subprocess_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

MISCONFIGURED, UNREACHABLE = 1, 3


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[MotoProcess]:
    server = MotoProcess().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(rabbitmq_url: str, postgres_dsn: str, moto_s3: MotoProcess) -> Iterator[Stack]:
    built = Stack(
        rabbitmq_url=rabbitmq_url,
        postgres_dsn=postgres_dsn,
        admin_dsn=postgres_dsn,
        s3_endpoint=moto_s3.endpoint_url,
        es_url="http://127.0.0.1:9",  # not among these destinations
    )
    built.prepare()
    yield built
    built.cleanup()


def run_cli(config_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "procsupervisor", "--config", str(config_path), *args],
        cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=timeout,
    )


def write_config(stack: Stack, root: Path, edit: Callable[[str], str] | None = None) -> Path:
    text = stack.config_text(root / "data", workers=1, order="postgres, s3")
    if edit is not None:
        edited, text = edit(text), text
        assert edited != text, "the edit did not apply"
        text = edited
    path = root / "procsupervisor.ini"
    path.write_text(text)
    return path


def with_url(url: str, *, password: str | None = None, vhost: str | None = None,
             port: int | None = None) -> str:
    parts = urlsplit(url)
    user = parts.username or "guest"
    netloc = f"{user}:{password or parts.password}@{parts.hostname}:{port or parts.port or 5672}"
    return urlunsplit((parts.scheme, netloc, f"/{vhost}" if vhost else parts.path, "", ""))


def dsn_params(dsn: str) -> dict[str, str]:
    return dict(p.split("=", 1) for p in dsn.split())


def with_dsn(dsn: str, **changes: str) -> str:
    return " ".join(f"{k}={v}" for k, v in {**dsn_params(dsn), **changes}.items())


@dataclass
class Case:
    edit: Callable[[str], str]
    lines: tuple[str, ...]  # what `check` prints for the bad backend (any one of them)
    exit_code: int


def cases(stack: Stack) -> dict[str, Case]:
    url, dsn = stack.rabbitmq_url, stack.postgres_dsn
    host, port = dsn_params(dsn).get("host", "127.0.0.1"), dsn_params(dsn).get("port", "5432")
    closed = free_port()
    pg_failed = f'OperationalError: connection to server at "{host}", port {port} failed: FATAL:'

    def replace(old: str, new: str) -> Callable[[str], str]:
        return lambda text: text.replace(old, new)

    return {
        "rabbitmq closed port": Case(
            replace(f"url = {url}", f"url = {with_url(url, port=closed)}"),
            (f"queue rabbitmq: unreachable: ConnectionRefusedError: 127.0.0.1:{closed}",),
            UNREACHABLE,
        ),
        "rabbitmq wrong password": Case(
            replace(f"url = {url}", f"url = {with_url(url, password='wrong-password')}"),
            ("queue rabbitmq: misconfigured: ProbableAuthenticationError: ACCESS_REFUSED -"
             " Login was refused using authentication mechanism PLAIN",),
            MISCONFIGURED,
        ),
        "rabbitmq wrong vhost": Case(
            replace(f"url = {url}", f"url = {with_url(url, vhost='no_such_vhost')}"),
            ("queue rabbitmq: misconfigured: ProbableAccessDeniedError: NOT_ALLOWED -"
             " vhost no_such_vhost not found",),
            MISCONFIGURED,
        ),
        "postgres wrong database": Case(
            replace(f"postgres_dsn = {dsn}", f"postgres_dsn = {with_dsn(dsn, dbname='no_db')}"),
            (f'destination postgres: misconfigured: {pg_failed} database "no_db" does not exist',),
            MISCONFIGURED,
        ),
        "postgres wrong role": Case(
            replace(f"postgres_dsn = {dsn}", f"postgres_dsn = {with_dsn(dsn, user='no_role')}"),
            # trust authentication names the role; password authentication only the failure
            (f'destination postgres: misconfigured: {pg_failed} role "no_role" does not exist',
             f"destination postgres: misconfigured: {pg_failed} password authentication failed"
             ' for user "no_role"'),
            MISCONFIGURED,
        ),
        "postgres wrong port": Case(
            replace(f"postgres_dsn = {dsn}",
                    f"postgres_dsn = {with_dsn(dsn, host='127.0.0.1', port=str(closed))}"),
            ('destination postgres: unreachable: OperationalError: connection to server at'
             f' "127.0.0.1", port {closed} failed: Connection refused',),
            UNREACHABLE,
        ),
        "missing bucket": Case(
            replace(f"\nbucket = {stack.bucket}\n", "\nbucket = no-such-bucket-here\n"),
            ("source s3: misconfigured: NoSuchBucket:"
             " bucket 'no-such-bucket-here' does not exist",),
            MISCONFIGURED,
        ),
        "s3 closed endpoint": Case(
            replace(f"\nendpoint_url = {stack.s3_endpoint}\n",
                    f"\nendpoint_url = http://127.0.0.1:{closed}\n"),
            ("source s3: unreachable: EndpointConnectionError: Could not connect to the endpoint"
             f' URL: "http://127.0.0.1:{closed}/{stack.bucket}"',),
            UNREACHABLE,
        ),
    }


CASES = [
    "rabbitmq closed port", "rabbitmq wrong password", "rabbitmq wrong vhost",
    "postgres wrong database", "postgres wrong role", "postgres wrong port",
    "missing bucket", "s3 closed endpoint",
]


def test_check_and_start_with_a_good_config(stack: Stack, tmp_path: Path) -> None:
    config_path = write_config(stack, tmp_path)
    checked = run_cli(config_path, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.splitlines() == [
        f"config {config_path}: ok",
        "queue rabbitmq: healthy",
        "source s3: healthy",
        "destination postgres: healthy",
        "destination s3: healthy",
    ]
    supervisor = SupervisorProcess(config_path, tmp_path / "data").start()
    try:
        shown = run_cli(config_path, "status")
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert "health: healthy" in shown.stdout
        assert supervisor.status()["health"]["state"] == "healthy"
    finally:
        supervisor.stop()


@pytest.mark.parametrize("name", CASES)
def test_check_and_start_with_a_bad_config(stack: Stack, tmp_path: Path, name: str) -> None:
    case = cases(stack)[name]
    config_path = write_config(stack, tmp_path, case.edit)
    checked = run_cli(config_path, "check")
    printed = checked.stdout.splitlines()
    assert checked.returncode == case.exit_code, checked.stdout + checked.stderr
    bad = [line for line in printed[1:] if not line.endswith(": healthy")]
    assert len(bad) == 1 and bad[0] in case.lines, printed
    assert len(printed) == 5 and not checked.stderr, checked.stdout + checked.stderr
    print(f"\ncheck [{name}] exit {checked.returncode}: {bad[0]}")

    if case.exit_code == MISCONFIGURED:
        started = run_cli(config_path, "start")
        assert started.returncode == 1
        assert started.stdout == ""
        assert started.stderr.splitlines() == [f"Error: cannot start: {bad[0]}"], started.stderr
        return
    supervisor = SupervisorProcess(config_path, tmp_path / "data").start()
    try:
        status = supervisor.wait_for(lambda s: s["health"]["state"] == "degraded", 30,
                                     what="degraded")
        backend, _, cause = bad[0].partition(": unreachable: ")
        row = status["health"]["backends"][backend]
        assert (row["status"], row["cause"]) == ("unreachable", cause), row
        shown = run_cli(config_path, "status")
        assert shown.returncode == 3, shown.stdout + shown.stderr
        assert "health: degraded" in shown.stdout
        log = supervisor.log(None)
        assert f'msg="backend unreachable, starting degraded" backend="{backend}"' in log, log
        assert "AMQPConnectionError: " not in log
    finally:
        supervisor.stop()
