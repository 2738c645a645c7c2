"""CLI commands that work without a running supervisor, and the lazy command groups."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from procsupervisor import cli, crashid
from procsupervisor.queues.fs import FSQueue


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in list(__import__("os").environ):
        if name.startswith("PROCSUPERVISOR_"):
            monkeypatch.delenv(name)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli.main, ["--data-dir", str(tmp_path / "data"), *args])
        assert result.exit_code == code, (result.output, result.exception)
        return result.output

    return invoke


def test_submit_assigns_an_id_stores_and_queues(run, tmp_path: Path) -> None:
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps({"ProductName": "Firefox"}))
    dump, extra = tmp_path / "a.dmp", tmp_path / "b.dmp"
    dump.write_bytes(b"MDMP")
    extra.write_bytes(b"MEM")
    out = run("submit", str(raw), str(dump), f"memory_report={extra}", "--queue", "priority")
    cid = out.strip()
    assert crashid.is_valid(cid)
    root = tmp_path / "data" / "crashes"
    stored = json.loads(
        (root / "v2" / "raw_crash" / cid[:3]).glob("*/" + cid).__next__().read_text()
    )
    assert stored["uuid"] == cid
    assert (root / "v1" / "dump" / cid).read_bytes() == b"MDMP"
    assert (root / "v1" / "memory_report" / cid).read_bytes() == b"MEM"
    assert FSQueue(tmp_path / "data" / "queue").get("priority").body == cid


def test_submit_keeps_a_valid_uuid_and_refuses_a_bad_one(run, tmp_path: Path) -> None:
    cid = crashid.create()
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps({"uuid": cid}))
    assert run("submit", str(raw)).strip() == cid
    raw.write_text(json.dumps({"uuid": "../../x"}))
    assert "invalid uuid" in run("submit", str(raw), code=1)


def test_enqueue_validates_every_id_first(run, tmp_path: Path) -> None:
    good = crashid.create()
    assert "invalid crash id" in run("enqueue", good, "nope", code=1)
    assert FSQueue(tmp_path / "data" / "queue").depths()["normal"] == 0
    assert "queued 2" in run("enqueue", good, f"{good}:regenerate_signature", "-q", "reprocessing")
    assert "unknown queue" in run("enqueue", good, "-q", "bogus", code=1)


def test_process_inline_prints_the_processed_crash(run, tmp_path: Path) -> None:
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps({"ProductName": "Firefox", "Version": "1.0"}))
    cid = run("submit", str(raw)).strip()
    dry = run("process", cid, "--no-save")
    assert json.loads(dry[: dry.rindex("}") + 1])["uuid"] == cid
    assert not (tmp_path / "data" / "crashes" / "v1" / "processed_crash" / cid).exists()
    out = run("process", cid)
    processed = json.loads(out[: out.rindex("}") + 1])
    assert processed["uuid"] == cid and processed["product"] == "Firefox"
    assert (tmp_path / "data" / "crashes" / "v1" / "processed_crash" / cid).exists()
    assert "invalid crash id" in run("process", "bad", code=1)


def test_requeue_dead(run, tmp_path: Path) -> None:
    queue = FSQueue(tmp_path / "data" / "queue")
    queue.publish("normal", crashid.create())
    queue.dead_letter(queue.get("normal"), "test")
    assert "requeued 1" in run("requeue-dead")
    assert queue.depths()["normal"] == 1


def test_control_commands_without_a_supervisor_fail_clearly(run) -> None:
    for args in (["status"], ["reload"], ["stop"], ["scale", "2"]):
        assert "no supervisor is running" in run(*args, code=1)


def test_bad_config_is_reported_with_its_location(run, tmp_path: Path) -> None:
    ini = tmp_path / "bad.ini"
    ini.write_text("[supervisor]\nworkers = lots\n")
    out = run("status", "--config", str(ini), code=1)
    assert "section [supervisor], key 'workers'" in out


def test_lazy_commands_fail_alone(run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cli.LAZY_COMMANDS, "ghost", "procsupervisor.nowhere:ghost")
    assert "ghost" in run("--help")
    assert "unavailable" in run("ghost", "x", code=1)
    assert "requeued 0" in run("requeue-dead")


def test_every_group_reads_the_same_config_flags(run, tmp_path: Path) -> None:
    good, bad = tmp_path / "good.ini", tmp_path / "bad.ini"
    good.write_text("[supervisor]\nworkers = 1\n")
    bad.write_text("[supervisor]\nworkers = lots\n")
    # before or after the command name; the one closest to the command wins
    for args in (
        ["--config", str(bad), "requeue-dead"],
        ["--config", str(good), "requeue-dead", "--config", str(bad)],
        ["--config", str(bad), "db", "init", "--dsn", "dbname=none"],
        ["db", "migrate", "-c", str(bad)],
        ["--config", str(bad), "cache", "stats"],
        ["cache", "--config", str(bad), "stats"],
    ):
        out = run(*args, code=1)
        assert out.count("\n") == 1, (args, out)  # one line, no traceback
        assert f"{bad}: section [supervisor], key 'workers'" in out, args
    assert "requeued 0" in run("--config", str(bad), "requeue-dead", "--config", str(good))


def test_an_unparsable_config_is_one_line(run, tmp_path: Path) -> None:
    ini = tmp_path / "broken.ini"
    ini.write_text("[supervisor]\nworkers = 1\n  continued\nno equals sign here\n")
    out = run("--config", str(ini), "submit", str(ini), code=1)
    assert out.count("\n") == 1 and "cannot parse" in out
