"""Issue 13 item 2: `ID:<unknown ruleset>` is a bad request. `enqueue` refuses it (naming the
known rulesets); a worker given one anyway dead-letters it with the reason and leaves the
stored processed crash alone (it used to overwrite it with a `success: false` stub)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _core_helpers import (
    SupervisorProcess,
    acked_total,
    dead_letters,
    processed_crash,
    submit,
    write_config,
)
from click.testing import CliRunner

from procsupervisor import cli, crashid
from procsupervisor.queues.fs import FSQueue


def test_enqueue_refuses_an_unknown_ruleset_and_names_the_known_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in __import__("os").environ if n.startswith("PROCSUPERVISOR_")]:
        monkeypatch.delenv(name)
    good = crashid.create()
    result = CliRunner().invoke(
        cli.main, ["--data-dir", str(tmp_path / "data"), "enqueue", good, f"{good}:nosuch"]
    )
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: unknown ruleset 'nosuch' (known: default, regenerate_signature)"
    )
    assert FSQueue(tmp_path / "data" / "queue").depths()["normal"] == 0  # not even `good`


@pytest.mark.slow
def test_a_worker_dead_letters_an_unknown_ruleset_without_touching_stored_data(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    config_path = write_config(tmp_path / "sup.ini", data_dir, workers=1)
    supervisor = SupervisorProcess(config_path, data_dir).start()
    try:
        crash_id = submit(config_path)
        supervisor.wait_for(lambda s: acked_total(s) == 1, what="first processing")
        stored = data_dir / "crashes" / "v1" / "processed_crash" / crash_id
        before = stored.read_bytes()
        FSQueue(data_dir / "queue").publish("reprocessing", f"{crash_id}:nosuch")
        status = supervisor.wait_for(lambda s: s["totals"]["dead_lettered"] == 1,
                                     what="dead-lettered")
    finally:
        supervisor.stop()
    assert status["queues"]["reprocessing"]["retried"] == 0
    assert stored.read_bytes() == before
    assert processed_crash(data_dir, crash_id)["success"] is True
    (letter,) = dead_letters(data_dir)
    assert letter["body"] == f"{crash_id}:nosuch"
    assert letter["reason"] == "unknown ruleset 'nosuch' (known: default, regenerate_signature)"
    assert json.loads(before)["signature"] != "EMPTY: crash failed to process"
