"""Issue 13 item 6: deeply nested (or huge) raw crash JSON gets one clear error from `submit`
and is dead-lettered with the reason by a worker, never a RecursionError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _core_helpers import SupervisorProcess, dead_letters, make_raw_crash, write_config
from click.testing import CliRunner

from procsupervisor import bounded_json, cli, crashid
from procsupervisor.intake import submit_crash
from procsupervisor.queues.fs import FSQueue
from procsupervisor.storage.fs import FSCrashStorage

DEEP = '{"a":' * 200_000  # unterminated too: the depth is refused before parsing


def nested(levels: int) -> str:
    return '{"a":' * (levels - 1) + "[1]" + "}" * (levels - 1)


def test_the_depth_bound_is_exact() -> None:
    assert bounded_json.loads(nested(bounded_json.MAX_JSON_DEPTH), "x")
    with pytest.raises(bounded_json.JSONTooComplex, match="nested deeper than 100 levels"):
        bounded_json.loads(nested(bounded_json.MAX_JSON_DEPTH + 1), "x")
    # brackets inside strings are text, not nesting
    assert bounded_json.loads(json.dumps({"s": "[" * 10_000 + '\\"{'}), "x")


def test_submit_refuses_deep_or_huge_json_in_one_line(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in __import__("os").environ if n.startswith("PROCSUPERVISOR_")]:
        monkeypatch.delenv(name)
    deep, huge = tmp_path / "deep.json", tmp_path / "huge.json"
    deep.write_text(DEEP)
    huge.write_text('{"a": "' + "x" * bounded_json.MAX_JSON_BYTES + '"}')
    runner = CliRunner()
    for path, said in ((deep, "is nested deeper than 100 levels"),
                       (huge, f"is larger than {bounded_json.MAX_JSON_BYTES} bytes")):
        result = runner.invoke(cli.main, ["--data-dir", str(tmp_path / "data"), "submit",
                                          str(path)])
        assert result.exit_code == 1
        assert result.output.strip().startswith(f"Error: raw crash {path} {said}")
        assert len(result.output.strip().splitlines()) == 1
        assert not isinstance(result.exception, RecursionError)
    config = __import__("procsupervisor.config").config.load(None, data_dir=tmp_path / "data",
                                                             environ={})
    deep_dict: dict = {}
    node = deep_dict
    for _ in range(5000):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(ValueError, match="nested deeper than 100 levels"):
        submit_crash(config, deep_dict, {})


@pytest.mark.slow
def test_a_worker_dead_letters_a_stored_deep_raw_crash_at_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    config_path = write_config(tmp_path / "sup.ini", data_dir, workers=1, max_attempts=3)
    crash_id = crashid.create()
    storage = FSCrashStorage(data_dir / "crashes")
    storage.save_raw_crash(make_raw_crash(uuid=crash_id), {}, crash_id)
    storage.raw_crash_path(crash_id).write_text(DEEP)  # as a hostile writer would leave it
    FSQueue(data_dir / "queue").publish("normal", crash_id)
    supervisor = SupervisorProcess(config_path, data_dir).start()
    try:
        status = supervisor.wait_for(lambda s: s["totals"]["dead_lettered"] == 1,
                                     what="dead-lettered")
    finally:
        supervisor.stop()
    assert status["totals"]["retried"] == 0  # retrying cannot help: dead-lettered at once
    (letter,) = dead_letters(data_dir)
    assert letter["body"] == crash_id and letter["attempts"] == 1
    assert "nested deeper than 100 levels" in letter["reason"]
    assert "RecursionError" not in supervisor.log(tail=None)
