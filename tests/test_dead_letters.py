"""`procsupervisor dead list/show/requeue/purge` on the fs spool and on the real RabbitMQ."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from procsupervisor import cli, crashid
from procsupervisor import config as config_module
from procsupervisor.backends import make_queue
from procsupervisor.metrics import NullMetrics
from procsupervisor.queues.base import CrashQueue
from procsupervisor.supervisor.status import render


def _rabbit_section(url: str, prefix: str) -> str:
    return (
        "[queue]\nbackend = rabbitmq\n"
        f"url = {url}\n"
        + "".join(f"{q}_queue = {prefix}.{q}\n" for q in ("priority", "normal", "reprocessing"))
        + f"deadletter_queue = {prefix}.deadletter\nretry_queue = {prefix}.retry\n"
        "reconnect_backoff_s = 0.05\n"
    )


@pytest.fixture(params=["fs", "rabbitmq"])
def backend(request: pytest.FixtureRequest, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, CrashQueue]]:
    for name in list(__import__("os").environ):
        if name.startswith("PROCSUPERVISOR_"):
            monkeypatch.delenv(name)
    config_path = tmp_path / "dead.ini"
    text = f"[supervisor]\ndata_dir = {tmp_path / 'data'}\n"
    prefix = ""
    if request.param == "rabbitmq":
        url = request.getfixturevalue("rabbitmq_url")
        prefix = f"pstest-dead-{uuid.uuid4().hex[:8]}"
        text += _rabbit_section(url, prefix)
    config_path.write_text(text)
    queue = make_queue(config_module.load(config_path, environ={}), NullMetrics())
    yield config_path, queue
    queue.close()
    if prefix:
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(url))
        channel = connection.channel()
        for name in ("priority", "normal", "reprocessing", "deadletter"):
            channel.queue_delete(f"{prefix}.{name}")
        connection.close()


def _dead_letter(queue: CrashQueue, name: str, body: str, attempt: int, reason: str) -> None:
    queue.publish(name, body)
    delivery = None
    for _ in range(200):  # the fs listing and the broker answer within a few polls
        queue.poll()
        delivery = queue.get(name)
        if delivery is not None:
            break
        __import__("time").sleep(0.02)
    assert delivery is not None and delivery.body == body
    delivery.attempt = attempt
    queue.dead_letter(delivery, reason)


def _invoke(config_path: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli.main, ["--config", str(config_path), *args])
    assert result.exit_code == code, (result.output, result.exception)
    return result.output


def test_list_show_requeue_and_purge(backend: tuple[Path, CrashQueue]) -> None:
    config_path, queue = backend
    first, second, third = (crashid.create() for _ in range(3))
    long_reason = "invalid: unreadable crash: " + "x" * 200
    _dead_letter(queue, "priority", first, 3, "transient after 3 attempts: postgres: down")
    _dead_letter(queue, "normal", second, 1, long_reason)
    _dead_letter(queue, "reprocessing", f"{third}:regenerate_signature", 2, "not_found")

    letters: list[dict[str, Any]] = json.loads(_invoke(config_path, "dead", "list", "--json"))
    assert [(d["crash_id"], d["queue"], d["attempts"]) for d in letters] == [
        (first, "priority", 3), (second, "normal", 1), (third, "reprocessing", 2)]
    assert letters[2]["body"] == f"{third}:regenerate_signature"
    assert letters[1]["reason"] == long_reason and all(d["dead_lettered_at"] for d in letters)
    ids = [d["letter_id"] for d in letters]
    assert len(set(ids)) == 3

    table = _invoke(config_path, "dead", "list", "--limit", "2")
    assert ids[0] in table and ids[1] in table and ids[2] not in table
    assert "2 of 3 dead letter(s)" in table and "x" * 200 not in table  # reasons are cut

    shown = _invoke(config_path, "dead", "show", ids[1])
    assert long_reason in shown and second in shown
    assert json.loads(_invoke(config_path, "dead", "show", ids[0], "--json"))["attempts"] == 3
    missing = _invoke(config_path, "dead", "show", "no-such-id", code=1)
    assert missing.count("\n") == 1 and "no dead letter 'no-such-id'" in missing

    assert "requeued 1" in _invoke(config_path, "dead", "requeue", ids[0])
    assert queue.depths()["priority"] == 1  # back on its origin queue
    left = json.loads(_invoke(config_path, "dead", "list", "--json"))
    assert [d["letter_id"] for d in left] == ids[1:]  # the others untouched, in order

    purged = _invoke(config_path, "dead", "purge", ids[1], "nope", code=1)
    assert "purged 1" in purged
    assert "not purged (no such dead letter, or unreadable): nope" in purged
    assert [d["letter_id"] for d in json.loads(_invoke(config_path, "dead", "list", "--json"))
            ] == ids[2:]

    assert "Usage" in _invoke(config_path, "dead", "requeue", code=2)
    assert "requeued 1" in _invoke(config_path, "dead", "requeue", "--all")
    assert _invoke(config_path, "dead", "list").strip() == "no dead letters"
    again = None
    for _ in range(200):
        queue.poll()
        again = queue.get("reprocessing")
        if again is not None:
            break
        __import__("time").sleep(0.02)
    assert again is not None and again.body == f"{third}:regenerate_signature"
    assert again.attempt == 1
    queue.ack(again)


def test_fs_lists_a_damaged_letter_so_it_can_be_purged(tmp_path: Path) -> None:
    from procsupervisor.queues.fs import FSQueue

    queue = FSQueue(tmp_path / "spool")
    (queue.spool / "deadletter" / f"{1:020d}-1-0").write_text("{not json")
    [letter] = queue.list_dead()
    assert letter.body == "" and letter.reason.startswith("unreadable dead letter")
    assert queue.requeue_dead_letters([letter.letter_id]) == set()
    assert queue.find_dead(["../../etc/passwd", "x"]) == {}
    assert queue.purge_dead([letter.letter_id]) == {letter.letter_id}
    assert queue.dead_letter_count() == 0


def test_text_status_shows_the_dead_letter_depth() -> None:
    status = {
        "pid": 1, "uptime_s": 1.0, "config": None, "reloads": 0, "target_workers": 0,
        "workers": [], "queues": {}, "queue_depths": {}, "dead_letters": 4,
        "totals": {"processed": 0, "failed": 0, "retried": 0, "dead_lettered": 0, "per_s": 0},
    }
    assert "dead letters waiting: 4  (procsupervisor dead list)" in render(status)
