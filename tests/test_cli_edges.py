"""CLI edges: `submit` never orphans a crash silently, a missing bucket is one line,
`enqueue -` reads ids from stdin."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from _backend_helpers import AWS_TEST_ENV, MotoProcess, free_port, unique_name
from click.testing import CliRunner

from procsupervisor import cli, crashid
from procsupervisor.queues.fs import FSQueue


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("PROCSUPERVISOR_"):
            monkeypatch.delenv(name)


def _invoke(*args: str, code: int, stdin: str | None = None) -> str:
    result = CliRunner().invoke(cli.main, list(args), input=stdin)
    assert result.exit_code == code, (result.output, result.exception)
    return result.output


def test_enqueue_reads_ids_from_stdin(clean_env: None, tmp_path: Path) -> None:
    first, second, third = (crashid.create() for _ in range(3))
    stdin = f"{first}\n# a comment line\n{second}:regenerate_signature  {third}  # trailing\n\n"
    data = ["--data-dir", str(tmp_path / "data")]
    out = _invoke(*data, "enqueue", "-", "-q", "reprocessing", code=0, stdin=stdin)
    assert "queued 3 on reprocessing" in out
    queue = FSQueue(tmp_path / "data" / "queue")
    bodies = [queue.get("reprocessing").body for _ in range(3)]
    assert bodies == [first, f"{second}:regenerate_signature", third]
    # every id is checked before any is queued, stdin ones too
    bad = _invoke(*data, "enqueue", "-", code=1, stdin=f"{first}\nnot-an-id\n")
    assert "invalid crash id: 'not-an-id'" in bad and queue.depths()["normal"] == 0


def test_submit_prints_the_id_and_the_enqueue_command_when_queueing_fails(
    clean_env: None, tmp_path: Path
) -> None:
    closed_port = free_port()  # nothing listens: the broker is "down"
    config_path = tmp_path / "sub.ini"
    config_path.write_text(
        f"[supervisor]\ndata_dir = {tmp_path / 'data'}\n"
        "[queue]\nbackend = rabbitmq\n"
        f"url = amqp://guest:guest@127.0.0.1:{closed_port}/%2F\n"
        "reconnect_backoff_s = 0.05\nsocket_timeout_s = 1\n"
    )
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps({"ProductName": "Firefox"}))
    out = _invoke("--config", str(config_path), "submit", str(raw), "-q", "priority", code=1)
    crash_id, error = out.splitlines()  # the id, then one error line
    assert crashid.is_valid(crash_id)
    assert error.startswith(f"Error: crash {crash_id} is stored but could not be queued: ")
    assert f"127.0.0.1:{closed_port}" in error
    command = error.split("queue it with: ", 1)[1]
    assert shlex.split(command) == [
        "procsupervisor", "--config", str(config_path), "enqueue", crash_id, "--queue",
        "priority",
    ]
    stored = tmp_path / "data" / "crashes" / "v2" / "raw_crash"
    assert [p.name for p in stored.rglob(crash_id)] == [crash_id]  # stored, not lost


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[MotoProcess]:
    server = MotoProcess().start()
    yield server
    server.stop()


def test_submit_to_a_missing_bucket_is_one_line_and_queues_nothing(
    clean_env: None, moto_s3: MotoProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(key, value)
    bucket = unique_name("missing").replace("_", "-")
    config_path = tmp_path / "s3.ini"
    config_path.write_text(
        f"[supervisor]\ndata_dir = {tmp_path / 'data'}\n"
        f"[source]\nbackend = s3\nbucket = {bucket}\nendpoint_url = {moto_s3.endpoint_url}\n"
        "region = us-east-1\n"
    )
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps({"ProductName": "Firefox"}))
    out = _invoke("--config", str(config_path), "submit", str(raw), code=1)
    assert out.count("\n") == 1 and "Traceback" not in out
    assert out.startswith("Error: cannot store crash ") and "NoSuchBucket" in out
    assert FSQueue(tmp_path / "data" / "queue").depths()["normal"] == 0
