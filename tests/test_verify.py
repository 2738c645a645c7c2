"""Issue 13 item 10: `procsupervisor verify` walks the raw crashes of a date range (the date
is in the storage key) and lists those with no processed crash and no queue holding them;
`--requeue` queues them; the exit status says whether anything is missing."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from _backend_helpers import (
    AWS_TEST_ENV,
    MotoProcess,
    new_crash_id,
    synthetic_processed_crash,
    synthetic_raw_crash,
    unique_name,
)
from click.testing import CliRunner

from procsupervisor import cli
from procsupervisor.metrics import NullMetrics
from procsupervisor.queues.fs import FSQueue
from procsupervisor.storage.fs import FSCrashStorage
from procsupervisor.storage.s3 import S3CrashStorage

DAY = dt.date(2026, 11, 20)


def stored(storage, day: dt.date, *, processed: bool = False) -> str:
    crash_id = new_crash_id(day)
    storage.save_raw_crash(synthetic_raw_crash(crash_id), {"upload_file_minidump": b"MDMP"},
                           crash_id)
    if processed:
        storage.save_processed(synthetic_raw_crash(crash_id),
                               synthetic_processed_crash(crash_id))
    return crash_id


def test_verify_lists_queues_and_exits_by_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("PROCSUPERVISOR_")]:
        monkeypatch.delenv(name)
    data_dir = tmp_path / "data"
    storage = FSCrashStorage(data_dir / "crashes")
    spool = FSQueue(data_dir / "queue")
    done = stored(storage, DAY, processed=True)
    waiting = stored(storage, DAY)
    spool.publish("normal", waiting)
    dead = stored(storage, DAY + dt.timedelta(days=1))
    spool.publish("priority", dead)
    spool.dead_letter(spool.get("priority"), "bad dump")
    lost = [stored(storage, DAY), stored(storage, DAY + dt.timedelta(days=1))]
    outside = stored(storage, DAY + dt.timedelta(days=2))
    runner = CliRunner()

    def verify(*args: str) -> tuple[int, list[str]]:
        result = runner.invoke(cli.main, ["--data-dir", str(data_dir), "verify", "--since",
                                          str(DAY), "--until", str(DAY + dt.timedelta(days=1)),
                                          *args])
        assert isinstance(result.exception, SystemExit | None), result.exception
        return result.exit_code, result.output.strip().splitlines()

    code, lines = verify()
    assert code == 1
    assert sorted(lines[:-1]) == sorted(lost)
    assert lines[-1] == f"checked 5, missing 2, queued 0 ({DAY} to {DAY + dt.timedelta(days=1)})"
    assert done not in lines and waiting not in lines and dead not in lines
    assert outside not in lines

    code, lines = verify("--requeue", "--queue", "reprocessing")
    assert code == 1 and lines[-1].startswith("checked 5, missing 2, queued 2")
    assert sorted(spool.queued_crash_ids() & set(lost)) == sorted(lost)
    assert FSQueue(data_dir / "queue").depths()["reprocessing"] == 2

    code, lines = verify()  # now queued: nothing is missing
    assert code == 0 and lines == [f"checked 5, missing 0, queued 0 ({DAY} to"
                                   f" {DAY + dt.timedelta(days=1)})"]


def test_verify_refuses_a_backward_range_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli.main, ["--data-dir", str(tmp_path), "verify", "--since",
                                           "2026-12-05", "--until", "2026-12-01"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: --until 2026-12-01 is before --since 2026-12-05"


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[MotoProcess]:
    server = MotoProcess().start()
    yield server
    server.stop()


@pytest.mark.slow
def test_s3_lists_raw_crashes_by_day_and_knows_what_was_processed(
    moto_s3: MotoProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(key, value)
    options = {"bucket": unique_name("verify").replace("_", "-"),
               "endpoint_url": moto_s3.endpoint_url, "region": "us-east-1", "prefix": "p/"}
    storage = S3CrashStorage.from_options(options, data_dir=tmp_path, metrics=NullMetrics())
    storage.create_bucket()
    today = [stored(storage, DAY) for _ in range(3)]
    stored(storage, DAY + dt.timedelta(days=1))
    processed = stored(storage, DAY, processed=True)
    assert sorted(storage.raw_crash_ids(DAY)) == sorted([*today, processed])
    assert storage.has_processed(processed) and not storage.has_processed(today[0])
