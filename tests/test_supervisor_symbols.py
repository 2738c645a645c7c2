"""A real supervisor whose workers meet a `.sym` file too big for their memory limit: the file is
refused once with a note on every crash that needs it, and no worker is killed or replaced."""

from __future__ import annotations

from pathlib import Path

import pytest
from _core_helpers import SupervisorProcess, acked_total, processed_crash, submit, write_config

from procsupervisor.workers.stackwalker.minidump.builder import write_demo_crash

pytestmark = pytest.mark.slow

LIMIT_MB = 100
PADDING = 40 << 20  # an INFO line: indexing the file would need more than the limit


def test_a_sym_too_big_for_worker_max_rss_mb_is_refused_with_a_note(tmp_path: Path) -> None:
    dump, root = write_demo_crash(tmp_path / "demo")
    sym = next(root.rglob("*.sym"))
    with sym.open("ab") as out:
        out.write(b"INFO " + b"x" * PADDING + b"\n")
    data_dir = tmp_path / "data"
    config_path = write_config(
        tmp_path / "sup.ini", data_dir, workers=1, extra=f"[symbols]\npaths = {root}\n"
    )
    text = config_path.read_text()
    config_path.write_text(
        text.replace("[supervisor]\n", f"[supervisor]\nworker_max_rss_mb = {LIMIT_MB}\n", 1)
    )
    ids = [submit(config_path, dumps={"upload_file_minidump": dump.read_bytes()}) for _ in range(3)]
    supervisor = SupervisorProcess(config_path, data_dir)
    try:
        first = supervisor.start().status()["workers"][0]
        status = supervisor.wait_for(lambda s: acked_total(s) == 3, timeout=120, what="3 acked")
        (worker,) = status["workers"]
        assert (worker["pid"], worker["restarts"], worker["processed"]) == (first["pid"], 0, 3)
        assert worker["rss_bytes"] < LIMIT_MB << 20
        for crash_id in ids:
            processed = processed_crash(data_dir, crash_id)
            notes = processed["processor_notes"]
            refused = [note for note in notes.splitlines() if "unavailable" in note]
            assert len(refused) == 1 and "demo" in refused[0], notes
            assert f"over the {LIMIT_MB} MiB limit" in refused[0]
            assert processed["json_dump"]["modules"][0]["missing_symbols"] is True
        assert "over its memory limit" not in supervisor.log(None)
    finally:
        supervisor.stop()
