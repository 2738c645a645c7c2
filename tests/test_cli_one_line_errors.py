"""Issue 13 item 9: the intake and inline-processing commands end in one line saying what
failed and why, never a traceback (`process` on a refused symbol cache directory, a store or
spool that cannot be written, a dump that cannot be read)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from procsupervisor import cli


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in [n for n in os.environ if n.startswith("PROCSUPERVISOR_")]:
        monkeypatch.delenv(name)
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str, BaseException | None]:
        result = runner.invoke(cli.main, ["--data-dir", str(tmp_path / "data"), *args])
        return result.exit_code, result.output, result.exception

    return invoke


def one_line_error(outcome: tuple[int, str, BaseException | None]) -> str:
    code, output, exception = outcome
    assert code == 1, output
    assert isinstance(exception, SystemExit), f"not a clean exit: {exception!r}"
    (line,) = [text for text in output.splitlines() if text.strip()]
    assert line.startswith("Error: ")
    return line


def submitted(run, tmp_path: Path) -> str:
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps({"ProductName": "Firefox"}))
    code, output, _ = run("submit", str(raw))
    assert code == 0, output
    return output.strip()


def test_process_with_a_refused_symbol_cache_directory(run, tmp_path: Path) -> None:
    crash_id = submitted(run, tmp_path)
    cache_dir = tmp_path / "data" / "symcache"
    cache_dir.mkdir(exist_ok=True)
    os.chmod(cache_dir, 0o777)  # refused: writable by others
    line = one_line_error(run("process", crash_id))
    assert line.startswith(f"Error: cannot process {crash_id}: CacheDirectoryError:")
    assert "world-writable" in line


def test_submit_into_a_store_that_cannot_be_written(run, tmp_path: Path) -> None:
    submitted(run, tmp_path)
    store = tmp_path / "data" / "crashes"
    os.rename(store, tmp_path / "moved")
    store.write_text("not a folder")
    raw = tmp_path / "raw.json"
    line = one_line_error(run("submit", str(raw)))
    assert line.startswith("Error: cannot store crash ")  # nothing queued (issue 10 part B)
    assert ": TransientStorageError: writing" in line


def test_submit_with_a_dump_that_cannot_be_read(run, tmp_path: Path) -> None:
    raw = tmp_path / "raw.json"
    raw.write_text("{}")
    line = one_line_error(run("submit", str(raw), str(tmp_path / "missing.dmp")))
    assert line == f"Error: cannot read dump {tmp_path / 'missing.dmp'}: No such file or directory"


def test_enqueue_into_a_spool_that_cannot_be_written(run, tmp_path: Path) -> None:
    crash_id = submitted(run, tmp_path)
    spool = tmp_path / "data" / "queue"
    os.rename(spool, tmp_path / "moved")
    spool.write_text("not a folder")
    line = one_line_error(run("enqueue", crash_id))
    assert line.startswith("Error: cannot queue: ")
